"""The local-directory backup store: one folder per backup, manifest.json inside.

The store is the seam for S3 later: the drill asks it where a backup lives for the hosts,
writes and reads manifests through it, and lists the catalog from it.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from drtool.core.manifest import Manifest, manifest_from_json
from drtool.errors import ConfigError

BACKUP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class BackupSummary:
    id: str
    consistent_at: str | None
    size: int | None
    location: str
    complete: bool  # has a readable manifest


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `text` to `path` so that a reader sees the old file or the new one, never half.

    Writes a temporary file beside it, fsyncs it, renames it over `path`, fsyncs the folder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class LocalStore:
    """Backups under one directory on the machine drtool and the hosts share."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def backup_path(self, backup_id: str) -> Path:
        if not BACKUP_ID.match(backup_id):
            raise ConfigError(f"not a backup id: {backup_id!r}")
        return self.root / backup_id

    def write_manifest(self, manifest: Manifest) -> tuple[Path, str]:
        """Write manifest.json into the backup; return its path and sha256."""
        text = manifest.to_json()
        path = self.backup_path(manifest.backup_id) / "manifest.json"
        atomic_write(path, text)
        return path, hashlib.sha256(text.encode()).hexdigest()

    def read_manifest(self, backup_id: str) -> Manifest:
        """Return the backup's manifest; ConfigError (exit 2) when there is no such backup."""
        path = self.backup_path(backup_id) / "manifest.json"
        try:
            return manifest_from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no backup {backup_id!r} in {self.root}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"backup {backup_id!r}: unreadable manifest {path}: {exc}") from exc

    def list(self) -> list[BackupSummary]:
        """Every backup in the store, newest first; incomplete ones (no manifest) included."""
        if not self.root.is_dir():
            return []
        summaries = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or not BACKUP_ID.match(folder.name):
                continue
            try:
                manifest = manifest_from_json((folder / "manifest.json").read_text("utf-8"))
                summaries.append(BackupSummary(folder.name, manifest.consistent_at,
                                               manifest.size, str(folder), True))
            except (OSError, ValueError, KeyError, TypeError):
                summaries.append(BackupSummary(folder.name, None, None, str(folder), False))
        return sorted(summaries, key=lambda s: s.id, reverse=True)
