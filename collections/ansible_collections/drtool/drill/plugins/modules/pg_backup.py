#!/usr/bin/python
"""Ansible module: a snapshot-consistent pg_dump with the facts a restore is judged by."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_backup
short_description: Dump a PostgreSQL database with exact row counts from the same snapshot
description:
  - Writes a sentinel row, opens a REPEATABLE READ transaction, exports its snapshot and runs
    C(pg_dump -Fd -j N --snapshot) against it while counting every table exactly in that same
    snapshot, so the counts describe the dump exactly.
  - Returns the consistency time, counts, sequences, sentinel, newest heartbeat and the
    sha256 of every file written.
extends_documentation_fragment:
  - drtool.drill.postgres
options:
  database:
    description: Database to dump.
    type: str
    required: true
  dest:
    description: Directory the dump is written to; it must not exist yet.
    type: path
    required: true
  backup_root:
    description: Backup directory the returned file paths are relative to.
    type: path
    required: true
  jobs:
    description: Parallel pg_dump jobs.
    type: int
    default: 2
  compress:
    description:
      - "pg_dump's C(--compress) (0 to 9, or METHOD[:LEVEL] with PostgreSQL 16's pg_dump).
        Empty: pg_dump's own default."
    type: raw
  pg_dump:
    description: pg_dump executable.
    type: str
    default: pg_dump
  backup_id:
    description: Backup identifier, the sentinel's key.
    type: str
    required: true
  sentinel_value:
    description:
      - Value of the sentinel row written before the dump. Without it nothing is written
        (a safety snapshot of a restore target must not change it).
    type: str
  heartbeat_query:
    description: Query returning the newest heartbeat timestamp.
    type: str
  lock_wait_timeout:
    description:
      - Seconds pg_dump (C(--lock-wait-timeout)), and the exact counts in the same snapshot
        (C(lock_timeout)), wait for a table's lock before the backup fails with the reason,
        instead of waiting behind an C(ALTER TABLE) or C(VACUUM FULL) for ever. 0 waits for
        ever.
    type: int
    default: 120
  pg_dumpall:
    description:
      - pg_dumpall executable. Given, the cluster's roles, memberships and tablespaces
        (C(pg_dumpall --globals-only --no-role-passwords)) are kept in I(dest) as
        C(globals.sql) beside the dump, for a restore target that lacks them. Without
        password hashes, the file holds no secret.
    type: str
author: drtool maintainers
"""

RETURN = r"""
consistent_at:
  description: Time of the exported snapshot (server clock, ISO-8601).
  type: str
  returned: success
counts:
  description: Exact row count of every table in the snapshot.
  type: dict
  returned: success
files:
  description: Every file written (the dump's, and globals.sql), with size and sha256.
  type: list
  returned: success
"""

import json
import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.files import describe_tree
from ansible_collections.drtool.drill.plugins.module_utils.postgres import (
    CONNECTION_ARGS,
    client_env,
    connect,
    exact_counts,
    import_psycopg,
    newest_heartbeat,
    sequence_values,
    tool_failure,
    write_sentinel,
)

# Beside the dump's own files; pg_restore reads only the files its toc.dat names.
GLOBALS_FILE = "globals.sql"


def tool_version(binary):
    """Return the first line `binary --version` prints."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def dump_globals(module, params, env):
    """Write the cluster's globals beside the dump, as pg_dumpall prints them; fail the
    module with pg_dumpall's own error."""
    path = os.path.join(params["dest"], GLOBALS_FILE)
    try:
        done = subprocess.run(
            [params["pg_dumpall"], "--globals-only", "--no-role-passwords", "--file=" + path,
             "--host=" + params["host"], "--port=%d" % params["port"],
             "--username=" + params["user"], "--no-password",
             # The dumped database surely takes this role's connections; postgres may not.
             "--database=" + params["database"]],
            env=env, capture_output=True, text=True, errors="replace", check=False)
    except OSError as exc:
        module.fail_json(msg="cannot run %s: %s" % (params["pg_dumpall"], exc.strerror))
    if done.returncode != 0:
        module.fail_json(msg=tool_failure("pg_dumpall", done.returncode, done.stderr,
                                          [params["password"]]))


