#!/usr/bin/python
"""Ansible module: what a PostgreSQL database holds now, measured exactly."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_facts
short_description: Exact row counts, sequences, sentinel and heartbeat of a PostgreSQL database
description:
  - Reads, never guesses - C(count(*)) for every table, not C(reltuples).
  - With I(write_check), writes a row, reads it back and deletes it, proving the database
    accepts writes.
  - With I(reachable_only), only connects and reports the server version.
extends_documentation_fragment:
  - drtool.drill.postgres
options:
  database:
    description: Database to inspect.
    type: str
    required: true
  backup_id:
    description: Backup whose sentinel row to read.
    type: str
  heartbeat_query:
    description: Query returning the newest heartbeat timestamp.
    type: str
  write_check:
    description: Prove the database accepts a committed write.
    type: bool
    default: false
  reachable_only:
    description: Only check the server answers.
    type: bool
    default: false
  list_databases:
    description:
      - "Also return C(databases), every database of the cluster a drill of C(databases: all)
        backs up - all but the templates, those that take no connections and C(postgres),
        the maintenance database drtool connects to."
    type: bool
    default: false
  present:
    description: Databases to say, in C(present), whether the cluster has each.
    type: list
    elements: str
    default: []
  tools:
    description: Programs that must be executable files in I(bin_dir) on the host; fails naming those that are not.
    type: list
    elements: str
    default: []
  bin_dir:
    description: Where I(tools) are.
    type: path
  machine_identity:
    description: Also return C(machine_id_sha256), the sha256 of the host's /etc/machine-id (never the id itself).
    type: bool
    default: false
  occupancy:
    description:
      - Also return C(occupancy), what each database of I(present) that exists holds now - its
        size, its tables, whether any holds a row, and its newest heartbeat (I(heartbeat_query),
        where it answers) - for C(drtool recover), which refuses to replace a live database
        unasked.
    type: bool
    default: false
author: drtool maintainers
"""

RETURN = r"""
exists:
  description: Whether the database exists.
  type: bool
  returned: always
present:
  description: "Whether each database of I(present) exists: {name: bool}"
  type: dict
  returned: always
machine_id_sha256:
  description: The sha256 of /etc/machine-id; null without one.
  type: str
  returned: with machine_identity
counts:
  description: Exact row count of every table.
  type: dict
  returned: when the database exists
databases:
  description: The cluster's databases (with I(list_databases)).
  type: list
  returned: when asked
data_directory:
  description: The cluster's data directory, as the server says; null when this role may not read it.
  type: str
  returned: success
system_identifier:
  description: The cluster's system identifier (pg_control_system()), as a string; null when it cannot be read.
  type: str
  returned: always
occupancy:
  description: "{database: {size_bytes, tables, has_rows, heartbeat_at}} for each database of I(present) that exists."
  type: dict
  returned: with occupancy
"""

import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.host import (
    machine_id_sha256,
    missing_tools,
)
from ansible_collections.drtool.drill.plugins.module_utils.postgres import (
    CONNECTION_ARGS,
    RELATIONS_SQL,
    SENTINEL_DDL,
    connect,
    content_facts,
    import_psycopg,
    newest_heartbeat,
    server_facts,
)


def write_check(conn):
    """Insert, read back and delete a row; return the value that round-tripped or an error."""
    for statement in SENTINEL_DDL:
        conn.execute(statement)
    key = "write-check-" + uuid.uuid4().hex
    conn.execute("INSERT INTO drtool.sentinel (backup_id, value) VALUES (%s, %s)", (key, key))
    row = conn.execute("SELECT value FROM drtool.sentinel WHERE backup_id = %s", (key,)).fetchone()
    conn.execute("DELETE FROM drtool.sentinel WHERE backup_id = %s", (key,))
    return {"written": key, "read_back": row[0] if row else None}


def occupancy(psycopg, params, database):
    """What `database` holds now: its size, its tables, whether any table holds a row (it
    stops at the first that does), and its newest heartbeat where the query answers."""
    from psycopg import sql  # noqa: PLC0415

    with connect(psycopg, params, database=database) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        tables = conn.execute(RELATIONS_SQL).fetchall()
        has_rows = False
        for schema, name, _kind in tables:
            query = sql.SQL("SELECT EXISTS (SELECT FROM {}.{})").format(
                sql.Identifier(schema), sql.Identifier(name))
            if conn.execute(query).fetchone()[0]:
                has_rows = True
                break
        return {"size_bytes": size, "tables": len(tables), "has_rows": has_rows,
                "heartbeat_at": newest_heartbeat(conn, params["heartbeat_query"])}


def folder_name(name):
    """Whether `name` is safe as one folder of a path: no '/', not '.' or '..', no control
    character."""
    return (name not in ("", ".", "..") and "/" not in name
            and not any(ord(c) < 32 or ord(c) == 127 for c in name))


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        backup_id=dict(type="str", default=None),
        heartbeat_query=dict(type="str", default=None),
        write_check=dict(type="bool", default=False),
        reachable_only=dict(type="bool", default=False),
        list_databases=dict(type="bool", default=False),
        present=dict(type="list", elements="str", default=[]),
        tools=dict(type="list", elements="str", default=[]),
        bin_dir=dict(type="path", default=None),
        machine_identity=dict(type="bool", default=False),
        occupancy=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=args, supports_check_mode=True)
    params = module.params
    psycopg = import_psycopg(module)
    missing = missing_tools(params["bin_dir"] or "", params["tools"])
    if missing:
        module.fail_json(msg="%s not found in %s on this host" % (
            ", ".join(missing), params["bin_dir"]))
    try:
        with connect(psycopg, params, database="postgres") as admin:
            server = server_facts(psycopg, admin)
            wanted = [params["database"]] + params["present"]
            there = {row[0] for row in admin.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (wanted,))}
            exists = params["database"] in there
            found = admin.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn"
                " AND datname <> 'postgres' ORDER BY datname"
            ).fetchall() if params["list_databases"] else None
        result = dict(changed=False, exists=exists, **server,
                      present={name: name in there for name in params["present"]})
        if params["machine_identity"]:
            result["machine_id_sha256"] = machine_id_sha256()
        if params["occupancy"]:
            result["occupancy"] = {name: occupancy(psycopg, params, name)
                                   for name in params["present"] if name in there}
        if found is not None:
            names = [row[0] for row in found]
            # Each name becomes a folder of the backup and the snapshot (postgres/CLUSTER/NAME):
            # one that is not a plain folder name could lead a dump, or a cleanup's delete,
            # outside them.
            unsafe = [n for n in names if not folder_name(n)]
            if unsafe:
                module.fail_json(msg="PostgreSQL %s:%s: databases all found names that cannot be "
                                     "a backup's folder: %s; rename them or list the databases"
                                     % (params["host"], params["port"],
                                        ", ".join(repr(n) for n in unsafe)))
            result["databases"] = names
        if params["reachable_only"] or not exists:
            module.exit_json(**result)
        with connect(psycopg, params) as conn:
            result.update(content_facts(conn, params["backup_id"], params["heartbeat_query"]))
            if params["write_check"] and not module.check_mode:
                result["write_check"] = write_check(conn)
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL %s:%s: %s" % (params["host"], params["port"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
