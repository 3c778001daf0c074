"""The sandbox's directory trees, for the files kind (inventories/sandbox-files): an uploads
folder to back up, an almost empty folder to restore it into, and a folder outside both
that a link in the uploads points at.

The uploads hold a few thousand files of mixed sizes in nested folders, with what a
restore must bring back exactly: modes (0600, 0700, 0755, setgid), mtimes, a folder owned
by `nobody` (when the sandbox runs as root, which may give files away), a hard link, links
inside the tree (to a file, to a folder, dangling) and one pointing out of it, names with
non-ASCII characters and spaces, and entries the inventory excludes (*.tmp, cache/).
Created once, when the uploads folder is missing; `sandbox up` runs this every time.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
from pathlib import Path

FILES = 2500
EPOCH = 1_600_000_000  # the files' mtimes: a fixed past, so a restore that loses them shows


def source(root: Path) -> Path:
    """The uploads folder a backup reads ($DRTOOL_HOME/sandbox/files/uploads)."""
    return root / "files" / "uploads"


def target(root: Path) -> Path:
    """The folder a drill restores the uploads into."""
    return root / "files" / "uploads-restored"


def outside(root: Path) -> Path:
    """A folder outside both trees, which the uploads' link `shared-config` points at."""
    return root / "files" / "outside"


def ensure(root: Path) -> bool:
    """Create the trees unless the uploads folder is there; True when it created them. It is
    built aside and renamed into place, so an interrupted run leaves no half tree."""
    tree = source(root)
    if tree.exists():
        return False
    building = tree.with_name(tree.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    populate(building, outside(root))
    building.rename(tree)
    restored = target(root)
    restored.mkdir(parents=True, exist_ok=True)
    (restored / "placeholder.txt").write_text("the restore target before any drill\n",
                                              encoding="utf-8")
    return True


def populate(tree: Path, beyond: Path) -> None:
    """Write the uploads into `tree` (and the folder `beyond`, which a link points at)."""
    rng = random.Random(20240601)  # noqa: S311 - file contents, not secrets
    beyond.mkdir(parents=True, exist_ok=True)
    (beyond / "secret.txt").write_text("outside the tree: never read by a backup\n",
                                       encoding="utf-8")
    for index in range(FILES):
        folder = tree / "images" / str(2021 + index % 4) / f"{1 + index % 12:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        draw = rng.random()
        size = (rng.randint(64, 4096) if draw < 0.85 else rng.randint(4096, 16384)
                if draw < 0.99 else rng.randint(131072, 262144))
        path = folder / f"img-{index:04d}.jpg"
        path.write_bytes(rng.randbytes(size))
        os.utime(path, (EPOCH + index, EPOCH + index))
    docs = tree / "docs"
    docs.mkdir()
    (docs / "readme.txt").write_text("Uploads of the sandbox shop.\n", encoding="utf-8")
    (docs / "annual report.txt").write_text("a name with a space\n", encoding="utf-8")
    (docs / "Résumé – équipe.txt").write_text("a name with non-ASCII characters\n",
                                              encoding="utf-8")
    (docs / "日本語.md").write_text("non-Latin script\n", encoding="utf-8")
    os.link(docs / "readme.txt", docs / "readme-hardlink.txt")
    private = tree / "private"
    private.mkdir(mode=0o700)
    (private / "keys.txt").write_text("private\n", encoding="utf-8")
    (private / "keys.txt").chmod(0o600)
    private.chmod(0o700)
    scripts = tree / "bin"
    scripts.mkdir()
    (scripts / "run.sh").write_text("#!/bin/sh\necho run\n", encoding="utf-8")
    (scripts / "run.sh").chmod(0o755)
    shared = tree / "shared"
    shared.mkdir()
    shared.chmod(0o2775)
    (shared / "notes.txt").write_text("setgid folder\n", encoding="utf-8")
    (tree / "empty").mkdir()
    # Links: inside the tree to a file, to a folder, dangling; and out of the tree.
    (tree / "images" / "latest.jpg").symlink_to("2024/12/img-0011.jpg")
    (tree / "current").symlink_to("images/2024")
    (tree / "docs" / "missing-link").symlink_to("no-such-file")
    (tree / "shared-config").symlink_to(beyond)
    # What the inventory excludes: temporary files anywhere, the cache folder.
    (tree / "upload-in-progress.tmp").write_bytes(rng.randbytes(1000))
    (tree / "images" / "2022" / "partial.tmp").write_bytes(rng.randbytes(100))
    cache = tree / "cache"
    cache.mkdir()
    for index in range(20):
        (cache / f"thumb-{index}.bin").write_bytes(rng.randbytes(200))
    if os.geteuid() == 0:  # only root may give files away
        owned = tree / "owned-by-nobody"
        owned.mkdir()
        (owned / "avatar.png").write_bytes(rng.randbytes(3000))
        nobody = _nobody()
        for path in (owned, owned / "avatar.png"):
            os.chown(path, *nobody)


def _nobody() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return 65534, 65534
    return entry.pw_uid, entry.pw_gid
