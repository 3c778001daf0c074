"""The ordered plan of an operation: phases, hosts and what each does where. Pure."""

from __future__ import annotations

from typing import Any

from drtool.config import Environment
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
