"""The postgres kind: a PostgreSQL cluster and the databases a drill restores from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from drtool.components.model import SOURCE, TARGET, Component, Place
from drtool.core.manifest import Manifest
from drtool.core.model import PASSED, Check

KIND = "postgres"
FAMILY = "postgres"  # its endpoints are PostgreSQL servers (the guard and the locks compare them)
LABEL = "PostgreSQL"
PATH_KEY = "drtool_postgres_data_dir"  # the data directory no path drtool deletes may hold
PATH_IS_FILE = False


def plan(component: Component) -> dict[str, list[tuple[str, str]]]:
    """What a drill does with this component in each phase, on which side."""
    unbound = component.all_databases and not component.databases
    names = "the databases the preflight finds" if unbound else databases_shown(component)
    return {
        "backup": [(SOURCE, f"pg_dump of {names}"
                    + (" (all but postgres and the templates)" if unbound else "")
                    + " with exact counts; writes a sentinel row; the dump goes to the store")],
        "snapshot": [(TARGET, f"safety dump of what {names} holds now")],
        "disaster": [(TARGET, f"DESTROYS: drops {names}")],
        "restore": [(TARGET, "checks every file's sha256, then recreates "
                             f"{names} and pg_restores the backup")],
        "verify": [(TARGET, "exact counts, sequences, sentinel; writes and deletes a row")],
        "cleanup": [(TARGET, "removes the safety snapshot and the staged backup")],
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
    return Component(name, KIND, _place(source), _place(target),
                     databases=() if every else tuple(str(d) for d in databases),
                     all_databases=every,
                     settings={"bin_dir": values.get("bin_dir")})


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
