#!/usr/bin/python
"""Ansible module: what a Redis server holds now, after it has finished loading."""

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_facts
short_description: Reachability, loading state, key counts, sentinel and heartbeat of Redis
description:
  - Waits (up to I(wait_timeout)) until the server answers PING and has finished loading its
    dataset, then reports key counts per database, the sentinel key and the heartbeat key.
extends_documentation_fragment:
  - drtool.drill.redis
options:
  wait_timeout:
    description: Seconds to wait for PING and loading to finish.
    type: int
    default: 0
  sentinel_key:
    description: Sentinel key to read.
    type: str
  heartbeat_key:
    description: Key holding the newest heartbeat (epoch seconds).
    type: str
  log_file:
    description: The server's log file. When a wait ends with no answer, its last lines (Redis's own reason) are quoted.
    type: path
author: drtool maintainers
"""

RETURN = r"""
ping:
  description: Whether the server answered PING.
  type: bool
  returned: success
counts:
  description: Keys per database.
  type: dict
  returned: success
used_memory:
  description: The bytes Redis uses for its data (INFO memory), what a snapshot of it is measured by when it keeps no RDB file.
  type: int
  returned: success
run_id:
  description: The server process's run_id (INFO server).
  type: str
  returned: success
dir:
  description: The server's working directory (CONFIG GET dir); null when CONFIG is not allowed.
  type: str
  returned: success
dbfilename:
  description: The server's RDB file name (CONFIG GET dbfilename); null when CONFIG is not allowed.
  type: str
  returned: success
appendonly:
  description: Whether the server keeps an AOF (CONFIG GET appendonly, C(yes) or C(no)); null when CONFIG is not allowed.
  type: str
  returned: success
machine_id_sha256:
  description: The sha256 of the managed host's /etc/machine-id (never the id itself); null without one.
  type: str
  returned: success
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.host import machine_id_sha256
from ansible_collections.drtool.drill.plugins.module_utils.redis import (
    CONNECTION_ARGS,
    connect,
    heartbeat_iso,
    import_redis,
    keyspace_counts,
)


def config_value(redis, client, name):
    """One CONFIG GET value, or None where CONFIG is renamed away or refused (managed Redis
    often forbids it)."""
    try:
        return client.config_get(name).get(name)
    except redis.RedisError:
        return None


def log_tail(path, lines=3, limit=600):
    """The last `lines` lines of the server's log on one line, or "" when it cannot be read."""
    if not path:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    tail = " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())
    return tail[-limit:]


def not_ready(params, exc):
    """Why the server did not answer in time. After a start (a wait), it did not come back:
    say so, with the end of its log, where Redis writes why it exited (a bad RDB, a port in
    use), when the task knows the file."""
    where = "Redis %s:%s" % (params["host"], params["port"])
    if not params["wait_timeout"]:
        return "%s not ready: %s" % (where, exc)
    message = "%s did not come back within %d s: %s" % (where, params["wait_timeout"], exc)
    tail = log_tail(params["log_file"])
    return message + ("; the end of its log %s: %s" % (params["log_file"], tail) if tail else "")


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        wait_timeout=dict(type="int", default=0),
        sentinel_key=dict(type="str", default=None, no_log=False),
        heartbeat_key=dict(type="str", default=None, no_log=False),
        log_file=dict(type="path", default=None),
    )
    module = AnsibleModule(argument_spec=args, supports_check_mode=True)
    params = module.params
    redis = import_redis(module)
    client = connect(redis, params)
    deadline = time.monotonic() + params["wait_timeout"]
    waited_since = time.monotonic()
    while True:
        try:
            # LOADING errors surface as BusyLoadingError, a RedisError: keep waiting on them.
            client.ping()
            if not client.info("persistence").get("loading"):
                break
        except redis.RedisError as exc:
            if time.monotonic() > deadline:
                module.fail_json(msg=not_ready(params, exc))
        if time.monotonic() > deadline:
            module.fail_json(msg="Redis %s:%s still loading" % (params["host"], params["port"]))
        time.sleep(0.05)
    try:
        server = client.info("server")
        result = dict(
            changed=False,
            ping=True,
            ready_after_s=round(time.monotonic() - waited_since, 3),
            redis_version=server["redis_version"],
            # What this server is, whatever address it answers on: its process (run_id)
            # and the file it loads and saves (dir, dbfilename).
            run_id=server.get("run_id"),
            dir=config_value(redis, client, "dir"),
            dbfilename=config_value(redis, client, "dbfilename"),
            # With an AOF the server loads it at start and ignores the RDB: a restore by RDB
            # needs it off.
            appendonly=config_value(redis, client, "appendonly"),
            machine_id_sha256=machine_id_sha256(),
            counts=keyspace_counts(client.info("keyspace")),
            used_memory=client.info("memory").get("used_memory"),
            sentinel_value=client.get(params["sentinel_key"]) if params["sentinel_key"] else None,
            heartbeat_at=heartbeat_iso(
                client.get(params["heartbeat_key"]) if params["heartbeat_key"] else None
            ),
        )
    except redis.RedisError as exc:
        module.fail_json(msg="Redis %s:%s: %s" % (params["host"], params["port"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
