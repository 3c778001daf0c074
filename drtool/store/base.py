"""What every backup store offers the drill, the catalog and retention (drtool.store.open
picks an environment's store)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from drtool.errors import CheckFailed

if TYPE_CHECKING:
    from pathlib import Path

    from drtool.core.manifest import Manifest


@dataclass(frozen=True)
class BackupSummary:
    id: str
    consistent_at: str | None
    size: int | None
    location: str
    complete: bool  # has a readable manifest
    verified_by: str | None = None  # the passed drill that restored and verified it
    created_at: str | None = None  # from the id, for incomplete backups too

    @property
    def verified(self) -> bool:
        return self.verified_by is not None


@dataclass(frozen=True)
class Transfer:
    """Files moved to or from an off-site store, for the journal's timings."""

    direction: str  # upload or download
    objects: int
    bytes: int
    seconds: float
    started_at: str | None
    ended_at: str | None
    location: str
    # One record per object: path, url, bytes, sha256 and how it was checked (upload: S3's
    # checksum; download: the manifest's sha256, `verified`).
    files: list[dict[str, Any]] = field(default_factory=list)


class ManifestInvalid(CheckFailed):
    """A backup's manifest.json is there but cannot be trusted (not JSON, malformed, a file
    path that leads outside the backup, another backup's id): the backup fails its integrity
    check (exit 1). `where` is the manifest's path or URL, `problem` what is wrong with it."""

    def __init__(self, backup_id: str, where: str, problem: str) -> None:
        self.backup_id, self.where, self.problem = backup_id, where, problem
        super().__init__(f"backup {backup_id}: manifest {where} is not valid: {problem}")


class BackupStore(Protocol):
    @property
    def location(self) -> str: ...
    def location_of(self, backup_id: str) -> str: ...
    def backup_path(self, backup_id: str) -> Path: ...
    def write_manifest(self, manifest: Manifest) -> tuple[Path, str]: ...
    # ConfigError: no such backup; ManifestInvalid: a manifest that cannot be trusted;
    # StoreError: the store cannot be reached.
    def read_manifest(self, backup_id: str) -> Manifest: ...
    def catalog(self) -> list[BackupSummary]: ...
    def publish(self, manifest: Manifest) -> tuple[Manifest, Transfer | None]: ...
    def fetch(self, manifest: Manifest) -> tuple[list[dict[str, Any]], Transfer | None]: ...
    # Every file of the backup read where it is kept and checked against the manifest's
    # sha256 and size (`drtool backups verify`): the problems, each naming its file.
    def check(self, manifest: Manifest) -> list[dict[str, Any]]: ...
    def release(self, backup_id: str) -> None: ...
    def delete(self, backup_id: str) -> None: ...
    def mark_verified(self, backup_id: str, drill_id: str) -> None: ...


STAMP = re.compile(r"(\d{8}T\d{6}Z)")


def backup_time(backup_id: str) -> str | None:
    """When a backup was started, from its id (bk-20261122T051530Z-3fa2c1)."""
    match = STAMP.search(backup_id)
    if not match:
        return None
    moment = dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return moment.isoformat()
