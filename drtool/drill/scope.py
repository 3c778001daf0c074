"""What a drill covered, for the journal and the reports: hosts, data stores, and the
inventory's version. Nothing secret is read: only what playbooks/describe.yml publishes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from drtool import components as kinds
from drtool import paths
from drtool.config import Environment
from drtool.drill.journal_writer import load_journals


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
    """The environment as the drill saw it: tier, cadence, every host, every component and
    the data stores they read and restore."""
    hosts = []
    for name in sorted(env.hosts):
        settings = env.hosts[name]
        hosts.append({
            # What the host is in the drill, one phrase per component side on it (journals
            # before components listed group names here; the reports show either).
            "name": name, "groups": _roles(env, name),
            "address": settings.get("address"),
            # Where Ansible really connects (ssh_config's HostName resolved by `ssh -G`):
            # the address the production guard judged.
            "connection_address": settings.get("connection_address"),
            "connection": settings.get("connection"), "tier": settings.get("tier"),
            "drill_target": settings.get("drill_target") is True,
        })
    components = [{"name": c.name, "kind": c.kind,
                   "source": c.source.host if c.source else None,
                   "target": c.target.host if c.target else None,
                   **({"databases": list(c.databases)} if c.databases else {}),
                   # `databases: all`: the databases, once found (preflight or manifest).
                   **({"all_databases": True} if c.all_databases else {}),
                   **({"after": list(c.after)} if c.after else {})}
                  for c in env.components]
    stores = [store for c in env.components for store in kinds.kind(c).stores(c)]
    scope = {"tier": env.tier, "inventory": str(env.inventory), "inventory_version": version,
             "cadence_days": env.cadence_days, "hosts": hosts, "components": components,
             "data_stores": stores}
    if env.recovering:
        # A recovery's targets are the components' recovery sides; these declare none.
        scope["unrecovered"] = list(env.unrecovered)
    return scope


def _roles(env: Environment, host: str) -> list[str]:
    """'PostgreSQL source main', 'Redis restore target cache', 'service app': each
    component side on `host`."""
    roles = []
    for component in env.components:
        label = kinds.kind(component).LABEL
        if component.source is not None and component.source.host == host:
            roles.append(f"{label} source {component.name}")
        if component.target is not None and component.target.host == host:
            role = "" if component.source is None else " restore target"
            roles.append(f"{label}{role} {component.name}")
    return roles


def seen_sources(env: str) -> list[dict[str, Any]]:
    """The backup sources drtool has seen, by what they are: for every environment with
    evidence under DRTOOL_HOME, the source identities its newest journal that recorded any
    holds, as [{env, component, family, host, identity, own}] (`own`: of environment
    `env`). What a recovery's guard compares its targets with (core.identity)."""
    root = paths.drtool_home() / "evidence"
    found: list[dict[str, Any]] = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        for _path, journal in reversed(load_journals(folder)):
            entries = [e for e in (journal.scope or {}).get("components", [])
                       if (e.get("identity") or {}).get(kinds.SOURCE)]
            if not entries:
                continue
            for entry in entries:
                family = kinds.KINDS[entry["kind"]].FAMILY if entry.get("kind") in kinds.KINDS \
                    else None
                found.append({"env": journal.env, "component": entry.get("name"),
                              "family": family, "host": entry.get("source"),
                              "identity": entry["identity"][kinds.SOURCE],
                              "own": journal.env == env})
            break
    return found
