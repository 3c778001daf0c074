"""What a drill covered, for the journal and the reports: hosts, data stores, and the
inventory's version. Nothing secret is read: only what playbooks/describe.yml publishes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from drtool.config import SOURCE_GROUPS, TARGET_GROUPS, Environment

# Which group holds which data store, and the part it plays in a drill.
DATA_STORES = (
    ("postgresql", "pg_primary", "source"), ("postgresql", "pg_restore_target", "restore target"),
    ("redis", "redis_primary", "source"), ("redis", "redis_restore_target", "restore target"),
)


def inventory_version(inventory: Path) -> dict[str, Any]:
    """The git commit the inventory is at, and whether it has uncommitted changes; None
    values when the inventory is not in a git work tree (or git is not installed)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(inventory), *args], capture_output=True,
                                  text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    changes = git("status", "--porcelain", "--untracked-files=normal", "--", ".")
    return {"commit": commit, "dirty": bool(changes) if changes is not None else None}


def scope_of(env: Environment, version: dict[str, Any]) -> dict[str, Any]:
    """The environment as the drill saw it: tier, cadence, every host, every data store."""
    hosts = []
    for name in sorted(env.hosts):
        settings = env.hosts[name]
        groups = [g for g in (*SOURCE_GROUPS, *TARGET_GROUPS) if name in env.groups.get(g, ())]
        hosts.append({
            "name": name, "groups": groups, "address": settings.get("address"),
            # Where Ansible really connects (ssh_config's HostName resolved by `ssh -G`):
            # the address the production guard judged.
            "connection_address": settings.get("connection_address"),
            "connection": settings.get("connection"), "tier": settings.get("tier"),
            "drill_target": settings.get("drill_target") is True,
        })
    stores = []
    for kind, group, role in DATA_STORES:
        service = "postgres" if kind == "postgresql" else "redis"
        for host in env.groups.get(group, ()):
            settings = env.hosts[host]
            store = {"kind": kind, "role": role, "host": host,
                     "endpoint": f"{settings.get(f'{service}_host')}:"
                                 f"{settings.get(f'{service}_port')}"}
            if kind == "postgresql" and settings.get("postgres_database"):
                store["database"] = settings["postgres_database"]
            stores.append(store)
    return {"tier": env.tier, "inventory": str(env.inventory), "inventory_version": version,
            "cadence_days": env.cadence_days, "hosts": hosts, "data_stores": stores}
