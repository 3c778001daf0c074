"""The production guard's second line: is a restore target a backup source, whatever it is
called? Judged on what the servers say they are, asked at preflight over the connection
each phase uses, before anything is destroyed:

- PostgreSQL: `system_identifier` (pg_control_system()), set by initdb and kept by every
  physical copy of a cluster;
- Redis: the server's `run_id` (INFO server), and the RDB file it loads and saves
  (CONFIG GET dir and dbfilename) on a machine (the sha256 of its /etc/machine-id).

Pure: given the facts the preflight roles published, returns one Check per restore target.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from drtool import components as kinds
from drtool.components import Component
from drtool.core.model import FAILED, PASSED, Check

CHECK = "guard.identity"
EXPECTED = "an identity of its own (no backup source's or production host's)"
MACHINE = "machine_id_sha256"  # published instead of the id: machine-id(5) keeps it private


def merge_facts(postgres: Mapping[str, Mapping[str, Any]],
                redis: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{host: identity facts} from the preflight roles' drtool_postgres_preflight and
    drtool_redis_preflight stats: system_identifier; run_id, dir, dbfilename; MACHINE."""
    facts: dict[str, dict[str, Any]] = {}
    for host, found in postgres.items():
        facts.setdefault(host, {}).update({k: found.get(k) for k in ("system_identifier", MACHINE)})
    for host, found in redis.items():
        mine = facts.setdefault(host, {})
        mine.update({k: found.get(k) for k in ("run_id", "dir", "dbfilename")})
        mine[MACHINE] = mine.get(MACHINE) or found.get(MACHINE)
    return facts


def identity_checks(facts: Mapping[str, Mapping[str, Any]],
                    components: Iterable[Component],
                    production: Collection[str] = ()) -> list[Check]:
    """One `guard.identity` Check per PostgreSQL or Redis restore target: failed when its
    PostgreSQL system_identifier, its Redis run_id, or its Redis (dir, dbfilename) on the same
    machine-id equals that of a backup source or of a `production`-tier host, naming both
    hosts and the identity; failed too when an identity that must be compared is unknown
    (a target cannot be told apart from a source nobody could ask)."""
    components = list(components)
    read = {family: {c.source.host for c in kinds.of_family(components, family) if c.source}
            for family in ("postgres", "redis")}
    sources = read["postgres"] | read["redis"]
    others = sorted(sources | set(production))
    checks = []
    for host, services in _store_targets(components).items():
        found = facts.get(host, {})
        problems, mine = [], []
        for other in others:
            if other == host:
                continue  # a target that is also a source is the name check's refusal
            what = "backup source" if other in sources else "production-tier host"
            theirs = facts.get(other, {})
            must = {family: other in hosts for family, hosts in read.items()}
            for service in services:
                problems += _compare(service, host, found, f"{what} {other}", theirs,
                                     must[service])
        if "postgres" in services:
            mine.append(f"system_identifier {found.get('system_identifier')}")
        if "redis" in services:
            mine.append(f"run_id {found.get('run_id')}, RDB {_rdb(found)}")
        detail = "; ".join(problems) if problems else ", ".join(mine)
        actual = "shared or unknown" if problems else "distinct"
        checks.append(Check(CHECK, host, EXPECTED, actual, FAILED if problems else PASSED,
                            detail))
    return checks


def _store_targets(components: Iterable[Component]) -> dict[str, list[str]]:
    """{target host: the server families restored onto it}, hosts sorted. (A service holds
    no data store; a machine-id rule for file and service targets belongs with them.)"""
    out: dict[str, list[str]] = {}
    for host, restored in kinds.targets(components).items():
        families = sorted({f for f in map(kinds.family, restored) if f is not None})
        if families:
            out[host] = families
    return dict(sorted(out.items()))


def _compare(service: str, host: str, mine: Mapping[str, Any], other: str,
             theirs: Mapping[str, Any], must: bool) -> list[str]:
    """Why `host`'s `service` is `other`'s (or cannot be told from it); [] when it is not.
    `must`: `other` holds that service as a source, so its identity has to be known."""
    problems = []
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


def _known_rdb(facts: Mapping[str, Any]) -> bool:
    return all(facts.get(k) not in (None, "") for k in ("dir", "dbfilename", MACHINE))


def _rdb(facts: Mapping[str, Any]) -> str:
    if facts.get("dir") in (None, "") or facts.get("dbfilename") in (None, ""):
        return "unknown"
    return f"{str(facts['dir']).rstrip('/')}/{facts['dbfilename']}"
