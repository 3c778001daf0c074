"""The ordered plan of an operation: phases, hosts and what each does where. Pure."""

from __future__ import annotations

from typing import Any

from drtool.config import Environment, endpoints
from drtool.core.identity import MACHINE, STORE_TARGETS
from drtool.drill.phases import BACKUP, OPERATIONS, PLAN, RESTORE


def build_plan(env: Environment, operation: str) -> list[dict[str, Any]]:
    """[{phase, steps: [{host, group, address, action, destroys}]}] in running order."""
    plan = []
    for phase in OPERATIONS[operation]:
        steps = []
        for group, action in PLAN[phase]:
            hosts = sorted(env.hosts) if group == "all" else env.groups.get(group, ())
            for host in hosts:
                settings = env.hosts[host]
                address = ("this machine" if settings.get("connection") == "local"
                           else str(settings.get("address")))
                steps.append({"host": host, "group": group, "address": address,
                              "action": action, "destroys": action.startswith("DESTROYS")})
        if env.store_s3 is not None and phase in (BACKUP, RESTORE):
            # drtool's own steps, on the machine it runs on, around the playbook's.
            url = env.store_s3.connection.url
            step = {"host": "drtool", "group": "store", "address": "this machine",
                    "destroys": False}
            if phase == BACKUP:
                steps.append({**step, "action": f"upload the backup to {url}, check S3's "
                                                "checksums, empty the staging folder"})
            else:
                steps.insert(0, {**step, "action": f"download the backup from {url}, check "
                                                   "every file against the manifest"})
        plan.append({"phase": phase, "steps": steps})
    return plan


def target_lock_keys(env: Environment) -> list[str]:
    """The restore targets, by where they listen, as the locks a drill takes before its
    first phase: one per address and port a target's PostgreSQL or Redis can be reached at
    (loopback and 0.0.0.0 spellings are one: config.endpoints)."""
    keys = set()
    for group, service in STORE_TARGETS:
        for host in env.groups.get(group, ()):
            for address, port in endpoints(env.hosts[host], service):
                keys.add(f"{service} {address}:{port}")
    return sorted(keys)


def identity_lock_keys(env: Environment, facts: dict[str, dict[str, Any]]) -> list[str]:
    """The same targets by the machine they run on (the sha256 of its machine-id, which the
    preflight read) and their port, and by the PostgreSQL cluster or Redis server they are:
    two names, addresses or forwarded ports of one server are one key."""
    keys = set()
    for group, service in STORE_TARGETS:
        for host in env.groups.get(group, ()):
            found = facts.get(host) or {}
            machine = found.get(MACHINE)
            port = env.hosts[host].get(f"{service}_port")
            if machine:
                keys.add(f"{service} on machine {str(machine)[:16]} port {port}")
            # And by what the server says it is, which a forwarded port does not change: the
            # cluster's system_identifier; the Redis server's run_id (it changes when the
            # drill restarts Redis, so it catches a second drill started before that).
            if service == "postgres" and found.get("system_identifier"):
                keys.add(f"postgres cluster {found['system_identifier']}")
            if service == "redis" and found.get("run_id"):
                keys.add(f"redis server {found['run_id']}")
    return sorted(keys)
