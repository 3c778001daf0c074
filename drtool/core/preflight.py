"""drtool's own preflight: what each host must answer before a drill changes anything, and
how its answers are judged. Pure: commands are built as strings, answers judged as data;
adapters/ssh.py runs them."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from drtool.components import SOURCE, TARGET, Component
from drtool.core.model import FAILED, PASSED, Check

MAX_CLOCK_SKEW_S = 2.0
DISK_FACTOR = 1.5
REDIS_FILES = "preflight.redis_files"
REDIS_FILES_EXPECTED = "appendonly no, and dir/dbfilename = the target's rdb_path"


@dataclass
class Answer:
    """What one host answered: whether it was reached, each command's exit code and output,
    and its clock's offset from this machine's (seconds, network delay removed)."""

    reached: bool
    error: str = ""
    outputs: dict[str, tuple[int, str]] = field(default_factory=dict)
    clock_offset_s: float | None = None


def _port_check(address: str, port: int) -> str:
    # bash's /dev/tcp: no extra tool needed on the host to see a port answer.
    return f"timeout 5 bash -c {shlex.quote(f'</dev/tcp/{address}/{port}')}"


def _free_kib(path: str) -> str:
    folder = shlex.quote(path.rsplit("/", 1)[0] or "/")
    return (f"p={folder}; while [ ! -d \"$p\" ]; do p=$(dirname \"$p\"); done; "
            "df -Pk \"$p\" | awk 'NR==2 {print $4}'")


def commands_for(host: str, settings: dict[str, Any],
                 components: Iterable[Component]) -> dict[str, str]:
    """The commands `host` must run, by check name, from its described settings and the
    components read from or restored onto it."""
    wanted = {"tools.tar": "command -v tar"}
    if settings.get("become"):
        wanted["become"] = "sudo -n true"
    restores = False
    for component in components:
        for side in (SOURCE, TARGET):
            place = component.place(side)
            if place is None or place.host != host:
                continue
            restores = restores or (side == TARGET and component.kind != "service")
            if component.kind == "postgres":
                bin_dir = (component.settings.get("bin_dir")
                           or settings.get("postgres_bin_dir", "/usr/lib/postgresql/15/bin"))
                wanted["tools.postgres"] = " && ".join(
                    f"test -x {shlex.quote(f'{bin_dir}/{tool}')}"
                    for tool in ("pg_dump", "pg_restore"))
                wanted[_service_check("postgres", component)] = _port_check(
                    str(place.address), int(place.port or 5432))
                if side == TARGET:
                    wanted["version.pg_restore"] = (
                        f"{shlex.quote(f'{bin_dir}/pg_restore')} --version")
            elif component.kind == "redis":
                wanted[_service_check("redis", component)] = _port_check(
                    str(place.address), int(place.port or 6379))
    if restores:
        wanted["disk.free_kib"] = _free_kib(str(settings.get("backup_path") or "/"))
    return wanted


def _service_check(family: str, component: Component) -> str:
    """The check's name: service.<family>.<component>."""
    return f"service.{family}.{component.name}"


def major_version(text: str) -> int | None:
    """The major version in 'pg_restore (PostgreSQL) 15.8' or '15.8 (Debian ...)'."""
    match = re.search(r"(\d+)(?:\.\d+)+", text)  # the first dotted version in the text
    return int(match.group(1)) if match else None


def judge(answers: dict[str, Answer], backup_size: int | None) -> list[Check]:
    """Every preflight check, passed or failed, for every host; nothing stops at the first."""
    checks: list[Check] = []

    def add(name: str, host: str, expected: Any, actual: Any, ok: bool, detail: str = "") -> None:
        checks.append(Check(f"preflight.{name}", host, expected, actual,
                            PASSED if ok else FAILED, detail))

    offsets = {}
    for host, answer in sorted(answers.items()):
        add("reachable", host, "reached over ssh with its user and key",
            "reached" if answer.reached else answer.error, answer.reached)
        if not answer.reached:
            continue
        if answer.clock_offset_s is not None:
            offsets[host] = answer.clock_offset_s
        for name, (code, output) in sorted(answer.outputs.items()):
            if name == "disk.free_kib":
                free = int(output) * 1024 if output.isdigit() else None
                need = int(backup_size * DISK_FACTOR) if backup_size else None
                add("disk", host, f">= {need} bytes free" if need else "space to restore into",
                    free, free is not None and (need is None or free >= need),
                    "" if need else "no earlier backup to size against")
            elif name == "version.pg_restore":
                add("pg_restore", host, "installed", output or f"exit {code}", code == 0)
            else:
                add(name, host, "exit 0", f"exit {code}" + (f": {output}" if output else ""),
                    code == 0)
    if offsets:
        spread = max([*offsets.values(), 0.0]) - min([*offsets.values(), 0.0])
        add("clock_skew", "all hosts", f"< {MAX_CLOCK_SKEW_S} s", round(spread, 3),
            spread < MAX_CLOCK_SKEW_S, "between the hosts and this machine")
    return checks


