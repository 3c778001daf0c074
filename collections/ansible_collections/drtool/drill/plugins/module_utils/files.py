"""File hashing shared by drtool's modules: one streaming sha256, one way to list a backup."""

from __future__ import annotations

import hashlib
import os

CHUNK = 1024 * 1024


def sha256_file(path):
    """Return the hex sha256 of the file at `path`, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_tree(root, prefix):
    """List every file under `root` as dicts {path, size, sha256}.

    Paths are relative to the backup root: `prefix` (e.g. "postgres") joined with the path
    below `root`, always with forward slashes, sorted so manifests are stable.
    """
    entries = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            entries.append(
                {
                    "path": prefix + "/" + rel,
                    "size": os.path.getsize(full),
                    "sha256": sha256_file(full),
                }
            )
    return sorted(entries, key=lambda entry: entry["path"])
