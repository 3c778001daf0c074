"""The backup manifest: what a backup holds, recorded when it was taken.

Built from what the backup modules reported (counts from the dump's own snapshot, key counts
from the RDB's own fork, the sha256 of every file); a restore is judged against it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from drtool.core.clock import iso, parse_iso

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the backup's root, e.g. "postgres/toc.dat"
    size: int
    sha256: str


@dataclass(frozen=True)
class PostgresPart:
    host: str
    port: int | None
    database: str
    consistent_at: str
    counts: dict[str, int]
    sequences: dict[str, int | None]
    sentinel: dict[str, str]
    heartbeat_at: str | None
    server_version: str
    pg_dump_version: str
    size: int


@dataclass(frozen=True)
class RedisPart:
    host: str
    port: int | None
    consistent_at: str
    counts: dict[str, int]
    sentinel: dict[str, str]
    heartbeat_at: str | None
    redis_version: str
    size: int


@dataclass(frozen=True)
class Manifest:
    backup_id: str
    env: str
    created_at: str
    consistent_at: str
    postgres: PostgresPart
    redis: RedisPart
    files: tuple[FileEntry, ...]
    size: int
    drill_id: str | None = None
    manifest_version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def _single(results: dict[str, dict[str, Any]], what: str) -> tuple[str, dict[str, Any]]:
    if len(results) != 1:
        raise ValueError(f"expected the {what} of exactly one host, got {sorted(results)}")
    return next(iter(results.items()))


def build_manifest(
    backup_id: str,
    env: str,
    created_at: str,
    postgres_results: dict[str, dict[str, Any]],
    redis_results: dict[str, dict[str, Any]],
    drill_id: str | None = None,
) -> Manifest:
    """Assemble a manifest from the per-host results the backup roles published.

    Given {host: module result} for PostgreSQL and for Redis; raises ValueError when either
    is missing or comes from more than one host. The backup's consistency time is the
    earlier of the two, so its age is never understated.
    """
    pg_host, pg = _single(postgres_results, "PostgreSQL backup")
    rd_host, rd = _single(redis_results, "Redis backup")
    postgres = PostgresPart(
        host=pg_host, port=pg.get("port"), database=pg["database"],
        consistent_at=pg["consistent_at"], counts=dict(pg["counts"]),
        sequences=dict(pg["sequences"]), sentinel=dict(pg["sentinel"]),
        heartbeat_at=pg.get("heartbeat_at"), server_version=pg["server_version"],
        pg_dump_version=pg["pg_dump_version"], size=int(pg["size"]),
    )
    redis = RedisPart(
        host=rd_host, port=rd.get("port"), consistent_at=rd["consistent_at"],
        counts=dict(rd["counts"]), sentinel=dict(rd["sentinel"]),
        heartbeat_at=rd.get("heartbeat_at"), redis_version=rd["redis_version"],
        size=int(rd["size"]),
    )
    files = tuple(
        sorted((FileEntry(**entry) for entry in [*pg["files"], *rd["files"]]),
               key=lambda entry: entry.path)
    )
    return Manifest(
        backup_id=backup_id, env=env, created_at=created_at,
        consistent_at=_earliest(postgres.consistent_at, redis.consistent_at),
        postgres=postgres, redis=redis, files=files,
        size=sum(entry.size for entry in files), drill_id=drill_id,
    )


def _earliest(*stamps: str) -> str:
    """The earliest of ISO-8601 stamps, in UTC; ValueError when one is empty."""
    moments = [parse_iso(stamp) for stamp in stamps]
    if any(moment is None for moment in moments):
        raise ValueError(f"a backup reported no consistency time: {stamps}")
    return iso(min(m for m in moments if m is not None)) or ""


def manifest_from_json(text: str) -> Manifest:
    """Parse a manifest.json; raises ValueError (or KeyError) when it is not one."""
    data = json.loads(text)
    return Manifest(
        backup_id=data["backup_id"], env=data["env"], created_at=data["created_at"],
        consistent_at=data["consistent_at"], postgres=PostgresPart(**data["postgres"]),
        redis=RedisPart(**data["redis"]),
        files=tuple(FileEntry(**entry) for entry in data["files"]), size=data["size"],
        drill_id=data.get("drill_id"), manifest_version=data.get("manifest_version", 1),
        extra=data.get("extra", {}),
    )
