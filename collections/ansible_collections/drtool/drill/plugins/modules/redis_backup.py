#!/usr/bin/python
"""Ansible module: a Redis RDB copy whose key counts match it exactly."""

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_backup
short_description: BGSAVE a Redis server and copy its RDB, with key counts taken atomically
description:
  - Optionally writes a sentinel key, then pauses writes (C(CLIENT PAUSE ... WRITE)) while
    it runs C(INFO keyspace), C(GET heartbeat) and C(BGSAVE), so the counts describe exactly
    what the fork saved (BGSAVE inside MULTI/EXEC would only be scheduled).
  - Waits until the save has finished and succeeded, copies the RDB to I(dest) and returns
    its sha256.
extends_documentation_fragment:
  - drtool.drill.redis
options:
  dest:
    description: Directory the RDB is copied into.
    type: path
    required: true
  backup_root:
    description: Backup directory the returned file paths are relative to.
    type: path
    required: true
  rdb_path:
    description: The server's RDB file; asked with CONFIG GET when not given.
    type: path
  sentinel_key:
    description: Key written before the save.
    type: str
  sentinel_value:
    description: Value of the sentinel key.
    type: str
  heartbeat_key:
    description: Key holding the newest heartbeat (epoch seconds).
    type: str
  save_timeout:
    description: Seconds to wait for BGSAVE to finish.
    type: int
    default: 600
author: drtool maintainers
"""

RETURN = r"""
counts:
  description: Keys per database at the moment of the fork.
  type: dict
  returned: success
files:
  description: The RDB copy, with size and sha256.
  type: list
  returned: success
"""

import datetime
import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.files import describe_tree
from ansible_collections.drtool.drill.plugins.module_utils.redis import (
    CONNECTION_ARGS,
    connect,
    heartbeat_iso,
    import_redis,
    keyspace_counts,
)


def wait_no_save(client, deadline):
    """Wait until no background save runs; return its INFO persistence."""
    while True:
        info = client.info("persistence")
        if not info.get("rdb_bgsave_in_progress"):
            return info
        if time.monotonic() > deadline:
            raise TimeoutError("BGSAVE still running")
        time.sleep(0.05)


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        dest=dict(type="path", required=True),
        backup_root=dict(type="path", required=True),
        rdb_path=dict(type="path", default=None),
        sentinel_key=dict(type="str", default=None, no_log=False),
        sentinel_value=dict(type="str", default=None),
        heartbeat_key=dict(type="str", default=None, no_log=False),
        save_timeout=dict(type="int", default=600),
    )
    module = AnsibleModule(argument_spec=args, supports_check_mode=False)
    params = module.params
    redis = import_redis(module)
    deadline = time.monotonic() + params["save_timeout"]
    try:
        client = connect(redis, params)
        if params["sentinel_key"]:
            client.set(params["sentinel_key"], params["sentinel_value"] or "")
        before = wait_no_save(client, deadline)
        # Writes (and key expiry) are paused while the keys are counted and the fork is made,
        # so the counts describe exactly what the RDB holds. BGSAVE inside MULTI would only be
        # scheduled for later, which is why a pause is used and not a transaction.
        client.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
        try:
            keyspace = client.info("keyspace")
            heartbeat = client.get(params["heartbeat_key"]) if params["heartbeat_key"] else None
            seconds, micros = client.time()
            reply = client.execute_command("BGSAVE")
            if "scheduled" in str(reply):  # another child runs: stay paused until ours forks
                while not client.info("persistence").get("rdb_bgsave_in_progress"):
                    if time.monotonic() > deadline:
                        raise TimeoutError("scheduled BGSAVE never started")
                    time.sleep(0.01)
        finally:
            client.execute_command("CLIENT", "UNPAUSE")
        while True:
            info = wait_no_save(client, deadline)
            if info.get("rdb_saves", 0) > before.get("rdb_saves", 0):
                break
            time.sleep(0.05)
        if info["rdb_last_bgsave_status"] != "ok":
            module.fail_json(msg="BGSAVE failed on %s:%s" % (params["host"], params["port"]))
        rdb_path = params["rdb_path"]
        if not rdb_path:
            config = client.config_get("dir")
            config.update(client.config_get("dbfilename"))
            rdb_path = os.path.join(config["dir"], config["dbfilename"])
        version = client.info("server")["redis_version"]
    except (redis.RedisError, TimeoutError) as exc:
        module.fail_json(msg="Redis %s:%s: %s" % (params["host"], params["port"], exc))

    os.makedirs(params["dest"], exist_ok=True)
    shutil.copyfile(rdb_path, os.path.join(params["dest"], "dump.rdb"))
    files = describe_tree(params["dest"], os.path.relpath(params["dest"], params["backup_root"]))
    saved_at = datetime.datetime.fromtimestamp(seconds + micros / 1e6, tz=datetime.timezone.utc)
    module.exit_json(
        changed=True,
        consistent_at=saved_at.isoformat(),
        redis_version=version,
        counts=keyspace_counts(keyspace),
        heartbeat_at=heartbeat_iso(heartbeat),
        sentinel={"key": params["sentinel_key"], "value": params["sentinel_value"]},
        files=files,
        size=sum(entry["size"] for entry in files),
    )


if __name__ == "__main__":
    main()
