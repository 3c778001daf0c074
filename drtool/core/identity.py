"""The production guard's second line: is a restore target a backup source, whatever it is
called? Judged on what the servers say they are, asked at preflight over the connection
each phase uses, before anything is destroyed:

- PostgreSQL: `system_identifier` (pg_control_system()), set by initdb and kept by every
  physical copy of a cluster. A physical method's target is such a copy of its own source
  once it was drilled: for it, the same identifier is the source only where its data
  directory is the source's too (`data_directory`, on the same machine-id) or unknown;
- Redis: the server's `run_id` (INFO server), and the RDB file it loads and saves
  (CONFIG GET dir and dbfilename) on a machine (the sha256 of its /etc/machine-id).

Pure: given the facts the preflight roles published, returns one Check per restore target.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from drtool import components as kinds
from drtool.components import Component, methods
from drtool.core.model import FAILED, PASSED, Check, Journal

CHECK = "guard.identity"
EXPECTED = "an identity of its own (no backup source's or production host's)"
RECOVERY_EXPECTED = "no other component's backup source (its own, or a new server)"
MACHINE = "machine_id_sha256"  # published instead of the id: machine-id(5) keeps it private


def side_facts(postgres: Mapping[str, Mapping[str, Mapping[str, Any]]],
               redis: Mapping[str, Mapping[str, Mapping[str, Any]]]
               ) -> dict[tuple[str, str], dict[str, Any]]:
    """{(component, side): identity facts} from the preflight roles' drtool_postgres_preflight
    and drtool_redis_preflight stats ({component: {side: facts}}): system_identifier; run_id,
    dir, dbfilename; MACHINE."""
    facts: dict[tuple[str, str], dict[str, Any]] = {}
    for keys, stats in ((("system_identifier", "data_directory", "data_dir_port", MACHINE),
                         postgres),
                        (("run_id", "dir", "dbfilename", MACHINE), redis)):
        for name, sides in stats.items():
            for side, found in (sides or {}).items():
                facts[(name, side)] = {k: (found or {}).get(k) for k in keys}
    return facts


def where(component: Component) -> str:
    """How a check names a component's restore target: host/component."""
    return f"{component.target.host if component.target else '-'}/{component.name}"


def identity_checks(facts: Mapping[tuple[str, str], Mapping[str, Any]],
                    components: Iterable[Component],
                    production: Collection[str] = ()) -> list[Check]:
    """One `guard.identity` Check per PostgreSQL or Redis restore target: failed when its
    PostgreSQL system_identifier, its Redis run_id, or its Redis (dir, dbfilename) on the same
    machine-id equals that of a backup source (any component's source side of that kind) or
    of a side on a `production`-tier host, naming both and the identity; failed too when an
    identity that must be compared is unknown (a target cannot be told apart from a source
    nobody could ask)."""
    components = list(components)
    checks = []
    for component, family, host, mine in _targets(facts, components):
        problems = []
        for other in kinds.of_family(components, family):
            for side in (kinds.SOURCE, kinds.TARGET):
                place = other.place(side)
                if place is None or place.host == host:
                    continue  # a target that is also a source is the name check's refusal
                if side == kinds.SOURCE:
                    what, must = f"backup source {place.host} ({other.name})", True
                elif place.host in production:
                    what, must = f"production-tier host {place.host} ({other.name})", False
                else:
                    continue
                copy = other is component and side == kinds.SOURCE and methods.is_physical(
                    str(component.settings.get("method") or ""))
                problems += _compare(family, host, mine, what, facts.get((other.name, side), {}),
                                     must, copy)
        if family == "postgres" and methods.is_physical(str(component.settings.get("method"))):
            problems += _data_directory_problems(component, mine,
                                                 facts.get((component.name, kinds.SOURCE), {}))
        checks.append(_check(component, EXPECTED, "shared or unknown", problems,
                             _identity(family, mine)))
    return checks


