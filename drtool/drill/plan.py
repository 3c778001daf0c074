"""The ordered plan of an operation: phases, hosts and what each does where. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drtool import components as kinds
from drtool.components import methods
from drtool.components import postgres as postgres_kind
from drtool.config import Environment, endpoints, machine, normal_path
from drtool.core.identity import MACHINE
from drtool.core.phases import BACKUP, OPERATIONS, PREFLIGHT, RESTORE, SNAPSHOT, VERIFY

PREFLIGHT_ACTION = ("checks over SSH: reachable, tools, services, free disk, clock skew; then "
                    "the Ansible preflight; changes nothing")


def build_plan(env: Environment, operation: str) -> list[dict[str, Any]]:
    """[{phase, steps: [{host, component, kind, address, action, destroys}]}] in running
    order: each component's steps in the order the inventory declares them."""
    plan = []
    for phase in OPERATIONS[operation]:
        steps = []
        if phase == PREFLIGHT:
            steps = [_step(env, host, None, PREFLIGHT_ACTION) for host in sorted(env.hosts)
                     if not env.recovering or host in _acting(env)]
        for component in env.components:
            for side, action in kinds.kind(component).plan(component).get(phase, []):
                place = component.place(side)
                if place is not None:
                    steps.append(_step(env, place.host, component, action))
        if phase == RESTORE and env.recovering:
            # A recovery has no disaster: its services stop once every file has passed.
            steps = [_step(env, c.target.host, c, "stops the application, once every file "
                                                 "passed its check")
                     for c in env.components if c.kind == "service" and c.target] + steps
        if phase == SNAPSHOT and env.recovering:
            # Kept for `drtool recover --undo`, where there is room: a database's as a dump
            # (a copy left in its cluster would hold its space until dropped by hand).
            steps = [{**step, "action": "where there is room for it (measured at preflight; "
                      "else none, and the journal says so): " + (
                          "pg_dump of what its databases hold now" if step["kind"] == "postgres"
                          and not methods.is_physical(postgres_kind.method_of(
                              env.component(step["component"])))
                          else step["action"]) + "; kept for `drtool recover --undo`"}
                     for step in steps]
        if phase == VERIFY:
            for check in env.checks:  # the team's own, after drtool's
                what = ("writes" if check.spec.get("writes") is True
                        else "declared not to write" if check.kind == "command"
                        else "reads only")
                action = f"team check {check.name} ({check.kind}); {what}"
                steps.append({**_step(env, check.host, None, action), "component": None,
                              "kind": "check"})
        if env.store_s3 is not None and phase in (BACKUP, RESTORE):
            # drtool's own steps, on the machine it runs on, around the playbook's.
            url = env.store_s3.connection.url
            step = {"host": "drtool", "component": "store", "kind": "store",
                    "address": "this machine", "destroys": False}
            if phase == BACKUP:
                steps.append({**step, "action": f"upload the backup to {url}, check S3's "
                                                "checksums, empty the staging folder"})
            else:
                steps.insert(0, {**step, "action": f"download the backup from {url}, check "
                                                   "every file against the manifest"})
        plan.append({"phase": phase, "steps": steps})
    return plan


def _acting(env: Environment) -> set[str]:
    """The hosts a recovery acts on (its targets, services and checks): the only ones its
    preflight asks, since its sources may be gone."""
    return ({c.target.host for c in env.components if c.target is not None}
            | {check.host for check in env.checks})


def _step(env: Environment, host: str, component: kinds.Component | None,
          action: str) -> dict[str, Any]:
    settings = env.hosts[host]
    address = ("this machine" if settings.get("connection") == "local"
               else str(settings.get("address")))
    return {"host": host, "component": component.name if component else None,
            "kind": component.kind if component else None, "address": address,
            "action": action, "destroys": action.startswith("DESTROYS")}


def target_lock_keys(env: Environment) -> list[str]:
    """The restore targets, by where they listen, as the locks a drill takes before its
    first phase: one per address and port a target's PostgreSQL or Redis can be reached at
    (loopback and 0.0.0.0 spellings are one: config.endpoints), and per machine and path of
    a file tree."""
    keys = set()
    for component in env.components:
        family, target = kinds.family(component), component.target
        if target is None:
            continue
        if family is not None:
            for address, port in endpoints(env.hosts[target.host], target):
                keys.add(f"{family} {address}:{port}")
        elif component.kind == "files" and target.path:
            # A tree has no server: the machine it is on and its path name it.
            for address in machine(env.hosts[target.host]):
                keys.add(f"files {address}:{normal_path(target.path)}")
    return sorted(keys)


def identity_lock_keys(env: Environment,
                       facts: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[str]:
    """The same targets by the machine they run on (the sha256 of its machine-id, which the
    preflight read) and their port, and by the PostgreSQL cluster or Redis server they are:
    two names, addresses or forwarded ports of one server are one key. `facts`:
    {(component, side): identity facts} (core.identity.side_facts)."""
    keys = set()
    for component in env.components:
        family, target = kinds.family(component), component.target
        if family is None or target is None:
            continue
        found = facts.get((component.name, kinds.TARGET)) or {}
        machine = found.get(MACHINE)
        if machine:
            keys.add(f"{family} on machine {str(machine)[:16]} port {target.port}")
        # And by what the server says it is, which a forwarded port does not change: the
        # cluster's system_identifier; the Redis server's run_id (it changes when the
        # drill restarts Redis, so it catches a second drill started before that).
        if family == "postgres" and found.get("system_identifier"):
            keys.add(f"postgres cluster {found['system_identifier']}")
        if family == "redis" and found.get("run_id"):
            keys.add(f"redis server {found['run_id']}")
    return sorted(keys)
