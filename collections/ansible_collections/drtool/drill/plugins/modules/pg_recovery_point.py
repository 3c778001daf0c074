#!/usr/bin/python
"""Ansible module: set a physical drill's recovery target on the source cluster, with the
exact counts that correspond to it, and wait until its WAL is archived."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_recovery_point
short_description: A recovery target on a WAL-archiving cluster, with exact counts at it
description:
  - "Writes drtool's sentinel row in each database, then fixes a point in the WAL and counts
    every table as of that point, by the first way the cluster allows (C(counts_method)):
    C(slot), a temporary logical replication slot whose exported snapshot shows exactly what
    committed before its consistent point (one database, C(wal_level=logical)); C(share),
    every table of every database locked in SHARE mode (writers wait, readers do not) while
    it is counted and the WAL insert position read; C(none) when asked, counts are then not
    comparable with a restore."
  - Then switches the WAL segment and waits until the archiver has archived it, so that a
    restore can reach the target; fails naming the archiver's last failure when it does not
    within I(archive_wait_s).
extends_documentation_fragment:
  - drtool.drill.postgres
options:
  user:
    description: "Role to connect as: a superuser (it writes the sentinel, locks and counts every table, switches the WAL)"
    type: str
    default: postgres
  database:
    description: Unused; the databases are I(databases).
    type: str
    default: postgres
  databases:
    description: The databases to mark and count.
    type: list
    elements: str
    required: true
  backup_id:
    description: The sentinel's key.
    type: str
    required: true
  sentinel_value:
    description: The sentinel's value (required without I(target_time)).
    type: str
  heartbeat_query:
    description: Query for the newest heartbeat.
    type: str
  heartbeat_database:
    description: The database the heartbeat query runs in (default the first).
    type: str
  counts:
    description: How to count.
    type: str
    default: auto
    choices: [auto, slot, share, none]
  lock_wait_timeout:
    description: Seconds to wait for each table's lock (share).
    type: int
    default: 120
  archive_wait_s:
    description: Seconds to wait until the target's WAL is archived.
    type: int
    default: 60
  target_time:
    description:
      - "A point in time (ISO-8601, with its zone) to recover to instead of a point set now.
        No sentinel is written (it would lie after the target) and counts are C(none): nothing
        recorded now matches that past point."
    type: str
author: drtool maintainers
"""

RETURN = r"""
databases:
  description: "Per database: consistent_at, counts, sequences, sentinel, heartbeat_at"
  type: dict
  returned: success
target:
  description: "The recovery target: type lsn, target, exclusive"
  type: dict
  returned: success
counts_method:
  description: slot, share or none
  type: str
  returned: success
wal_file:
  description: The WAL segment that holds the target, archived.
  type: str
  returned: success
"""

import secrets
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.postgres import (
    CONNECTION_ARGS,
    RELATIONS_SQL,
    connect,
    exact_counts,
    import_psycopg,
    newest_heartbeat,
    sentinel_value,
    sequence_values,
    write_sentinel,
)


def measure(conn, params, database, consistent_at):
    """What a database holds in the transaction `conn` is in."""
    heartbeat = params["heartbeat_query"] if database == (
        params["heartbeat_database"] or params["databases"][0]) else None
    return {
        "database": database, "consistent_at": consistent_at.isoformat(),
        "sequences": sequence_values(conn), "counts": exact_counts(conn),
        "heartbeat_at": newest_heartbeat(conn, heartbeat),
        "sentinel": {"backup_id": params["backup_id"],
                     "value": sentinel_value(conn, params["backup_id"])},
    }


