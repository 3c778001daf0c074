#!/usr/bin/python
"""Ansible module: stop every process a drill run started on this host, and wait until
they are gone."""

from __future__ import annotations

DOCUMENTATION = r"""
module: reap
short_description: Stop the processes a drill phase left running, by their run marker
description:
  - "Every play of a drill phase runs its tasks with C(DRTOOL_RUN_ID=<drill id>) in their
    environment, so whatever a task starts (pg_restore and its workers, a Redis loading an RDB,
    tar, the application's commands) carries the marker, whichever session or process group
    it ended up in. Cancelling C(ansible-playbook) does not stop them: ansible-core's task
    workers call C(setsid()), so they outlive the run."
  - This module finds them by reading C(/proc/*/environ), sends SIGTERM, waits up to
    I(timeout) seconds, then SIGKILLs whatever is left and waits until it is gone.
options:
  run_id:
    description: The drill id the processes were started under.
    type: str
    required: true
  timeout:
    description: Seconds between SIGTERM and SIGKILL.
    type: int
    default: 10
author: drtool maintainers
"""

RETURN = r"""
stopped:
  description: The processes found and stopped (pid and executable name; never arguments, which may hold secrets).
  type: list
  returned: always
killed:
  description: PIDs that needed SIGKILL.
  type: list
  returned: always
"""

import contextlib
import os
import signal
import time

from ansible.module_utils.basic import AnsibleModule


def ancestors():
    """This process and every process above it: never reap the reaper."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            with open("/proc/%d/stat" % pid) as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def alive(pid):
    """True while `pid` runs; a zombie has stopped."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def marked(marker):
    """{pid: executable name} of every live process whose environment holds `marker`."""
    own = ancestors()
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in own:
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as handle:
                environ = handle.read().split(b"\0")
            if marker not in environ:
                continue
            with open("/proc/%s/comm" % name, "rb") as handle:
                command = handle.read().decode("utf-8", "replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if alive(int(name)):
            found[int(name)] = command
    return found


def signal_all(pids, signum):
    for pid in pids:
        with contextlib.suppress(OSError):  # gone meanwhile
            os.kill(pid, signum)


def main():
    module = AnsibleModule(
        argument_spec=dict(run_id=dict(type="str", required=True),
                           timeout=dict(type="int", default=10)),
        supports_check_mode=True,
    )
    marker = ("DRTOOL_RUN_ID=" + module.params["run_id"]).encode()
    found = marked(marker)
    if module.check_mode or not found:
        module.exit_json(changed=False, stopped=[], killed=[])
    signal_all(found, signal.SIGTERM)
    deadline = time.monotonic() + module.params["timeout"]
    while time.monotonic() < deadline and any(alive(pid) for pid in found):
        time.sleep(0.1)
    # SIGKILL what still carries the marker (a PID that ended may have been reused), and
    # whatever a process still running meanwhile started, until nothing is left.
    killed = []
    for _round in range(5):
        now = marked(marker)
        if not now:
            break
        found.update(now)
        killed += [pid for pid in now if pid not in killed]
        signal_all(now, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in now):
            time.sleep(0.05)
    left = sorted(marked(marker))
    stopped = [{"pid": pid, "command": command} for pid, command in sorted(found.items())]
    if left:
        module.fail_json(msg="processes of drill %s still running after SIGKILL: %s"
                         % (module.params["run_id"], ", ".join(map(str, left))),
                         stopped=stopped, killed=sorted(set(killed)))
    module.exit_json(changed=True, stopped=stopped, killed=sorted(set(killed)))


if __name__ == "__main__":
    main()
