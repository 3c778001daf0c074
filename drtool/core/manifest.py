"""The backup manifest: what a backup holds, recorded when it was taken.

Built from what the backup modules reported (counts from the dump's own snapshot, key counts
from the RDB's own fork, the sha256 of every file); a restore is judged against it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from drtool.core.clock import iso, parse_iso

# 2: a part per component (and per database of a PostgreSQL cluster), each in its folder
# (postgres/CLUSTER/DATABASE/..., redis/NAME/..., files/NAME/...; a version 2 manifest
# written before the files kind has no `trees`). 1: one PostgreSQL and one Redis part.
MANIFEST_VERSION = 2
# Every file of a backup lies in the folder of the kind of component that made it.
COMPONENTS = ("postgres", "redis", "files")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ValueError):
    """A manifest.json that is not a manifest drtool could have written; the message says
    what is wrong, naming a bad path with its control characters escaped."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the backup's root, e.g. "postgres/toc.dat"
    size: int
    sha256: str


@dataclass(frozen=True)
class PostgresPart:
    """One database of a PostgreSQL cluster, as its backup found it."""

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
    component: str = "postgres"  # the cluster's component name ("postgres" in version 1)

    @property
    def key(self) -> str:
        """component/database: how the journal and the facts name this part."""
        return f"{self.component}/{self.database}"


@dataclass(frozen=True)
class RedisPart:
    """One Redis instance (all its logical databases), as its backup found it."""

    host: str
    port: int | None
    consistent_at: str
    counts: dict[str, int]
    sentinel: dict[str, str]
    heartbeat_at: str | None
    redis_version: str
    size: int
    component: str = "redis"

    @property
    def key(self) -> str:
        return self.component


@dataclass(frozen=True)
class FilesPart:
    """One directory tree, as its backup found it: what its listing counted (entries, files,
    directories, symlinks, other, bytes), and when tar began reading it."""

    component: str
    host: str
    path: str
    totals: dict[str, int]
    consistent_at: str
    size: int

    @property
    def key(self) -> str:
        return self.component


@dataclass(frozen=True)
class PhysicalPart:
    """A PostgreSQL cluster backed up by a physical method (pgbackrest): the repository's
    backup it restores from (label, type, times, LSNs, WAL range), the recovery target the
    backup set on the source and how its databases' counts were made to match it
    (`counts_method`: slot, share, or none when they are not comparable)."""

    component: str
    host: str
    method: str
    stanza: str
    pgbackrest_version: str
    backup: dict[str, Any]
    recovery_target: dict[str, Any]
    counts_method: str
    system_identifier: str
    server_version: str
    taken: bool = False  # whether drtool asked pgBackRest for this backup (else the schedule's)
    wal_file: str | None = None
    archived_s: float | None = None

    @property
    def key(self) -> str:
        return self.component