def by_slot(psycopg, params, database):
    """Counts under the exported snapshot of a temporary logical slot; its consistent point
    is the target (exclusive: the snapshot shows what committed before it)."""
    repl = psycopg.connect(host=params["host"], port=params["port"], user=params["user"],
                           password=params["password"], dbname=database,
                           connect_timeout=params["connect_timeout"], autocommit=True,
                           replication="database", application_name="drtool")
    try:
        with connect(psycopg, params, database) as clock:
            consistent_at = clock.execute("SELECT clock_timestamp()").fetchone()[0]
        name = "drtool_%s" % secrets.token_hex(6)
        # The replication protocol takes simple queries only; the pre-15 spelling works on
        # every supported version.
        res = repl.pgconn.exec_(("CREATE_REPLICATION_SLOT %s TEMPORARY LOGICAL test_decoding "
                                 "EXPORT_SNAPSHOT" % name).encode())
        if res.status != 2:  # TUPLES_OK
            raise psycopg.OperationalError((res.error_message or b"").decode(errors="replace"))
        lsn, snapshot = res.get_value(0, 1).decode(), res.get_value(0, 2).decode()
        conn = connect(psycopg, params, database, autocommit=False)
        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.execute("SET TRANSACTION SNAPSHOT '%s'" % snapshot.replace("'", ""))
            facts = measure(conn, params, database, consistent_at)
        finally:
            conn.rollback()
            conn.close()
    finally:
        repl.close()  # the temporary slot goes with its connection
    return {database: facts}, {"type": "lsn", "target": lsn, "exclusive": True}


