#!/usr/bin/python
"""Ansible module: a lock file on a restore target's host, so that two drtool controllers
cannot drill the same target at once."""

from __future__ import annotations

DOCUMENTATION = r"""
module: target_lock
short_description: Take or release a drill's lease on a restore target, on the target's host
description:
  - drtool locks restore targets on the machine it runs on (flock, shared by every drtool
    there). A second controller does not see those locks; this file on the target's own host
    is what it sees.
  - Every change is made under an flock of I(path).guard on this host, so two controllers
    deciding at once take turns.
  - C(state=present) writes I(path) holding the drill's id, environment, controller and the
    time the lease ends. A lease that is there already is taken over when it is this
    drill's, when it was left by the same environment from the same controller (which holds
    that environment's lock, so the drill that wrote it has ended), or when it has expired;
    never when it is stuck. Otherwise the task fails with C(drtool_locked=true), naming the
    holder.
  - C(state=held) fails the same way when another drill holds the lease (a rollback checks
    that its targets are still its own).
  - "C(state=stuck) marks this drill's lease as left for a person (its rollback failed): it
    never expires and nobody takes it over until the file is removed by hand."
  - C(state=absent) removes the file when it is this drill's; another drill's is left alone.
options:
  path:
    description: The lock file.
    type: path
    required: true
  state:
    description: Take, check, keep for a person or release the lease.
    type: str
    choices: [present, absent, held, stuck]
    default: present
  drill_id:
    description: This drill's id.
    type: str
    required: true
  env:
    description: This drill's environment.
    type: str
    default: ""
  controller:
    description: Which controller and DRTOOL_HOME this drill runs from.
    type: str
    default: ""
  lease_s:
    description: Seconds the lease lasts when its holder never releases it.
    type: int
    default: 21600
author: drtool maintainers
"""

RETURN = r"""
holder:
  description: The lease found on the file (drill_id, env, controller, expires_at), if any.
  type: dict
  returned: always
"""

import fcntl
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule


def read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write(path, lease):
    """Replace the lease file whole (a reader sees the old one or the new one)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(lease, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def refuse(module, path, holder):
    if holder.get("stuck"):
        why = ("its rollback by drill %s of %s failed and the target is left for a person: "
               "remove %s once the target is repaired" % (holder.get("drill_id"),
                                                         holder.get("env"), path))
    else:
        why = ("drill %s of %s from controller %s holds %s until %s"
               % (holder.get("drill_id"), holder.get("env"), holder.get("controller"), path,
                  time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                time.gmtime(float(holder.get("expires_at") or 0)))))
    module.fail_json(msg="restore target is busy: " + why, drtool_locked=True, holder=holder)


def main():
    module = AnsibleModule(argument_spec={
        "path": {"type": "path", "required": True},
        "state": {"type": "str", "choices": ["present", "absent", "held", "stuck"],
                  "default": "present"},
        "drill_id": {"type": "str", "required": True},
        "env": {"type": "str", "default": ""},
        "controller": {"type": "str", "default": ""},
        "lease_s": {"type": "int", "default": 21600},
    })
    p = module.params
    path, now = p["path"], time.time()
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    # Every read-decide-write on the lease happens under an flock of its guard file on this
    # host: two controllers taking over an expired lease at once cannot both win.
    with open(path + ".guard", "a") as guard:
        fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
        holder = read(path)
        ours = holder is not None and holder.get("drill_id") == p["drill_id"]
        if p["state"] == "absent":
            if ours:
                os.unlink(path)
            module.exit_json(changed=ours, holder=holder or {})
        if p["state"] == "held":  # a rollback checks the target is still its drill's
            if holder is not None and not ours:
                refuse(module, path, holder)
            module.exit_json(changed=False, holder=holder or {})
        if p["state"] == "stuck":  # a failed rollback keeps the target until a person acts
            if ours:
                holder.update(stuck=True, expires_at=None)
                write(path, holder)
            module.exit_json(changed=ours, holder=holder or {})
        if holder is not None and not ours:
            left = (holder.get("env") == p["env"] and holder.get("controller") == p["controller"])
            ended = holder.get("expires_at") is not None and float(holder["expires_at"]) < now
            if holder.get("stuck") or not (left or ended):
                refuse(module, path, holder)
        write(path, {"drill_id": p["drill_id"], "env": p["env"], "controller": p["controller"],
                     "taken_at": now, "expires_at": now + p["lease_s"]})
        module.exit_json(changed=not ours, holder=holder or {})


if __name__ == "__main__":
    main()