@dataclass(frozen=True)
class Manifest:
    backup_id: str
    env: str
    created_at: str
    consistent_at: str
    postgres: tuple[PostgresPart, ...]
    redis: tuple[RedisPart, ...]
    files: tuple[FileEntry, ...]
    size: int
    drill_id: str | None = None
    manifest_version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    trees: tuple[FilesPart, ...] = ()
    physical: tuple[PhysicalPart, ...] = ()

    def physical_part(self, component: str) -> PhysicalPart | None:
        return next((part for part in self.physical if part.component == component), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def postgres_part(self, key: str) -> PostgresPart | None:
        return next((part for part in self.postgres if part.key == key), None)

    def redis_part(self, key: str) -> RedisPart | None:
        return next((part for part in self.redis if part.key == key), None)

    def tree_part(self, key: str) -> FilesPart | None:
        return next((part for part in self.trees if part.key == key), None)


def manifest_parts(manifest: Manifest) -> dict[str, tuple[str, str, str]]:
    """{store: (component, consistent_at, kind)} of every part, stores named as the restore
    facts name them: "postgres:main/appdb", "redis:cache", "files:uploads"."""
    parts: dict[str, tuple[str, str, str]] = {}
    for pg in manifest.postgres:
        parts[f"postgres:{pg.key}"] = (pg.component, pg.consistent_at, "postgres")
    for rd in manifest.redis:
        parts[f"redis:{rd.key}"] = (rd.key, rd.consistent_at, "redis")
    for tree in manifest.trees:
        parts[f"files:{tree.key}"] = (tree.key, tree.consistent_at, "files")
    return parts


def build_manifest(
    backup_id: str,
    env: str,
    created_at: str,
    postgres_results: dict[str, dict[str, dict[str, Any]]],
    redis_results: dict[str, dict[str, Any]],
    sources: dict[str, str],
    drill_id: str | None = None,
    files_results: dict[str, dict[str, Any]] | None = None,
    physical_results: dict[str, dict[str, Any]] | None = None,
) -> Manifest:
    """Assemble a manifest from what the backup roles published.

    Given {component: {database: module result}} for PostgreSQL, {component: module result}
    for Redis and for the directory trees (`files_results`), and {component: the host it was
    read from}; raises ValueError when nothing was backed up or a result is incomplete. The
    backup's consistency time is the earliest of its parts', so its age is never
    understated.
    """
    postgres = tuple(
        PostgresPart(
            host=sources.get(name, ""), port=pg.get("port"), database=pg["database"],
            consistent_at=pg["consistent_at"], counts=dict(pg["counts"]),
            sequences=dict(pg["sequences"]), sentinel=dict(pg["sentinel"]),
            heartbeat_at=pg.get("heartbeat_at"), server_version=pg["server_version"],
            pg_dump_version=pg["pg_dump_version"], size=int(pg["size"]), component=name)
        for name, databases in sorted(postgres_results.items())
        for _database, pg in sorted(databases.items()))
    redis = tuple(
        RedisPart(
            host=sources.get(name, ""), port=rd.get("port"), consistent_at=rd["consistent_at"],
            counts=dict(rd["counts"]), sentinel=dict(rd["sentinel"]),
            heartbeat_at=rd.get("heartbeat_at"), redis_version=rd["redis_version"],
            size=int(rd["size"]), component=name)
        for name, rd in sorted(redis_results.items()))
    trees = tuple(
        FilesPart(component=name, host=sources.get(name, ""), path=str(tree["path"]),
                  totals={k: int(v) for k, v in tree["totals"].items()},
                  consistent_at=tree["consistent_at"], size=int(tree["size"]))
        for name, tree in sorted((files_results or {}).items()))
    physical = tuple(
        PhysicalPart(component=name, host=sources.get(name, ""), method=str(part["method"]),
                     stanza=str(part["stanza"]), pgbackrest_version=str(part["pgbackrest_version"]),
                     backup=dict(part["backup"]), recovery_target=dict(part["recovery_target"]),
                     counts_method=str(part["counts_method"]),
                     system_identifier=str(part["system_identifier"]),
                     server_version=str(part["server_version"]), taken=bool(part.get("taken")),
                     wal_file=part.get("wal_file"),
                     archived_s=float(part["archived_s"]) if part.get("archived_s") is not None
                     else None)
        for name, part in sorted((physical_results or {}).items()))
    if not postgres and not redis and not trees:
        raise ValueError("no component reported a backup")
    results = [pg for databases in postgres_results.values() for pg in databases.values()]
    results += list(redis_results.values()) + list((files_results or {}).values())
    files = tuple(sorted((FileEntry(**entry) for result in results for entry in result["files"]),
                         key=lambda entry: entry.path))
    return Manifest(
        backup_id=backup_id, env=env, created_at=created_at,
        consistent_at=_earliest(*[p.consistent_at for p in postgres],
                                *[r.consistent_at for r in redis],
                                *[t.consistent_at for t in trees]),
        postgres=postgres, redis=redis, files=files,
        size=sum(entry.size for entry in files), drill_id=drill_id, trees=trees,
        physical=physical,
    )


def _earliest(*stamps: str) -> str:
    """The earliest of ISO-8601 stamps, in UTC; ValueError when one is empty."""
    moments = [parse_iso(stamp) for stamp in stamps]
    if any(moment is None for moment in moments):
        raise ValueError(f"a backup reported no consistency time: {stamps}")
    return iso(min(m for m in moments if m is not None)) or ""


def shown(text: str) -> str:
    """`text` quoted for one line of output: control characters, line separators and what is
    not valid UTF-8 (lone surrogates) escaped as Python writes them, the rest as it is."""
    return "'" + "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text) + "'"


def path_problem(path: object) -> str | None:
    """Why `path` cannot name a file of a backup, or None when it can.

    A manifest path is relative, written with forward slashes only, normalised (no empty,
    `.` or `..` part), lies inside a component's folder (`postgres/...`, `redis/...`) and is
    valid UTF-8 with no control character: joined to a staging folder, it stays inside it.
    """
    if not isinstance(path, str):
        return f"a file path is not a string: {path!r}"
    if not path:
        return "a file path is empty"
    name = shown(path)
    if any(not ch.isprintable() for ch in path):
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            return f"file path {name} is not valid UTF-8"
        return f"file path {name} holds a control character"
    if "\\" in path:
        return f"file path {name} holds a backslash"
    if path.startswith("/"):
        return f"file path {name} is absolute"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return f"file path {name} is not normalised (an empty, '.' or '..' part)"
    if len(parts) < 2 or parts[0] not in COMPONENTS:
        return (f"file path {name} is not inside a component's folder "
                f"({', '.join(c + '/' for c in COMPONENTS)})")
    return None


def files_problems(files: object) -> list[str]:
    """Every problem of a manifest's `files` list (given as parsed JSON): each entry is an
    object with a valid path (see path_problem), a size >= 0 and a sha256 in hex; no path is
    listed twice or is the folder of another."""
    if not isinstance(files, list):
        return ["'files' is not a list"]
    problems: list[str] = []
    paths: set[str] = set()
    for index, entry in enumerate(files):
        if not isinstance(entry, dict) or set(entry) != {"path", "size", "sha256"}:
            problems.append(f"files[{index}] is not an object with path, size and sha256")
            continue
        path, size, sha256 = entry["path"], entry["size"], entry["sha256"]
        problem = path_problem(path)
        if problem:
            problems.append(problem)
            continue
        if path in paths:
            problems.append(f"file path {shown(path)} is listed twice")
        paths.add(path)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            problems.append(f"file {shown(path)}: size {size!r} is not a number of bytes")
        if not isinstance(sha256, str) or not SHA256.match(sha256):
            problems.append(f"file {shown(path)}: sha256 {sha256!r} is not a hex sha256")
    folders = {path.rsplit("/", 1)[0] for path in paths}
    problems += [f"file path {shown(path)} is also the folder of another file"
                 for path in sorted(paths & _parents(folders))]
    return problems


def _parents(folders: set[str]) -> set[str]:
    """Every folder in `folders` and every folder above it."""
    found: set[str] = set()
    for folder in folders:
        parts = folder.split("/")
        found.update("/".join(parts[:end]) for end in range(1, len(parts) + 1))
    return found


def _timestamp(value: object) -> bool:
    """Whether `value` is an ISO-8601 time string (naive ones are read as UTC)."""
    if not isinstance(value, str) or not value:
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def manifest_from_json(text: str, backup_id: str | None = None) -> Manifest:
    """Parse and validate a manifest.json (of backup `backup_id`, when given).

    Raises ManifestError naming what is wrong: not JSON, a missing or malformed field, a file
    path that could lead outside the backup's folder (see files_problems), another backup's
    id. A manifest that passes is safe to join paths with.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ManifestError("not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ManifestError("not a JSON object")
    problems = files_problems(data.get("files"))
    if not isinstance(data.get("extra", {}), dict):
        problems.append("'extra' is not an object")
    for name in ("created_at", "consistent_at"):  # RPO and retention compute with them
        if not _timestamp(data.get(name)):
            problems.append(f"{name} {shown(str(data.get(name)))} is not an ISO-8601 time")
    if not isinstance(data.get("size"), int) or isinstance(data.get("size"), bool) or (
            data["size"] < 0):
        problems.append(f"size {shown(str(data.get('size')))} is not a byte count")
    if backup_id is not None and data.get("backup_id") != backup_id:
        problems.insert(0, f"it names backup {shown(str(data.get('backup_id')))}, "
                           f"not {shown(backup_id)}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ManifestError("; ".join(problems[:3]) + more)
    try:
        # Version 1 holds one part of each; version 2 a list of each.
        postgres, redis = data["postgres"], data["redis"]
        return Manifest(
            backup_id=data["backup_id"], env=data["env"], created_at=data["created_at"],
            consistent_at=data["consistent_at"],
            postgres=tuple(PostgresPart(**part) for part in _parts(postgres)),
            redis=tuple(RedisPart(**part) for part in _parts(redis)),
            files=tuple(FileEntry(**entry) for entry in data["files"]), size=data["size"],
            drill_id=data.get("drill_id"), manifest_version=data.get("manifest_version", 1),
            extra=data.get("extra", {}),
            # Not in a manifest written before the files kind: no tree.
            trees=tuple(FilesPart(**part) for part in _parts(data.get("trees") or [])),
            # Only a backup of a physical method has them.
            physical=tuple(PhysicalPart(**part) for part in _parts(data.get("physical") or [])),
        )
    except KeyError as exc:
        raise ManifestError(f"the field {exc} is missing") from None
    except TypeError as exc:
        raise ManifestError(f"a field is malformed: {exc}") from None


def _parts(value: Any) -> list[dict[str, Any]]:
    """A manifest's parts of one kind: a list (version 2) or a single object (version 1)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(part, dict) for part in value):
        return value
    raise TypeError(f"parts must be objects, got {type(value).__name__}")
