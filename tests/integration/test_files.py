"""The files kind on the real sandbox, with real Ansible and GNU tar: inventories/sandbox-files
drills the uploads tree `drtool sandbox up` creates (drtool/sandbox/uploads.py) into a second
folder. A drill restores it entry for entry (owners, modes, mtimes, links inside the tree
and one pointing out of it, names with spaces and non-ASCII characters; the excluded
entries left out); a restored tree altered before the verify fails it, each difference named
with what differs, and is rolled back to its snapshot; a link out of the tree is never
followed; a name with a control character is refused with the name."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import module_utils
from tests.conftest import Drtool

pytestmark = pytest.mark.integration

ENV = "sandbox-files"
TARGET_HOST = "sandbox-files-target"
WHERE = f"{TARGET_HOST}/uploads"
EXCLUDE = ["*.tmp", "cache/"]

# GNU tar that, after its first extraction (the drill's restore; later ones are the
# rollback's), alters the restored tree the way a faulty restore or a hand would: a file's
# content rewritten in place (same size), a file removed, a file added, a link pointed
# elsewhere; and changes the file behind the link that points out of the tree.
ALTERING_TAR = """#!/bin/sh
dir=$(dirname "$0")
{real} "$@"
rc=$?
case " $* " in
  *" --extract "*)
    n=$(( $(cat "$dir/calls" 2>/dev/null || echo 0) + 1 )); echo $n > "$dir/calls"
    if [ "$n" = 1 ] && [ "$rc" = 0 ]; then
      cd "{tree}" || exit 9
      printf 'ALTERED' | dd of="docs/annual report.txt" bs=1 seek=0 conv=notrunc 2>/dev/null
      rm -f "docs/Résumé – équipe.txt"
      printf 'not in the backup' > "images/intruder.jpg"
      ln -sfn images/2023 current
      echo 'changed behind the link' >> "{outside}/secret.txt"
    fi;;