def recovery_checks(facts: Mapping[tuple[str, str], Mapping[str, Any]],
                    components: Iterable[Component],
                    seen: Iterable[Mapping[str, Any]]) -> list[Check]:
    """One `guard.identity` Check per PostgreSQL or Redis recovery target (`drtool recover`:
    each component's target is its recovery side). A recovery may restore onto a
    production-tier host, and onto its own component's source (the rebuilt primary); it is
    refused when the target is another component's source, of this environment or another:
    the backup sources drtool has seen, `seen` ([{env, component, family, host, identity}],
    from the newest journals; see drtool.drill.seen_sources). A target known to be its own
    component's source is never refused (two environments may read one server). Sources
    are not asked now (on the day, they may be gone): what the journals recorded counts,
    and an identity nobody recorded cannot be compared."""
    seen = list(seen)
    checks = []
    for component, family, host, mine in _targets(facts, components):
        own = [s for s in seen if s.get("component") == component.name
               and s.get("own") and _same_store(family, mine, s.get("identity") or {})]
        problems = [] if own else [
            problem for s in seen if s.get("family") == family and not (
                s.get("own") and s.get("component") == component.name)
            for problem in _compare(
                family, host, mine,
                f"backup source {s.get('host')} ({s.get('component')}"
                + ("" if s.get("own") else f" of environment {s.get('env')}") + ")",
                s.get("identity") or {}, False)]
        if family == "postgres" and methods.is_physical(str(component.settings.get("method"))):
            # pgBackRest restores over the declared data directory: it must be the one the
            # server drtool talks to runs from (there is no source to compare it with).
            problems += _data_directory_problems(component, mine, {})
        checks.append(_check(component, RECOVERY_EXPECTED, "shared", problems,
                             _identity(family, mine)
                             + (" (its own backup source)" if own else "")))
    return checks


def _identity(family: str, mine: Mapping[str, Any]) -> str:
    """A target's identity, as a passed check's detail records it."""
    if family == "postgres":
        return f"system_identifier {mine.get('system_identifier')}"
    return f"run_id {mine.get('run_id')}, RDB {_rdb(mine)}"


def _check(component: Component, expected: str, refused: str, problems: list[str],
           detail: str) -> Check:
    """The identity Check of `component`'s target: failed with its `problems`, if any."""
    return Check(CHECK, where(component), expected, refused if problems else "distinct",
                 FAILED if problems else PASSED, "; ".join(problems) if problems else detail)


def _targets(facts: Mapping[tuple[str, str], Mapping[str, Any]],
             components: Iterable[Component]
             ) -> Iterator[tuple[Component, str, str, Mapping[str, Any]]]:
    """(component, family, target host, the target's identity facts) of each PostgreSQL or
    Redis component with a target."""
    for component in components:
        family = kinds.family(component)
        if family is not None and component.target is not None:
            yield (component, family, component.target.host,
                   facts.get((component.name, kinds.TARGET), {}))