# Beside the dump: the database's own properties pg_dump --format=directory leaves out.
DATABASE_FILE = "database.json"


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        dest=dict(type="path", required=True),
        backup_root=dict(type="path", required=True),
        jobs=dict(type="int", default=2),
        compress=dict(type="raw", default=None),
        pg_dump=dict(type="str", default="pg_dump"),
        backup_id=dict(type="str", required=True),
        sentinel_value=dict(type="str", default=None),
        heartbeat_query=dict(type="str", default=None),
        lock_wait_timeout=dict(type="int", default=120),
        pg_dumpall=dict(type="str", default=None),
    )
    module = AnsibleModule(argument_spec=args, supports_check_mode=False)
    params = module.params
    psycopg = import_psycopg(module)
    if os.path.exists(params["dest"]) and os.listdir(params["dest"]):
        module.fail_json(msg="refusing to dump into %s: it is not empty" % params["dest"])
    if params["lock_wait_timeout"] < 0:
        module.fail_json(msg="lock_wait_timeout must be 0 (wait for ever) or more seconds")
    os.makedirs(os.path.dirname(params["dest"]), exist_ok=True)
    # Milliseconds, as both pg_dump's --lock-wait-timeout and lock_timeout read a bare number.
    lock_wait_ms = params["lock_wait_timeout"] * 1000
    compress = "" if params["compress"] is None else str(params["compress"]).strip()

    started = time.monotonic()
    try:
        if params["sentinel_value"] is not None:
            with connect(psycopg, params) as plain:
                write_sentinel(plain, params["backup_id"], params["sentinel_value"])
        snap = connect(psycopg, params, autocommit=False)
        try:
            snap.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # The exact counts lock every table too (ACCESS SHARE): bounded like pg_dump's.
            # A SET, not a query: the snapshot is still the one pg_export_snapshot() takes.
            snap.execute("SET LOCAL lock_timeout = %d" % lock_wait_ms)
            snapshot_id, consistent_at, server_version, owner = snap.execute(
                "SELECT pg_export_snapshot(), clock_timestamp(), current_setting('server_version'),"
                " pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
            ).fetchone()
            # Sequences are not transactional: read them first, so the dump (which reads them
            # later) can only hold values at or above these.
            sequences = sequence_values(snap)
            env = client_env(params)
            dump = subprocess.Popen(
                [
                    params["pg_dump"], "--format=directory", "--jobs=%d" % params["jobs"],
                    "--snapshot=" + snapshot_id, "--file=" + params["dest"],
                    "--host=" + params["host"], "--port=%d" % params["port"],
                    "--username=" + params["user"], "--no-password",
                ] + (["--lock-wait-timeout=%d" % lock_wait_ms] if lock_wait_ms else [])
                + (["--compress=%s" % compress] if compress else []) + [
                    params["database"],
                ],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            counts = exact_counts(snap)
            heartbeat_at = newest_heartbeat(snap, params["heartbeat_query"])
            _out, err = dump.communicate()
            if dump.returncode != 0:
                module.fail_json(msg=tool_failure("pg_dump", dump.returncode, err,
                                                  [params["password"]]))
            if params["pg_dumpall"]:
                dump_globals(module, params, env)
            # A dump in directory format does not say who owns the database itself: the
            # restore recreates it with this owner, when the target has (or is given) it.
            with open(os.path.join(params["dest"], DATABASE_FILE), "w", encoding="utf-8") as out:
                json.dump({"database": params["database"], "owner": owner}, out)
        finally:
            snap.rollback()
            snap.close()
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL %s:%s: %s" % (params["host"], params["port"], exc))

    files = describe_tree(params["dest"], os.path.relpath(params["dest"], params["backup_root"]))
    module.exit_json(
        changed=True,
        database=params["database"],
        owner=owner,
        snapshot=snapshot_id,
        consistent_at=consistent_at.isoformat(),
        server_version=server_version,
        pg_dump_version=tool_version(params["pg_dump"]),
        counts=counts,
        sequences=sequences,
        sentinel=({"backup_id": params["backup_id"], "value": params["sentinel_value"]}
                  if params["sentinel_value"] is not None else None),
        heartbeat_at=heartbeat_at,
        files=files,
        size=sum(entry["size"] for entry in files),
        duration_s=round(time.monotonic() - started, 3),
    )


if __name__ == "__main__":
    main()
