"""The postgres kind: a PostgreSQL cluster and the databases a drill restores from it."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from drtool.components import methods
from drtool.components.model import SOURCE, TARGET, Component, Place
from drtool.core.manifest import Manifest
from drtool.core.model import PASSED, Check, TaskRecord

KIND = "postgres"
FAMILY = "postgres"  # its endpoints are PostgreSQL servers (the guard and the locks compare them)
LABEL = "PostgreSQL"
PATH_KEY = "drtool_postgres_data_dir"  # the data directory no path drtool deletes may hold
PATH_IS_FILE = False


def plan(component: Component) -> dict[str, list[tuple[str, str]]]:
    """What a drill does with this component in each phase, on which side."""
    unbound = component.all_databases and not component.databases
    names = "the databases the preflight finds" if unbound else databases_shown(component)
    if methods.is_physical(method_of(component)):
        where = component.target.path if component.target else None
        return {
            "backup": [(SOURCE, "the newest pgBackRest backup of the stanza (or one taken "
                                "now); a recovery target set on the running cluster with "
                                f"exact counts of {names} at it; writes a sentinel row; waits "
                                "until its WAL is archived")],
            "snapshot": [(TARGET, f"counts {names}, stops the cluster, copies its data "
                                  f"directory {where}, starts it again")],
            "disaster": [(TARGET, f"DESTROYS: stops the cluster and empties {where}")],
            "restore": [(TARGET, f"pgbackrest restore of the whole cluster into {where}, "
                                 "recovered to the target and promoted; never archives")],
            "verify": [(TARGET, f"in {names}: exact counts, sequences, sentinel; writes and "
                                "deletes a row")],
            "cleanup": [(TARGET, "removes the safety snapshot")],
        }
    return {
        "backup": [(SOURCE, f"pg_dump of {names}"
                    + (" (all but postgres and the templates)" if unbound else "")
                    + " with exact counts; writes a sentinel row; the dump goes to the store")],
        "snapshot": [(TARGET, f"safety copy of what {names} holds now: in its cluster "
                              "(CREATE DATABASE ... TEMPLATE), else by pg_dump")],
        "disaster": [(TARGET, f"DESTROYS: drops {names}")],
        "restore": [(TARGET, "checks every file's sha256, then recreates "
                             f"{names} and pg_restores the backup")],
        "verify": [(TARGET, "exact counts, sequences, sentinel; writes and deletes a row")],
        "cleanup": [(TARGET, "drops the safety copy, removes the snapshot and the staged "
                             "backup")],
    }


def stores(component: Component) -> list[dict[str, Any]]:
    """The scope's data-store entries: one per side (and database)."""
    out = []
    for side, role in ((component.source, "source"), (component.target, "restore target")):
        if side is None:
            continue
        entry: dict[str, Any] = {"kind": "postgresql", "role": role, "host": side.host,
                                 "component": component.name,
                                 "endpoint": f"{side.address}:{side.port}"}
        if component.databases or component.all_databases:
            entry["database"] = databases_shown(component)
        out.append(entry)
    return out


def databases_shown(component: Component) -> str:
    """The databases, as a plan or a scope names them."""
    if component.databases:
        return ", ".join(component.databases)
    return "all (found at preflight)" if component.all_databases else "the databases"


def found_in(component: Component, manifest: Manifest) -> Component:
    """A component declared with `databases: all`, with the databases its backup holds
    (its parts of `manifest`); any other component as it is."""
    return with_found(component, {component.name: [
        p.database for p in manifest.postgres if p.component == component.name]})


def with_found(component: Component, found: Mapping[str, Sequence[str]]) -> Component:
    """A component declared with `databases: all`, with the databases `found` gives it
    ({component: [database]}: a preflight's listing of the source, or a manifest's);
    any other component, or one `found` does not name, as it is."""
    if not component.all_databases or component.name not in found:
        return component
    return replace(component, databases=tuple(str(d) for d in found[component.name]))


LIST = "drtool_postgres_clusters"


def from_sides(name: str, source: tuple[str, Mapping[str, Any]] | None,
               target: tuple[str, Mapping[str, Any]] | None) -> Component:
    """A postgres component from its sides as resolved on their hosts: (host, values)."""
    values = (target or source or ("", {}))[1]
    databases = values.get("databases") or ()
    every = databases == "all"
    by_side = {side: str(place[1].get("method") or methods.DEFAULT)
               for side, place in ((SOURCE, source), (TARGET, target)) if place is not None}
    return Component(name, KIND, _place(source), _place(target),
                     databases=() if every else tuple(str(d) for d in databases),
                     all_databases=every,
                     settings={"bin_dir": values.get("bin_dir"),
                               "method": by_side.get(TARGET) or by_side.get(SOURCE)
                               or methods.DEFAULT,
                               "method_of": by_side,
                               "stanza": values.get("pgbackrest_stanza") or ""})


def method_of(component: Component) -> str:
    """How the component is backed up and restored (see drtool.components.methods)."""
    return str(component.settings.get("method") or methods.DEFAULT)


