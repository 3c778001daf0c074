"""The postgres kind: a PostgreSQL cluster and the databases a drill restores from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drtool.components.model import SOURCE, TARGET, Component, Place

KIND = "postgres"
FAMILY = "postgres"  # its endpoints are PostgreSQL servers (the guard and the locks compare them)
LABEL = "PostgreSQL"
PATH_KEY = "drtool_postgres_data_dir"  # the data directory no path drtool deletes may hold
PATH_IS_FILE = False
GROUPS = ("pg_primary", "pg_restore_target")  # the one-host-per-group inventory shape


def plan(component: Component) -> dict[str, list[tuple[str, str]]]:
    """What a drill does with this component in each phase, on which side."""
    names = ", ".join(component.databases) or "the databases"
    return {
        "backup": [(SOURCE, f"pg_dump of {names} with exact counts; writes a sentinel row; "
                            "the dump goes to the store")],
        "snapshot": [(TARGET, f"safety dump of what {names} holds now")],
        "disaster": [(TARGET, f"DESTROYS: drops {names}")],
        "restore": [(TARGET, "checks every file's sha256, then recreates "
                             f"{names} and pg_restores the backup")],
        "verify": [(TARGET, "exact counts, sequences, sentinel; writes and deletes a row")],
        "cleanup": [(TARGET, "removes the safety snapshot and the staged backup")],
    }


def place(host: str, settings: Mapping[str, Any]) -> Place:
    """A side of a postgres component, from its host's described settings."""
    return Place(host, str(settings.get("postgres_host") or "127.0.0.1"),
                 int(settings.get("postgres_port") or 5432),
                 str(settings.get("postgres_data_dir") or "") or None)


def from_hosts(source: str, source_settings: Mapping[str, Any], target: str,
               target_settings: Mapping[str, Any]) -> Component:
    database = str(source_settings.get("postgres_database") or "")
    return Component("postgres", KIND, place(source, source_settings),
                     place(target, target_settings), databases=(database,) if database else (),
                     settings={"bin_dir": source_settings.get("postgres_bin_dir")})


def stores(component: Component) -> list[dict[str, Any]]:
    """The scope's data-store entries: one per side (and database)."""
    out = []
    for side, role in ((component.source, "source"), (component.target, "restore target")):
        if side is None:
            continue
        entry: dict[str, Any] = {"kind": "postgresql", "role": role, "host": side.host,
                                 "component": component.name,
                                 "endpoint": f"{side.address}:{side.port}"}
        if component.databases:
            entry["database"] = ", ".join(component.databases)
        out.append(entry)
    return out