def _same_store(family: str, mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> bool:
    """Whether two identities are known and the same store."""
    return bool(_compare(family, "-", mine, "-", theirs, False))


def _compare(service: str, host: str, mine: Mapping[str, Any], other: str,
             theirs: Mapping[str, Any], must: bool, copy: bool = False) -> list[str]:
    """Why `host`'s `service` is `other`'s (or cannot be told from it); [] when it is not.
    `must`: `other` holds that service as a source, so its identity has to be known. `copy`:
    `host` may be a physical copy of `other` (the same system_identifier), and is `other`
    only when its data directory on its machine is `other`'s, or either is unknown."""
    problems = []
    if copy and _elsewhere(mine, theirs):
        return []
    key = "system_identifier" if service == "postgres" else "run_id"
    label = "PostgreSQL system_identifier" if service == "postgres" else "Redis run_id"
    if mine.get(key) in (None, ""):
        if must:
            problems.append(f"{host}'s {label} is unknown: it cannot be told from {other}")
    elif theirs.get(key) in (None, ""):
        if must:
            problems.append(f"{other}'s {label} is unknown: {host} cannot be told from it")
    elif str(mine[key]) == str(theirs[key]):
        problems.append(f"{host} is {other}: same {label} {mine[key]}")
    if service == "redis" and _known_rdb(mine) and _known_rdb(theirs) and (
            _rdb(mine), mine[MACHINE]) == (_rdb(theirs), theirs[MACHINE]):
        problems.append(f"{host} uses {other}'s RDB file: {_rdb(mine)} on the same machine "
                        f"(machine-id sha256 {str(mine[MACHINE])[:16]}...)")
    return problems


def _data_directory_problems(component: Component, mine: Mapping[str, Any],
                             source: Mapping[str, Any]) -> list[str]:
    """A physical restore writes the target's declared data directory: it must be the one
    the target's server runs from, and not the source's on the same machine."""
    declared = component.target.path if component.target else None
    if not declared:
        return [f"{component.name}: a physical restore needs the target's data_dir"]
    host = component.target.host if component.target else "-"
    declared = posixpath.normpath(declared)
    problems = []
    theirs = source.get("data_directory")
    if theirs and posixpath.normpath(str(theirs)) == declared and (
            source.get(MACHINE) in (None, "") or source.get(MACHINE) == mine.get(MACHINE)):
        problems.append(f"{host}'s data_dir {declared} is the data directory of backup source "
                        f"{component.source.host if component.source else '-'} "
                        f"({component.name})")
    port = component.target.port if component.target else None
    listening = mine.get("data_dir_port")
    if listening in (None, ""):
        problems.append(f"{host}: no server runs from its data_dir {declared} (no "
                        "postmaster.pid there): drtool cannot tell it is the one it talks to")
    elif port is not None and str(listening) != str(port):
        problems.append(f"{host}: the server running from {declared} listens on port "
                        f"{listening}, not on its port {port}")
    running = mine.get("data_directory")
    if running in (None, ""):
        problems.append(f"{host}'s server does not say its data directory: it cannot be told "
                        f"that the restore into {declared} restores that server")
    elif posixpath.normpath(str(running)) != declared:
        problems.append(f"{host}'s server runs from {running}, not from its data_dir "
                        f"{declared}: a physical restore there would not restore it")
    return problems


def _elsewhere(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> bool:
    """Whether two PostgreSQL servers are known to run from different data directories
    (another path, or another machine)."""
    known = all(facts.get(k) not in (None, "") for facts in (mine, theirs)
                for k in ("data_directory", MACHINE))
    return known and (posixpath.normpath(str(mine["data_directory"])), mine[MACHINE]) != (
        posixpath.normpath(str(theirs["data_directory"])), theirs[MACHINE])


def _known_rdb(facts: Mapping[str, Any]) -> bool:
    return all(facts.get(k) not in (None, "") for k in ("dir", "dbfilename", MACHINE))


def _rdb(facts: Mapping[str, Any]) -> str:
    if facts.get("dir") in (None, "") or facts.get("dbfilename") in (None, ""):
        return "unknown"
    return f"{str(facts['dir']).rstrip('/')}/{facts['dbfilename']}"


UNDO_EXPECTED = "the server the recovery restored onto"


def undo_checks(facts: Mapping[tuple[str, str], Mapping[str, Any]],
                components: Iterable[Component], recovery: Journal) -> list[Check]:
    """One `guard.identity` Check per PostgreSQL or Redis target of `drtool recover --undo`:
    failed unless the server there now is the one the recovery recorded at its preflight
    (the same machine and PostgreSQL system_identifier, or data directory for a physical
    copy, whose system_identifier the restore itself changes; the same Redis RDB file on the
    same machine: its run_id changes when it restarts). Its snapshot is of that server."""
    recorded = {entry.get("name"): (entry.get("identity") or {}).get(kinds.TARGET) or {}
                for entry in (recovery.scope or {}).get("components", [])
                if isinstance(entry, dict)}
    checks = []
    for component, family, host, mine in _targets(facts, components):
        theirs = recorded.get(component.name) or {}
        if family == "postgres":
            keys: tuple[str, ...] = ((MACHINE, "data_directory") if theirs.get("data_directory")
                                     else (MACHINE, "system_identifier"))
        else:
            keys = (MACHINE, "dir", "dbfilename")
        problems = []
        if not theirs or any(theirs.get(k) in (None, "") for k in keys):
            problems.append(f"recovery {recovery.drill_id} recorded no identity of "
                            f"{component.name}'s target: its snapshot cannot be matched to "
                            "the server there now")
        else:
            differ = [k for k in keys if str(mine.get(k)) != str(theirs.get(k))]
            if differ:
                problems.append(f"{host} is not the server recovery {recovery.drill_id} "
                                f"restored {component.name} onto: its "
                                + ", ".join(f"{k} is {mine.get(k)}, was {theirs.get(k)}"
                                            for k in differ))
        checks.append(Check(CHECK, where(component), UNDO_EXPECTED,
                            "another" if problems else "the same",
                            FAILED if problems else PASSED,
                            "; ".join(problems) if problems
                            else _identity(family, mine) + ", as the recovery recorded it"))
    return checks
