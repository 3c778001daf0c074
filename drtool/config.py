"""Environments: an inventory found by name, read once, validated up front.

Every problem is collected and reported at once (exit 2) before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drtool import paths
from drtool.core.model import Objectives
from drtool.errors import ConfigError

ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SOURCE_GROUPS = ("pg_primary", "redis_primary")
TARGET_GROUPS = ("pg_restore_target", "redis_restore_target", "app")
REQUIRED_GROUPS = SOURCE_GROUPS + TARGET_GROUPS


@dataclass(frozen=True)
class Environment:
    """One environment's drill configuration, as its inventory declares it."""

    name: str
    inventory: Path
    tier: str
    objectives: Objectives
    groups: dict[str, tuple[str, ...]]
    store_root: Path
    growing_tables: tuple[str, ...]
    requires_sandbox: bool = False

    def host(self, group: str) -> str:
        return self.groups[group][0]


def inventory_search_path() -> list[Path]:
    """Where `--env NAME` looks for inventories/NAME, in order."""
    return [paths.content_root() / "inventories", paths.drtool_home() / "inventories"]


def find_inventory(name: str) -> Path:
    """Return the inventory directory of environment `name`, or raise ConfigError."""
    if not ENV_NAME.match(name):
        raise ConfigError(f"not an environment name: {name!r}")
    for folder in inventory_search_path():
        if (folder / name).is_dir():
            return folder / name
    known = sorted({p.name for f in inventory_search_path() if f.is_dir() for p in f.iterdir()
                    if p.is_dir()})
    raise ConfigError(f"unknown environment {name!r} (known: {', '.join(known) or 'none'})")


def _positive_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def environment_from_inventory(name: str, inventory: Path, listing: dict[str, Any]) -> Environment:
    """Build an Environment from `ansible-inventory --list` output, or raise ConfigError
    listing every problem: missing groups, objectives, unsafe restore targets."""
    where = f"inventory {inventory}"
    hostvars: dict[str, dict[str, Any]] = listing.get("_meta", {}).get("hostvars", {})
    problems: list[str] = []
    groups: dict[str, tuple[str, ...]] = {}
    for group in REQUIRED_GROUPS:
        hosts = tuple(listing.get(group, {}).get("hosts", []))
        if len(hosts) != 1:
            problems.append(f"group {group}: needs exactly one host, has {len(hosts)}")
        groups[group] = hosts
    all_hosts = sorted({h for hosts in groups.values() for h in hosts})
    first = hostvars.get(all_hosts[0], {}) if all_hosts else {}

    def setting(key: str) -> Any:
        values = {repr(hostvars.get(h, {}).get(key)) for h in all_hosts}
        if len(values) > 1:
            problems.append(f"{key}: differs between hosts; set it once in group_vars/all")
        return first.get(key)

    objectives = {}
    for key in ("drtool_rto_objective_s", "drtool_rpo_objective_s"):
        value = _positive_number(setting(key))
        if value is None:
            problems.append(f"{key}: must be a positive number of seconds, got {first.get(key)!r}")
        objectives[key] = value or 0.0
    tier = str(setting("drtool_tier") or "production")
    growing = setting("drtool_verify_growing_tables") or []
    if not isinstance(growing, list) or not all(isinstance(t, str) for t in growing):
        problems.append("drtool_verify_growing_tables: must be a list of schema.table names")
        growing = []
    store = setting("drtool_store_path")
    if store is not None and (not isinstance(store, str) or not Path(store).is_absolute()):
        problems.append(f"drtool_store_path: must be an absolute path, got {store!r}")
        store = None

    problems.extend(guard_problems(tier, groups, hostvars))
    if problems:
        raise ConfigError(f"{where} is not usable", problems)
    return Environment(
        name=name, inventory=inventory, tier=tier,
        objectives=Objectives(objectives["drtool_rto_objective_s"],
                              objectives["drtool_rpo_objective_s"]),
        groups=groups, store_root=Path(store) if store else paths.backups_dir(name),
        growing_tables=tuple(growing),
        requires_sandbox=setting("drtool_requires_sandbox") is True,
    )


def guard_problems(
    tier: str, groups: dict[str, tuple[str, ...]], hostvars: dict[str, dict[str, Any]]
) -> list[str]:
    """The production guard: a destructive target must be marked drtool_drill_target, live in
    a non-production tier and never be a backup source. Returns one line per violation."""
    problems = []
    sources = {h for g in SOURCE_GROUPS for h in groups.get(g, ())}
    for group in TARGET_GROUPS:
        for host in groups.get(group, ()):
            if tier == "production":
                problems.append(f"{host} ({group}): refused, the environment's tier is production")
            if hostvars.get(host, {}).get("drtool_drill_target") is not True:
                problems.append(f"{host} ({group}): refused, not marked drtool_drill_target: true")
            if host in sources:
                problems.append(f"{host} ({group}): refused, it is also a backup source")
    return problems
