"""The ordered plan of an operation: phases, hosts and what each does where. Pure."""

from __future__ import annotations

from typing import Any

from drtool.config import Environment
from drtool.drill.phases import OPERATIONS, PLAN


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
        plan.append({"phase": phase, "steps": steps})
    return plan
