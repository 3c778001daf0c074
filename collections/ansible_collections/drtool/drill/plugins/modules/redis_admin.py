#!/usr/bin/python
"""Ansible module: the destructive Redis operations a drill needs, on a drill target."""

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_admin
short_description: FLUSHALL or SHUTDOWN NOSAVE a Redis server
description:
  - C(flushall) empties every database. C(shutdown) stops the server without saving, and
    waits until its port is closed; a server already down is not an error.
options:
  host: {description: Server address., type: str, default: 127.0.0.1}
  port: {description: Server port., type: int, default: 6379}
  password: {description: Server password., type: str}
  connect_timeout: {description: Socket timeout in seconds., type: int, default: 10}
  action: {description: What to do., type: str, required: true, choices: [flushall, shutdown]}
  stop_timeout: {description: Seconds to wait for the port to close after SHUTDOWN., type: int, default: 30}
author: drtool maintainers
"""

RETURN = r"""
was_running: {description: Whether the server answered before the action., type: bool, returned: success}
"""

import contextlib
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


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        action=dict(type="str", required=True, choices=["flushall", "shutdown"]),
        stop_timeout=dict(type="int", default=30),
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
    module.exit_json(changed=True, was_running=True)


if __name__ == "__main__":
    main()