def pg_restore_check(target: str, pg_restore_version: str, source: str,
                     server_version: str) -> Check:
    """pg_restore on the target must be at least the source server's major version."""
    have, need = major_version(pg_restore_version), major_version(server_version)
    ok = have is not None and need is not None and have >= need
    return Check("preflight.pg_restore_version", target, f">= {need} (server on {source})",
                 have, PASSED if ok else FAILED)


ROOM = "preflight.room"


def physical_checks(target: str, source_host: str, source: Mapping[str, Any],
                    mine: Mapping[str, Any]) -> list[Check]:
    """What a physical restore needs of its two sides: the same PostgreSQL major version
    (a data directory is read by its own major only) and the same pgBackRest version on the
    source (which wrote the repository) and the target (which restores from it)."""
    need, have = major_version(str(source.get("server_version") or "")), major_version(
        str(mine.get("server_version") or ""))
    checks = [Check("preflight.postgres_major", target, f"{need} (server on {source_host})",
                    have, PASSED if need is not None and have == need else FAILED)]
    wrote, reads = source.get("pgbackrest_version"), mine.get("pgbackrest_version")
    checks.append(Check("preflight.pgbackrest_version", target,
                        f"{wrote} (as on {source_host})", reads,
                        PASSED if wrote and reads == wrote else FAILED))
    return checks


def room_check(target: str, mine: Mapping[str, Any], snapshot: bool = True) -> list[Check]:
    """Whether the target's file systems can take what a physical restore writes: first the
    safety snapshot's copy of the data directory (when the operation takes one), then the
    backup's cluster (its database size, from pgBackRest's `info`) in the data directory
    the disaster emptied. On one file system the copy stays while the restore writes, so
    the free bytes must hold both the copy and, the data directory emptied, the restore.
    No check when the backup is not known at preflight (a fresh drill that takes its own)."""
    room = mine.get("room") or {}
    need = room.get("backup_size")
    if not isinstance(need, int) or need <= 0:
        return []
    expected = f"{need} bytes free for backup {room.get('label')}"
    free, held = room.get("free_bytes"), room.get("data_dir_bytes")
    if not isinstance(free, int) or not isinstance(held, int):
        why = room.get("error") or "no answer"
        return [Check(ROOM, target, expected, None, FAILED,
                      f"the target's free space could not be measured: {why}")]
    shared = bool(room.get("snapshot_same_filesystem"))
    if snapshot and shared:
        have = free - held  # the disaster frees what the copy took
        spent = f"{_size(free)} free, less {_size(held)} for the safety snapshot's copy"
    else:
        have = free + held
        spent = f"{_size(free)} free, {_size(held)} the data directory holds now"
    problems = []
    if have < need:
        problems.append(f"the restore needs {_size(need)} and the data directory's file "
                        f"system would have {_size(max(have, 0))} ({spent})")
    copy_free = room.get("snapshot_free_bytes")
    if snapshot and not shared and isinstance(copy_free, int) and copy_free < held:
        problems.append(f"the safety snapshot's copy needs {_size(held)} and its file system "
                        f"has {_size(copy_free)} free")
    detail = "; ".join(problems) + (": free space on the target, or drill onto another"
                                    if problems else "")
    return [Check(ROOM, target, expected, have, FAILED if problems else PASSED, detail)]


