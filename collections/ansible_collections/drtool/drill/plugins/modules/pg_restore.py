#!/usr/bin/python
"""Ansible module: pg_restore a dump, with the password kept off the command line and the
tool's own error in the failure message."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_restore
short_description: Restore a pg_dump archive into a database with pg_restore
description:
  - Runs C(pg_restore --exit-on-error -j N) (an argument list, no shell) into an existing
    database. The password reaches pg_restore in its environment (C(PGPASSWORD)) only; it is
    never on a command line, and as a C(no_log) parameter Ansible masks it in every output.
  - With I(recreate), it first drops the database and creates it empty, owned as it was
    dumped; one task, so a restore's critical path pays for one module's start, not three.
  - With I(measure), it then measures what the restored database holds, as C(pg_facts)
    would, before anything else can write to it.
  - On failure the message holds the end of pg_restore's own stderr, such as
    C(role "x" does not exist), with the password replaced by C(***).
extends_documentation_fragment:
  - drtool.drill.postgres
options:
  database:
    description: Database to restore into; it must exist, unless I(recreate) creates it.
    type: str
    required: true
  recreate:
    description:
      - Before the restore, drop I(database) if it is there (refusing new connections, then
        ending the open ones) and create it empty, owned by the role that owned it when it
        was dumped (C(owner) of C(database.json) in I(src), when the file is there and the
        cluster has that role; never with I(no_owner)).
    type: bool
    default: false
  measure:
    description:
      - After the restore, measure the database as C(drtool.drill.pg_facts) does (exact
        counts, sequences, the sentinel of I(backup_id), the newest heartbeat) and return it
        as C(measured).
    type: bool
    default: false
  backup_id:
    description: The backup whose sentinel row I(measure) reads.
    type: str
  heartbeat_query:
    description: The query I(measure) runs for the newest heartbeat (a timestamp).
    type: str
  src:
    description: The archive, a custom-format file or a directory-format folder.
    type: path
    required: true
  jobs:
    description: Parallel pg_restore jobs.
    type: int
    default: 2
  pg_restore:
    description: pg_restore executable.
    type: str
    default: pg_restore
  no_owner:
    description: Restore without the dump's owners (C(--no-owner)).
    type: bool
    default: false
  no_privileges:
    description: Restore without the dump's grants (C(--no-privileges)).
    type: bool
    default: false
  role:
    description: Role to restore as (C(--role)), when the objects may not keep their owners.
    type: str
author: drtool maintainers
"""

RETURN = r"""
duration_s:
  description: How long pg_restore ran, in seconds (without the database's recreation).
  type: float
  returned: success
existed:
  description: Whether the database was there before it was recreated.
  type: bool
  returned: with I(recreate)
owner:
  description: Who owns the database it recreated.
  type: str
  returned: with I(recreate)
measured:
  description:
    - What C(drtool.drill.pg_facts) returns of the restored database (exists,
      server_version, system_identifier, data_directory, counts, sequences, sentinel_value,
      heartbeat_at).
  type: dict
  returned: with I(measure)
"""

import json
import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.postgres import (
    CONNECTION_ARGS,
    client_env,
    connect,
    content_facts,
    database_exists,
    import_psycopg,
    recreate_database,
    server_facts,
    tool_failure,
)

DATABASE_FILE = "database.json"  # written beside the dump by pg_backup


def dumped_owner(module, src):
    """Who owned the database when it was dumped: the dump's database.json says (None when
    the dump has none, as a custom-format file or an older dump; the task fails when the
    file is there and cannot be read)."""
    path = os.path.join(src, DATABASE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as found:
            return json.load(found)["owner"] or None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        module.fail_json(msg="cannot read who owned the database from %s: %s" % (path, exc))


def recreate(module, params):
    """Drop the database and create it empty, owned as dumped; what it found and did."""
    psycopg = import_psycopg(module)
    owner = None if params["no_owner"] else dumped_owner(module, params["src"])
    try:
        with connect(psycopg, params, database="postgres") as conn:
            existed, _, owned_by = recreate_database(psycopg, conn, params["database"],
                                                     "recreated", owner)
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL %s:%s: the database could not be recreated, nothing "
                         "was restored: %s" % (params["host"], params["port"], exc))
    return {"existed": existed, "owner": owned_by}


def measure(module, params):
    """What the restored database holds, as pg_facts measures it."""
    psycopg = import_psycopg(module)
    try:
        with connect(psycopg, params, database="postgres") as admin:
            found = dict(server_facts(psycopg, admin), present={},
                         exists=database_exists(admin, params["database"]))
        if found["exists"]:
            with connect(psycopg, params) as conn:
                found.update(content_facts(conn, params["backup_id"], params["heartbeat_query"]))
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL %s:%s: the restore ended, measuring it failed: %s"
                         % (params["host"], params["port"], exc))
    return found


def restore_argv(params):
    """pg_restore's argument list; --exit-on-error makes any error fail the restore."""
    return [
        params["pg_restore"], "--jobs=%d" % params["jobs"], "--exit-on-error",
        "--dbname=" + params["database"], "--host=" + params["host"],
        "--port=%d" % params["port"], "--username=" + params["user"], "--no-password",
    ] + (["--no-owner"] if params["no_owner"] else []) + (
        ["--no-privileges"] if params["no_privileges"] else []) + (
        ["--role=" + params["role"]] if params["role"] else []) + [params["src"]]


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        src=dict(type="path", required=True),
        jobs=dict(type="int", default=2),
        pg_restore=dict(type="str", default="pg_restore"),
        no_owner=dict(type="bool", default=False),
        no_privileges=dict(type="bool", default=False),
        role=dict(type="str", default=None),
        recreate=dict(type="bool", default=False),
        measure=dict(type="bool", default=False),
        backup_id=dict(type="str", default=None),
        heartbeat_query=dict(type="str", default=None),
    )
    module = AnsibleModule(argument_spec=args, supports_check_mode=False)
    params = module.params
    if not os.path.exists(params["src"]):
        module.fail_json(msg="no dump at %s" % params["src"])
    result = recreate(module, params) if params["recreate"] else {}

    started = time.monotonic()
    try:
        done = subprocess.run(restore_argv(params), env=client_env(params), capture_output=True,
                              text=True, errors="replace", check=False)
    except OSError as exc:
        module.fail_json(msg="cannot run %s: %s" % (params["pg_restore"], exc.strerror))
    if done.returncode != 0:
        module.fail_json(msg=tool_failure("pg_restore", done.returncode, done.stderr,
                                          [params["password"]]), rc=done.returncode)
    duration_s = round(time.monotonic() - started, 3)
    if params["measure"]:
        result["measured"] = measure(module, params)
    module.exit_json(changed=True, duration_s=duration_s, no_owner=params["no_owner"],
                     no_privileges=params["no_privileges"], role=params["role"], **result)


if __name__ == "__main__":
    main()
