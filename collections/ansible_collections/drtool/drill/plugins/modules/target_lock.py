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
  - C(state=present) creates I(path) holding the drill's id, environment, controller and the
    time the lease ends, with O_EXCL so that two controllers cannot both create it. A file
    that is there already is taken over when it is this drill's, when it was left by the same
    environment from the same controller (which holds that environment's lock, so the drill
    that wrote it has ended), or when its lease has ended. Otherwise the task fails with
    C(drtool_locked=true), naming the holder.
  - C(state=absent) removes the file when it is this drill's; another drill's is left alone.
options:
  path: {description: The lock file., type: path, required: true}
  state: {description: Take or release the lease., type: str, choices: [present, absent], default: present}
  drill_id: {description: This drill's id., type: str, required: true}
  env: {description: This drill's environment., type: str, default: ""}
  controller: {description: Which controller and DRTOOL_HOME this drill runs from., type: str, default: ""}
  lease_s: {description: Seconds the lease lasts when its holder never releases it., type: int, default: 21600}
author: drtool maintainers
"""

RETURN = r"""
holder: {description: The lease found on the file (drill_id, env, controller, expires_at), if any., type: dict, returned: always}
"""

import contextlib
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


def create(path, lease):
    """Create `path` holding `lease`; False when it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(lease, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def main():
    module = AnsibleModule(argument_spec={
        "path": {"type": "path", "required": True},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "drill_id": {"type": "str", "required": True},
        "env": {"type": "str", "default": ""},
        "controller": {"type": "str", "default": ""},
        "lease_s": {"type": "int", "default": 21600},
    })
    p = module.params
    path, now = p["path"], time.time()
    holder = read(path)
    if p["state"] == "absent":
        mine = holder is not None and holder.get("drill_id") == p["drill_id"]
        if mine:
            os.unlink(path)
        module.exit_json(changed=mine, holder=holder or {})
    lease = {"drill_id": p["drill_id"], "env": p["env"], "controller": p["controller"],
             "taken_at": now, "expires_at": now + p["lease_s"]}
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    for _attempt in range(3):
        if create(path, lease):
            module.exit_json(changed=True, holder={})
        holder = read(path)
        if holder is None:  # half written by a holder that died, or gone in between
            if os.path.exists(path) and time.time() - os.path.getmtime(path) > 5:
                os.unlink(path)
            continue
        ours = holder.get("drill_id") == p["drill_id"]
        left = (holder.get("env") == p["env"] and holder.get("controller") == p["controller"])
        ended = float(holder.get("expires_at") or 0) < now
        if not (ours or left or ended):
            module.fail_json(
                msg="restore target is busy: drill %s of %s from controller %s holds %s until %s"
                    % (holder.get("drill_id"), holder.get("env"), holder.get("controller"), path,
                       time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                     time.gmtime(float(holder.get("expires_at") or 0)))),
                drtool_locked=True, holder=holder)
        # Take it over: remove the old lease, then create ours exclusively (another
        # controller doing the same at this moment loses the O_EXCL race and retries).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    module.fail_json(msg="could not take the lock file %s" % path, drtool_locked=True,
                     holder=read(path) or {})


if __name__ == "__main__":
    main()