esac
exit $rc
"""


tree = module_utils.load("tree")


def trees(drtool: Drtool) -> tuple[Path, Path, Path]:
    from drtool.sandbox import uploads

    root = drtool.home / "sandbox"
    return uploads.source(root), uploads.target(root), uploads.outside(root)


def measured(path: Path) -> dict[str, dict[str, Any]]:
    """Every entry of a tree as files_facts sees it (excludes applied, no link followed),
    each regular file with its sha256."""
    entries, bad, _sockets = tree.walk(str(path), EXCLUDE)
    assert not bad
    everything = {p: {"type": "file"} for p, info in entries if stat.S_ISREG(info.st_mode)}
    found = tree.measure(str(path), EXCLUDE, everything)
    for entry in found.values():
        entry.pop("uid", None), entry.pop("gid", None)
        if entry["type"] == "dir":
            entry.pop("mtime", None)
    return found


def env_with(drtool: Drtool, name: str, host_vars: dict[str, dict[str, Any]]) -> str:
    """inventories/sandbox-files copied as environment `name` under DRTOOL_HOME, with
    `host_vars` for its hosts."""
    folder = drtool.home / "inventories" / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(Path(__file__).resolve().parents[2] / "inventories" / ENV, folder)
    for host, values in host_vars.items():
        (folder / "host_vars").mkdir(exist_ok=True)
        (folder / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values))
    return name


def by_name(journal: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [c for c in journal["checks"] if c["name"].startswith(prefix)]


@pytest.fixture(scope="module")
def files_drill(sandbox: Drtool) -> dict[str, Any]:
    """One drill of the files-only environment (the restore target starts almost empty)."""
    code, journal = sandbox.json("drill", "--env", ENV)
    assert code == 0, json.dumps(journal.get("failure"), indent=1)
    return journal


def test_the_files_only_drill_passes_and_restores_every_entry_as_it_was(sandbox: Drtool,
                                                                       files_drill):
    source, target, outside = trees(sandbox)
    assert [p["status"] for p in files_drill["phases"]] == ["passed"] * 8
    (check,) = by_name(files_drill, "files.")
    assert (check["name"], check["target"], check["status"]) == ("files.tree", WHERE, "passed")
    assert check["actual"] == check["expected"] and check["expected"]["files"] > 2000
    assert check["expected"]["symlinks"] == 4

    # The restored tree is the source, entry for entry, less what the inventory excludes.
    assert measured(target) == measured(source)
    assert not (target / "placeholder.txt").exists()  # the target's old content is gone
    assert not (target / "cache").exists() and not (target / "upload-in-progress.tmp").exists()
    modes = {p: stat.S_IMODE((target / p).lstat().st_mode)
             for p in ("private", "private/keys.txt", "bin/run.sh", "shared")}
    assert modes == {"private": 0o700, "private/keys.txt": 0o600, "bin/run.sh": 0o755,
                     "shared": 0o2775}
    image = "images/2021/01/img-0000.jpg"
    assert (target / image).stat().st_mtime == (source / image).stat().st_mtime < 1.7e9
    if os.geteuid() == 0:  # the sandbox gave a folder to nobody: the restore gives it back
        owned = target / "owned-by-nobody" / "avatar.png"
        assert owned.owner() == "nobody" and owned.stat().st_uid != 0
        assert (target / "owned-by-nobody").owner() == "nobody"
    # Links come back as links, with their targets: inside the tree, dangling, and out of it.
    links = {p: os.readlink(target / p) for p in ("current", "images/latest.jpg",
                                                  "docs/missing-link", "shared-config")}
    assert links == {"current": "images/2024", "images/latest.jpg": "2024/12/img-0011.jpg",
                     "docs/missing-link": "no-such-file", "shared-config": str(outside)}
    assert (target / "docs" / "Résumé – équipe.txt").read_text() == (
        "a name with non-ASCII characters\n")
    assert (target / "docs" / "annual report.txt").is_file()
    hard = target / "docs" / "readme-hardlink.txt"
    assert hard.stat().st_ino == (target / "docs" / "readme.txt").stat().st_ino
    # Given back: the snapshot and the lease.
    assert not (sandbox.home / "snapshots" / ENV / files_drill["drill_id"]).exists()
    assert not list((sandbox.home / "sandbox" / "leases").glob("files-*.lease"))


def test_a_link_pointing_out_of_the_tree_is_archived_as_a_link_and_never_followed(
        sandbox: Drtool, files_drill):
    _source, _target, outside = trees(sandbox)
    folder = sandbox.home / "backups" / ENV / files_drill["backup"]["id"] / "files" / "uploads"
    header, listed = tree.read_listing(str(folder / "listing.jsonl"))
    assert header["exclude"] == EXCLUDE
    assert listed["shared-config"]["type"] == "symlink"
    assert listed["shared-config"]["target"] == str(outside)
    assert not [p for p in listed if p.startswith("shared-config/") or "secret" in p]
    with tarfile.open(folder / "tree.tar") as archive:
        member = archive.getmember("shared-config")
        assert member.issym() and member.linkname == str(outside)
        assert not [n for n in archive.getnames() if "secret" in n or n.startswith("cache")]
    manifest = json.loads((folder.parents[1] / "manifest.json").read_text())
    (part,) = manifest["trees"]
    assert (part["component"], part["totals"]) == ("uploads", header["totals"])


def test_a_changed_a_missing_and_an_extra_file_after_the_restore_fail_verify_naming_each(
        sandbox: Drtool, files_drill):
    source, target, outside = trees(sandbox)
    before = measured(target)  # the first drill's restore: the rollback must bring it back
    secret = (outside / "secret.txt").read_text()
    wrapper = sandbox.home / "altering-tar"
    shutil.rmtree(wrapper, ignore_errors=True)
    wrapper.mkdir()
    (wrapper / "tar").write_text(ALTERING_TAR.format(real=shutil.which("tar"), tree=target,
                                                         outside=outside))
    (wrapper / "tar").chmod(0o755)
    env = env_with(sandbox, "sandbox-files-altered",
                   {TARGET_HOST: {"drtool_files_tar": str(wrapper / "tar")}})
    try:
        code, journal = sandbox.json("drill", "--env", env)
    finally:
        (outside / "secret.txt").write_text(secret)
    assert (wrapper / "calls").read_text().strip() == "2"  # the restore, then the rollback

    assert code == 1, journal["failure"]
    failure = journal["failure"]
    assert (failure["phase"], failure["kind"]) == ("verify", "check"), failure
    found = {(c["name"], c["target"]): c for c in by_name(journal, "files.")}
    assert set(found) == {
        ("files.tree", WHERE),
        ("files.changed", f"{WHERE}:docs/annual report.txt"),
        ("files.missing", f"{WHERE}:docs/Résumé – équipe.txt"),
        ("files.extra", f"{WHERE}:images/intruder.jpg"),
        ("files.changed", f"{WHERE}:current"),
    }, sorted(found)
    assert all(c["status"] == "failed" for c in found.values())
    changed = found[("files.changed", f"{WHERE}:docs/annual report.txt")]
    assert set(changed["expected"]) == {"sha256", "mtime"}, changed
    assert changed["expected"]["sha256"] != changed["actual"]["sha256"]
    link = found[("files.changed", f"{WHERE}:current")]
    assert (link["expected"], link["actual"]) == ({"target": "images/2024"},
                                                  {"target": "images/2023"})
    missing = found[("files.missing", f"{WHERE}:docs/Résumé – équipe.txt")]
    assert (missing["expected"], missing["actual"]) == ("file, 33 bytes", "missing")
    assert found[("files.extra", f"{WHERE}:images/intruder.jpg")]["actual"] == "file, 17 bytes"
    summary = found[("files.tree", WHERE)]
    assert summary["detail"] == "4 differences: 1 missing, 1 extra, 2 changed", summary
    # The file behind the link out of the tree changed too: verify never read through it.
    assert not [c for c in journal["checks"] if "secret" in c["target"]
                or "shared-config" in c["target"]]

    # The rollback put the snapshot (the first drill's restore) back, and proved it there.
    assert journal["rollback"]["status"] == "passed", journal["rollback"]
    rolled = {(c["name"], c["status"]) for c in by_name(journal, "rollback.")}
    assert rolled == {("rollback.files.tree", "passed")}, rolled
    assert measured(target) == before == measured(source)
    assert not (sandbox.home / "snapshots" / env / journal["drill_id"]).exists()
    assert not list((sandbox.home / "sandbox" / "leases").glob("files-*.lease"))


def test_a_name_with_a_control_character_is_refused_by_the_backup_naming_it(
        sandbox: Drtool, files_drill):
    source, _target, _outside = trees(sandbox)
    bad = source / "docs" / "line\nbreak.txt"
    bad.write_text("x")
    try:
        code, journal = sandbox.json("backup", "--env", ENV)
    finally:
        bad.unlink()
    assert code == 3, journal["failure"]
    reason = journal["failure"]["reason"]
    assert "1 name in" in reason and "'docs/line\\nbreak.txt' holds a control character" in (
        reason), reason
    assert "exclude them (drtool_files_exclude)" in reason
