#!/usr/bin/python
"""Ansible module: the destructive Redis operations a drill needs, on a drill target."""

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_admin
short_description: FLUSHALL or SHUTDOWN NOSAVE a Redis server
description:
  - C(flushall) empties every database. C(shutdown) stops the server without saving, and
    waits until its port is closed; a server already down is not an error.
extends_documentation_fragment:
  - drtool.drill.redis
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [flushall, shutdown]
  stop_timeout:
    description: Seconds to wait for the port to close after SHUTDOWN.
    type: int
    default: 30
  rdb_path:
    description:
      - With C(shutdown), the RDB file about to be replaced. The server is left running and the
        task fails unless the server loads that file at start - C(appendonly no), and its
        C(dir)/C(dbfilename) name it (CONFIG GET, compared after resolving symlinks). A server
        already down is not asked.
    type: path
author: drtool maintainers
"""

RETURN = r"""
was_running:
  description: Whether the server answered before the action.
  type: bool
  returned: success
log_file:
  description:
    - With C(shutdown), the file the stopped server logged to (absolute), for the task that
      starts it again to quote.
  type: str
  returned: when known
"""

import contextlib
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.redis import (
    CONNECTION_ARGS,
    connect,
    import_redis,
)


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def rdb_problem(redis, client, rdb_path):
    """Why replacing `rdb_path` would not change what the server loads at start, or None."""
    try:
        config = {name: client.config_get(name).get(name)
                  for name in ("appendonly", "dir", "dbfilename")}
    except redis.RedisError as exc:
        return "cannot read its CONFIG (%s), so not which file it loads" % exc
    if config["appendonly"] != "no":
        return ("it has appendonly %s: it would load its AOF at start and ignore the RDB"
                % config["appendonly"])
    loads = os.path.join(config["dir"] or "", config["dbfilename"] or "")
    if os.path.realpath(loads) != os.path.realpath(rdb_path):
        return "it loads %s at start, not %s (drtool_redis_rdb_path)" % (loads, rdb_path)
    return None


def log_file(redis, client):
    """The absolute path of the file the server logs to, or None (stdout, or not readable)."""
    try:
        path = client.config_get("logfile").get("logfile") or ""
        folder = client.config_get("dir").get("dir") or ""
    except redis.RedisError:
        return None
    if not path:
        return None
    return path if os.path.isabs(path) else os.path.join(folder, path)


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        action=dict(type="str", required=True, choices=["flushall", "shutdown"]),
        stop_timeout=dict(type="int", default=30),
        rdb_path=dict(type="path", default=None),
    )
    module = AnsibleModule(argument_spec=args, supports_check_mode=False)
    params = module.params
    redis = import_redis(module)
    host, port = params["host"], params["port"]
    if not port_open(host, port):
        if params["action"] == "shutdown":
            module.exit_json(changed=False, was_running=False)
        module.fail_json(msg="Redis %s:%s is not reachable" % (host, port))
    client = connect(redis, params, retry=params["action"] != "shutdown")
    if params["action"] == "shutdown" and params["rdb_path"]:
        problem = rdb_problem(redis, client, params["rdb_path"])
        if problem:  # refused while it still runs: nothing is lost yet
            module.fail_json(msg="Redis %s:%s was not stopped: %s" % (host, port, problem))
    logged_to = log_file(redis, client) if params["action"] == "shutdown" else None
    try:
        if params["action"] == "flushall":
            client.flushall()
        else:
            # The server closes the connection as it stops: that is success.
            with contextlib.suppress(redis.ConnectionError):
                client.shutdown(nosave=True)
    except redis.RedisError as exc:
        module.fail_json(msg="Redis %s:%s: %s" % (host, port, exc))
    if params["action"] == "shutdown":
        deadline = time.monotonic() + params["stop_timeout"]
        while port_open(host, port):
            if time.monotonic() > deadline:
                module.fail_json(msg="Redis %s:%s still listening after SHUTDOWN" % (host, port))
            time.sleep(0.05)
    module.exit_json(changed=True, was_running=True, log_file=logged_to)


if __name__ == "__main__":
    main()