def method_problems(component: Component) -> list[tuple[str, str]]:
    """(key, message) for a method the component's sides disagree on, or a physical
    method without what it needs: a stanza, and the target's data directory (where the
    restore writes)."""
    key = f"{LIST}[{component.name}]"
    sides = dict(component.settings.get("method_of") or {})
    if len(set(sides.values())) > 1:
        return [(f"{key}.method", "the source and the target resolve to different methods ("
                                  + ", ".join(f"{s}: {m}" for s, m in sorted(sides.items()))
                 + "): set drtool_postgres_method once, on the component")]
    found = []
    if methods.is_physical(method_of(component)):
        if not component.settings.get("stanza"):
            found.append((f"{key}.pgbackrest_stanza",
                          f"the {method_of(component)} method needs the cluster's stanza"))
        if component.target is not None and not component.target.path:
            found.append((f"{key}.target.data_dir",
                          "a physical restore needs the target's data directory"))
        if component.target is not None and not _local(component.target.address):
            found.append((f"{key}.target.host", f"{component.target.address!r}: a physical "
                          "restore writes the data directory on the target's host, so drtool "
                          "must reach the server it starts there: a loopback address or a "
                          "socket folder"))
    return found


def _local(address: str | None) -> bool:
    """Whether a server address, as seen from its host, is that host itself."""
    if not address or address.startswith("/") or address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _place(side: tuple[str, Mapping[str, Any]] | None) -> Place | None:
    if side is None:
        return None
    host, values = side
    return Place(host, str(values.get("host") or "127.0.0.1"), int(values.get("port") or 5432),
                 str(values.get("data_dir") or "") or None)


def role_checks(results: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    """What the restore did about the roles its dump needs, per database (a passed
    postgres.roles check; `results`: {host/cluster/database: facts}, published by
    roles/drtool_postgres/tasks/restore.yml): none were missing, which it created, or that it
    restored without them."""
    checks = []
    for where, facts in sorted(results.items()):
        missing = ", ".join(facts.get("missing") or [])
        if facts.get("action") == "create":
            actual = "created " + ", ".join(facts.get("created") or [])
            parts = ["created from the backup's globals: CREATE ROLE and its ALTER ROLE "
                     "attributes, settings and memberships"]
            if facts.get("memberships"):
                parts.append("granted " + ", ".join(facts["memberships"]))
            if facts.get("skipped_memberships"):
                parts.append("not granted (a role the target had is never changed, a role "
                             "it lacks is not created): " + ", ".join(
                                 facts["skipped_memberships"]))
            given = facts.get("passwords_set") or []
            parts.append("passwords from drtool_postgres_role_passwords for "
                         + ", ".join(given) if given else "no password set")
            detail = "; ".join(parts)
        elif facts.get("action") == "fallback":
            role = (facts.get("restore_args") or {}).get("role")
            actual = f"restored without {missing}"
            detail = (f"the target lacks {missing}: restored with --no-owner --no-privileges "
                      f"--role={role} because drtool_postgres_create_roles is false; its "
                      f"objects belong to {role} and the dump's grants were left out")
        else:
            actual, detail = "all present", "the target had every role the dump needs"
        checks.append(Check("postgres.roles", where, ", ".join(facts.get("needed") or [])
                            or "none", actual, PASSED, detail))
    return checks


def recovery_of(manifest: Manifest, asked: tuple[str, str] | None = None
                ) -> dict[str, dict[str, Any]]:
    """What each physically backed-up cluster's restore asks pgBackRest for: the backup its
    manifest names (`backup_set`) and the recovery target its backup set; or the target
    `asked` of `drtool restore` as (type, target): ("time", T) from the backup pgBackRest
    picks for T (PostgreSQL ignores a time before the end of the backup it starts from),
    ("lsn", LSN), ("immediate", "") (the backup's own consistent point) or ("default", "")
    (the end of the archive), these three from the manifest's backup."""
    if asked is not None:
        kind, target = asked
        return {part.component: {"backup_set": "" if kind == "time"
                                 else part.backup.get("label") or "",
                                 "target_type": kind, "target": target, "exclusive": False}
                for part in manifest.physical}
    return {part.component: {"backup_set": part.backup.get("label") or "",
                             "target_type": part.recovery_target.get("type") or "default",
                             "target": str(part.recovery_target.get("target") or ""),
                             "exclusive": bool(part.recovery_target.get("exclusive"))}
            for part in manifest.physical}


# How a physical restore's steps are named in the journal.
RESTORE_STEPS = {"copy": "copy the backup's files (pgbackrest restore)",
                 "replay": "replay WAL to the recovery target",
                 "promotion": "end recovery and promote"}


def restore_steps(component: str, host: str, done: Mapping[str, Any]) -> list[TaskRecord]:
    """A physical restore's copy, WAL replay and promotion as task records of the restore
    phase, as its module timed them (`done`: its published facts)."""
    steps = [step for step in done.get("steps") or [] if isinstance(step, Mapping)]
    return [TaskRecord(host, f"{component}: {RESTORE_STEPS.get(str(step.get('step')), '?')}",
                       "drtool.postgres.physical", "ok", step.get("started_at"),
                       step.get("ended_at"), step.get("duration_s"))
            for step in steps]