def by_share_locks(psycopg, params):
    """Every table of every database locked in SHARE mode, counted, and the WAL insert
    position read while they are all held: no change to a counted table can lie on either
    side of it (the target, inclusive)."""
    from psycopg import sql  # noqa: PLC0415

    conns = {}
    try:
        first = None
        for database in params["databases"]:
            conn = connect(psycopg, params, database, autocommit=False)
            conns[database] = conn
            conn.execute("SET LOCAL lock_timeout = %d" % (params["lock_wait_timeout"] * 1000))
            if first is None:
                first = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            for schema, name, _kind in conn.execute(RELATIONS_SQL).fetchall():
                conn.execute(sql.SQL("LOCK TABLE {}.{} IN SHARE MODE").format(
                    sql.Identifier(schema), sql.Identifier(name)))
        facts = {database: measure(conn, params, database, first)
                 for database, conn in conns.items()}
        lsn = conns[params["databases"][0]].execute(
            "SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
    finally:
        for conn in conns.values():
            conn.rollback()
            conn.close()
    return facts, {"type": "lsn", "target": lsn, "exclusive": False}


def without_counts(psycopg, params):
    facts = {}
    with connect(psycopg, params, params["databases"][0]) as conn:
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
    for database in params["databases"]:
        facts[database] = {"database": database, "consistent_at": now.isoformat(),
                           "counts": {}, "sequences": {}, "heartbeat_at": None,
                           "sentinel": {"backup_id": params["backup_id"],
                                        "value": params["sentinel_value"]}}
    return facts, {"type": "lsn", "target": lsn, "exclusive": False}


def counted(module, psycopg, params, wal_level, where):
    """(facts, target, counts_method) of a recovery point set now, counted the first way
    the cluster allows (or the one asked for)."""
    how = params["counts"]
    if how == "auto":
        how = "slot" if wal_level == "logical" and len(params["databases"]) == 1 else "share"
    if how == "slot":
        if wal_level != "logical":
            module.fail_json(msg="%s has wal_level %s: counts by a logical slot need "
                             "wal_level logical" % (where, wal_level))
        if len(params["databases"]) != 1:
            module.fail_json(msg="counts by a logical slot cover one database; this "
                             "cluster has %d (use counts share)" % len(params["databases"]))
        return by_slot(psycopg, params, params["databases"][0]) + (how,)
    if how == "share":
        return by_share_locks(psycopg, params) + (how,)
    return without_counts(psycopg, params) + (how,)


def at_time(psycopg, params):
    """A point in the past as the target: nothing counted now corresponds to it. Recovery
    to a time stops at the first commit after it, so one is made now: on a quiet source
    there might be none, and PostgreSQL refuses a recovery that ends short of its target."""
    with connect(psycopg, params, params["databases"][0]) as conn:
        conn.execute("SELECT txid_current()")  # autocommit: an xid, and its commit
    facts, _target = without_counts(psycopg, params)
    for part in facts.values():
        part.update(consistent_at=params["target_time"],
                    sentinel={"backup_id": params["backup_id"], "value": None})
    return facts, {"type": "time", "target": params["target_time"], "exclusive": False}


def wait_archived(module, conn, wait_s):
    """Switch the WAL segment and wait until the archiver archived it; its name."""
    wal = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
    deadline = time.monotonic() + wait_s
    while True:
        archived, failed, failed_at = conn.execute(
            "SELECT last_archived_wal, last_failed_wal, last_failed_time FROM pg_stat_archiver"
        ).fetchone()
        if archived and archived[:24] >= wal:
            return wal
        if time.monotonic() > deadline:
            why = ("its last failure: %s at %s (see the server's log for archive_command's "
                   "error)" % (failed, failed_at)) if failed else "no failure reported"
            module.fail_json(msg="WAL segment %s was not archived within %d s (last archived: "
                             "%s; %s)" % (wal, wait_s, archived or "none", why))
        time.sleep(0.2)


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        database=dict(type="str", default="postgres"),
        databases=dict(type="list", elements="str", required=True),
        backup_id=dict(type="str", required=True),
        sentinel_value=dict(type="str", default=None),
        heartbeat_query=dict(type="str", default=None),
        heartbeat_database=dict(type="str", default=None),
        counts=dict(type="str", default="auto", choices=["auto", "slot", "share", "none"]),
        lock_wait_timeout=dict(type="int", default=120),
        archive_wait_s=dict(type="int", default=60),
        target_time=dict(type="str", default=None),
    )
    module = AnsibleModule(argument_spec=args, supports_check_mode=False)
    params = module.params
    psycopg = import_psycopg(module)
    if not params["databases"]:
        module.fail_json(msg="no database to mark")
    where = "PostgreSQL %s:%s" % (params["host"], params["port"])
    try:
        with connect(psycopg, params, params["databases"][0]) as conn:
            wal_level, archive_mode, version, system_id = conn.execute(
                "SELECT current_setting('wal_level'), current_setting('archive_mode'),"
                " current_setting('server_version'),"
                " (SELECT system_identifier::text FROM pg_control_system())").fetchone()
        if archive_mode == "off":
            module.fail_json(msg="%s does not archive its WAL (archive_mode off): a physical "
                             "restore could not reach a recovery target" % where)
        with connect(psycopg, params, params["databases"][0]) as conn:
            spaces = [row[0] for row in conn.execute(
                "SELECT spcname FROM pg_tablespace WHERE spcname NOT IN "
                "('pg_default', 'pg_global') ORDER BY 1")]
        if spaces:  # before anything is destroyed: this is the backup phase
            module.fail_json(msg="%s has tablespaces %s: pgBackRest would restore them at "
                             "their source paths, outside the target's data directory, and "
                             "drtool maps none" % (where, ", ".join(spaces)))
        if params["target_time"]:
            facts, target = at_time(psycopg, params)
            how = "none"
        else:
            if not params["sentinel_value"]:
                module.fail_json(msg="a recovery point set now needs a sentinel_value")
            for database in params["databases"]:
                with connect(psycopg, params, database) as conn:
                    write_sentinel(conn, params["backup_id"], params["sentinel_value"])
            facts, target, how = counted(module, psycopg, params, wal_level, where)
        started = time.monotonic()
        with connect(psycopg, params, params["databases"][0]) as conn:
            wal = wait_archived(module, conn, params["archive_wait_s"])
        archived_s = round(time.monotonic() - started, 3)
    except psycopg.Error as exc:
        module.fail_json(msg="%s: %s" % (where, str(exc).strip()))
    for database, part in facts.items():
        part.update(server_version=version, pg_dump_version="", size=0, files=[],
                    port=params["port"], database=database)
    module.exit_json(changed=True, databases=facts, target=target, counts_method=how,
                     wal_file=wal, archived_s=archived_s, wal_level=wal_level,
                     server_version=version, system_identifier=system_id)


if __name__ == "__main__":
    main()