def _size(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def redis_file_checks(found: Mapping[str, Mapping[str, Any]],
                      targets: Collection[str]) -> list[Check]:
    """One `preflight.redis_files` Check per Redis restore target, from what the running
    server said (the drtool_redis_preflight stats: appendonly, dir, dbfilename, and the
    inventory's rdb_path): a restore replaces drtool_redis_rdb_path and restarts the server,
    so the server must load exactly that file at start. Failed when it keeps an AOF (it would
    load the AOF and ignore the RDB), when its dir/dbfilename name another file, or when its
    CONFIG cannot be read (nobody can tell which file it loads)."""
    checks = []
    for host in sorted(targets):
        said = found.get(host, {})
        problems = _redis_file_problems(said)
        actual = (f"appendonly {said.get('appendonly')}, loads "
                  f"{_joined(said.get('dir'), said.get('dbfilename'))}")
        checks.append(Check(REDIS_FILES, host, REDIS_FILES_EXPECTED, actual,
                            FAILED if problems else PASSED, "; ".join(problems)))
    return checks


def _joined(folder: Any, name: Any) -> str:
    if folder in (None, "") or name in (None, ""):
        return "an unknown file"
    return posixpath.join(str(folder), str(name))


def _redis_file_problems(said: Mapping[str, Any]) -> list[str]:
    if not said:
        return ["the Redis preflight did not report this server"]
    if any(said.get(k) in (None, "") for k in ("appendonly", "dir", "dbfilename")):
        return ["Redis would not say its appendonly, dir and dbfilename (CONFIG GET refused "
                "or renamed): drtool cannot tell which file it loads at start; allow CONFIG "
                "GET to drtool's user on the drill target"]
    problems = []
    if said["appendonly"] != "no":
        problems.append(
            f"Redis has appendonly {said['appendonly']}: an RDB restore would be ignored on "
            "restart; turn AOF off on the drill target (appendonly no in its configuration) "
            "or name another restore target for it in drtool_redis_instances")
    loads = posixpath.normpath(_joined(said["dir"], said["dbfilename"]))
    given = said.get("rdb_path")
    if given in (None, "") or posixpath.normpath(str(given)) != loads:
        problems.append(
            f"Redis loads {loads} at start but the target's rdb_path (drtool_redis_rdb_path) "
            f"is {given}: a restore would replace a file the server does not read; set the "
            f"target's rdb_path to {loads}")
    return problems


def refusal(checks: Iterable[Check]) -> str | None:
    """The failed checks as one reason line (a Redis file check as 'host: why'), or None."""
    lines = [f"{c.target}: {c.detail}" if c.name == REDIS_FILES else c.describe()
             for c in checks if not c.passed]
    return "; ".join(lines) if lines else None


OCCUPIED = "recover.target"
OCCUPIED_EXPECTED = "nothing live to replace (or --replace-existing)"


def occupancy_checks(postgres: Mapping[str, Mapping[str, Any]],
                     redis: Mapping[str, Mapping[str, Any]],
                     components: Iterable[Component], replace: bool,
                     files: Mapping[str, Mapping[str, Any]] | None = None) -> list[Check]:
    """`drtool recover`'s refusal to replace live data unasked: one Check per PostgreSQL or
    Redis recovery target, from what its preflight found there ({component: {side: facts}}:
    a database of the component's with a table holding a row, its size and newest heartbeat;
    a Redis server holding keys, how many and its newest heartbeat; a tree holding entries,
    how many at its top). Failed when the target
    holds data and `replace` (--replace-existing) was not given; passed, saying what was
    found and replaced, when it was."""
    checks = []
    for component in components:
        if component.target is None or component.kind not in ("postgres", "redis", "files"):
            continue
        stats = {"postgres": postgres, "redis": redis, "files": files or {}}[component.kind]
        found = (stats.get(component.name) or {}).get(TARGET) or {}
        if component.kind == "files":
            entries = found.get("entries")
            held = [f"the tree {found.get('path')} holds {entries} entries at its top"] \
                if entries not in (None, "", 0, "0") else []
            unknown = entries in (None, "")
        elif component.kind == "postgres":
            held = [f"database {name} ({_size(int(o.get('size_bytes') or 0))}, "
                    f"{o.get('tables')} tables"
                    + (f", newest heartbeat {o['heartbeat_at']}" if o.get("heartbeat_at") else "")
                    + ")"
                    for name, o in sorted((found.get("occupancy") or {}).items())
                    if isinstance(o, dict) and o.get("has_rows")]
            unknown = found.get("occupancy") is None
        else:
            counts = {db: n for db, n in (found.get("counts") or {}).items() if n}
            held = [f"{sum(counts.values())} keys in " + ", ".join(sorted(counts))
                    + (f", newest heartbeat {found['heartbeat_at']}"
                       if found.get("heartbeat_at") else "")] if counts else []
            unknown = "counts" not in found
        where = f"{component.target.host}/{component.name}"
        if unknown:  # a physical method's target is not measured
            checks.append(Check(OCCUPIED, where, OCCUPIED_EXPECTED, "unknown",
                                PASSED if replace else FAILED,
                                "the preflight did not say what the target holds"
                                + ("; replaced (--replace-existing)" if replace else
                                   "; give --replace-existing once you know it holds nothing "
                                   "you need")))
        elif not held:
            checks.append(Check(OCCUPIED, where, OCCUPIED_EXPECTED, "empty", PASSED,
                                "nothing of the component's there yet"))
        else:
            checks.append(Check(OCCUPIED, where, OCCUPIED_EXPECTED, "holds data",
                                PASSED if replace else FAILED,
                                ("replaced (--replace-existing): " if replace else
                                 "it holds live data; give --replace-existing to replace it: ")
                                + "; ".join(held)))
    return checks


def snapshot_room_paths(components: Iterable[Component]) -> dict[str, list[str]]:
    """Per host of a recovery's data targets, the files and trees its safety snapshot would
    copy (a Redis RDB, a tree); a cluster's databases are sized by its preflight."""
    paths: dict[str, list[str]] = {}
    for component in components:
        target = component.target
        if target is None or component.kind not in ("postgres", "redis", "files"):
            continue
        measured = paths.setdefault(target.host, [])
        if component.kind != "postgres" and target.path and target.path not in measured:
            measured.append(target.path)
    return paths


def snapshot_room(room: Mapping[str, Mapping[str, Any]],
                  postgres: Mapping[str, Mapping[str, Any]],
                  components: Iterable[Component],
                  redis: Mapping[str, Mapping[str, Any]] | None = None
                  ) -> tuple[list[str], list[str]]:
    """Where a recovery's safety snapshot fits: (the hosts to snapshot nothing on, a warning
    for each). A host needs an estimate of what its targets hold now: a database's size on
    disk (its dump is smaller), a physical cluster's data directory (copied as it is), a
    Redis RDB file (else the memory Redis uses, when it holds keys and keeps no file), a
    tree's files (tar adds its headers). Hosts that share a file system on one machine share
    its room, taken in the order of the hosts' names. A host whose room could not be
    measured is snapshotted, with a warning (a snapshot that runs out of room fails before
    the recovery changes anything)."""
    need: dict[str, int] = {}
    names: dict[str, list[str]] = {}
    for component in components:
        target = component.target
        if target is None or component.kind not in ("postgres", "redis", "files"):
            continue
        said = (postgres.get(component.name) or {}).get(TARGET) or {}
        sizes = (room.get(target.host) or {}).get("sizes") or {}
        if component.kind == "postgres" and isinstance(said.get("room"), dict):
            held = int(said["room"].get("data_dir_bytes") or 0)  # a physical copy
        elif component.kind == "postgres":
            held = sum(int(o.get("size_bytes") or 0) for o in (said.get("occupancy") or {})
                       .values() if isinstance(o, dict))
        else:
            held = int(sizes.get(target.path) or 0) if target.path else 0
            stored = (redis or {}).get(component.name, {}).get(TARGET) or {}
            if component.kind == "redis" and not held and any(
                    (stored.get("counts") or {}).values()):
                held = int(stored.get("used_memory") or 0)
        need[target.host] = need.get(target.host, 0) + held
        names.setdefault(target.host, []).append(component.name)
    skip: list[str] = []
    warnings: list[str] = []
    left: dict[str, int] = {}  # per file system: what the hosts before this one left free
    for host in sorted(need):
        measured = room.get(host) or {}
        free = measured.get("free_bytes")
        if not isinstance(free, int):
            if measured.get("error"):
                warnings.append(f"the room for a safety snapshot on {host} could not be "
                                f"measured ({measured['error']}): it is taken anyway")
            continue
        # A file system is known by its machine and device; without a machine id, by host.
        filesystem = str(measured.get("filesystem") or "")
        key = filesystem if filesystem and not filesystem.startswith(":") else host
        have = left.get(key, free)
        if need[host] <= have:
            left[key] = have - need[host]
            continue
        skip.append(host)
        warnings.append(
            f"no safety snapshot on {host}: what its recovery targets hold "
            f"({', '.join(names[host])}) takes {_size(need[host])} and {measured.get('at')} "
            f"has {_size(max(have, 0))} left: this recovery cannot be undone there (free "
            "space, or set drtool_snapshot_path to a larger file system)")
    return skip, warnings
