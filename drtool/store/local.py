"""The local-directory backup store: one folder per backup, manifest.json inside.

The default store, and the staging folder of the S3 store (drtool.store.s3). The hosts read
and write backups here (through drtool_transfer), so publishing and fetching are no-ops; the
restore playbook checks every file against the manifest before its first change.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from drtool.core.clock import iso, utc_now
from drtool.core.manifest import Manifest, manifest_from_json
from drtool.errors import ConfigError, StoreError
from drtool.store.base import BackupSummary, ManifestInvalid, Transfer, backup_time
from drtool.util.files import atomic_write

BACKUP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MANIFEST = "manifest.json"
VERIFIED = "verified.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalStore:
    """Backups under one directory on the machine drtool and the hosts share."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def valid_id(backup_id: str) -> bool:
        return bool(BACKUP_ID.match(backup_id))

    @property
    def location(self) -> str:
        return str(self.root)

    def location_of(self, backup_id: str) -> str:
        return str(self.backup_path(backup_id))

    def backup_path(self, backup_id: str) -> Path:
        if not BACKUP_ID.match(backup_id):
            raise ConfigError(f"not a backup id: {backup_id!r}")
        return self.root / backup_id

    def write_manifest(self, manifest: Manifest) -> tuple[Path, str]:
        """Write manifest.json into the backup; return its path and sha256."""
        text = manifest.to_json()
        path = self.backup_path(manifest.backup_id) / MANIFEST
        atomic_write(path, text)
        return path, hashlib.sha256(text.encode()).hexdigest()

    def read_manifest(self, backup_id: str) -> Manifest:
        """Return the backup's manifest, validated (drtool.core.manifest.manifest_from_json).
        ConfigError (exit 2) when there is no such backup; ManifestInvalid (exit 1) when its
        manifest cannot be trusted; StoreError (exit 3) when it cannot be read."""
        path = self.backup_path(backup_id) / MANIFEST
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise ConfigError(f"no backup {backup_id!r} in {self.root}") from None
        except UnicodeDecodeError as exc:
            raise ManifestInvalid(backup_id, str(path), f"not valid UTF-8: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from None
        try:
            return manifest_from_json(text, backup_id)
        except ValueError as exc:
            raise ManifestInvalid(backup_id, str(path), str(exc)) from None

    def catalog(self) -> list[BackupSummary]:
        """Every backup in the store, newest first; incomplete ones (no manifest) included."""
        if not self.root.is_dir():
            return []
        summaries = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or not BACKUP_ID.match(folder.name):
                continue
            verified = self._verified(folder)
            created = backup_time(folder.name)
            try:
                manifest = manifest_from_json((folder / MANIFEST).read_text("utf-8"),
                                              folder.name)
                summaries.append(BackupSummary(folder.name, manifest.consistent_at,
                                               manifest.size, str(folder), True, verified,
                                               created))
            except (OSError, ValueError, KeyError, TypeError):
                summaries.append(BackupSummary(folder.name, None, None, str(folder), False,
                                               verified, created))
        return sorted(summaries, key=lambda s: s.id, reverse=True)

    @staticmethod
    def _verified(folder: Path) -> str | None:
        try:
            data = json.loads((folder / VERIFIED).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return str(data.get("drill_id")) if isinstance(data, dict) else None

    def mark_verified(self, backup_id: str, drill_id: str) -> None:
        """Record that a passed drill restored and verified this backup."""
        atomic_write(self.backup_path(backup_id) / VERIFIED, json.dumps(
            {"backup_id": backup_id, "drill_id": drill_id, "verified_at": iso(utc_now())},
            indent=2) + "\n")

    def publish(self, manifest: Manifest) -> tuple[Manifest, Transfer | None]:
        return manifest, None  # the backup is already where it is kept

    def fetch(self, manifest: Manifest) -> tuple[list[dict[str, Any]], Transfer | None]:
        return [], None  # the restore playbook checks every file where it lies

    def check(self, manifest: Manifest) -> list[dict[str, Any]]:
        """Read every file of the backup and compare it with the manifest (size, sha256);
        a file the manifest does not list is a problem too."""
        folder = self.backup_path(manifest.backup_id)
        problems = []
        for entry in manifest.files:
            path = folder / entry.path
            actual, problem = None, None
            try:
                size = path.stat().st_size
                if size != entry.size:
                    actual = f"{size} bytes"
                    problem = f"{entry.path}: {actual}, the manifest says {entry.size}"
                else:
                    actual = sha256_of(path)
                    if actual != entry.sha256:
                        problem = f"{entry.path}: sha256 {actual} differs from the manifest's"
            except OSError as exc:
                problem = f"{entry.path}: {exc.strerror or exc}"
            if problem:
                problems.append({"path": entry.path, "expected": entry.sha256, "actual": actual,
                                 "problem": problem})
        listed = {entry.path for entry in manifest.files} | {MANIFEST, VERIFIED}
        for path in sorted(p for p in folder.rglob("*") if not p.is_dir()):
            name = path.relative_to(folder).as_posix()
            if name not in listed:  # added since, or left by a tool: not what was backed up
                problems.append({"path": name, "expected": None, "actual": "present",
                                 "problem": f"{name}: not in the manifest"})
        return problems

    def release(self, backup_id: str) -> None:
        pass  # this folder is the store itself

    def delete(self, backup_id: str) -> None:
        shutil.rmtree(self.backup_path(backup_id))
