#!/usr/bin/python
"""Ansible module: a restore target's safety snapshot as a copy of its database in its own
cluster (CREATE DATABASE ... TEMPLATE), put back by a rename."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_snapshot
short_description: Copy a database within its cluster as a safety snapshot, put it back, or drop it
description:
  - "C(taken) copies I(database) to a database of drtool's naming (C(CREATE DATABASE ...
    TEMPLATE ... STRATEGY FILE_COPY), owned as the original), counts the copy's rows exactly,
    and closes the copy to connections. The server copies the files: no dump, no compression."
  - The copy is refused by the server while other sessions use I(database), when I(user) may
    not copy it, or when the disk is full; then, unless I(required), the module changes
    nothing and returns C(taken=false) with the C(reason), for the caller to dump instead.
  - C(restored) drops I(database) (closing its sessions) and renames the copy into its
    place; run again after an interruption it finishes the same work, and with no copy left
    it changes nothing (C(found=false)).
  - C(absent) drops the copy when there is one.
  - Database-level settings, grants and comments are not part of the copy (nor of a dump
    restored without C(--create)).
extends_documentation_fragment:
  - drtool.drill.postgres
options:
  database:
    description: The database the snapshot is of.
    type: str
    required: true
  snapshot_id:
    description: The drill the snapshot belongs to; with I(database), it names the copy.
    type: str
    required: true
  copy_database:
    description: The copy's name as the snapshot recorded it; by default the name I(snapshot_id) gives.
    type: str
  copy_oid:
    description:
      - "The copy's oid as the snapshot recorded it. With C(restored) and no copy left, the
        database must be the copy (a rename keeps the oid: an earlier attempt put it back),
        or the module fails, saying there is nothing to roll back to."
    type: int
  state:
    description: What to do with the copy.
    type: str
    default: taken
    choices: [taken, restored, absent]
  required:
    description: With C(taken), fail (rather than return C(taken=false)) when the server will not copy.
    type: bool
    default: false
  unreachable_ok:
    description:
      - With C(absent), a server that cannot be reached is not a failure (a release gives the
        leases back whatever state the target is in); C(drtool_note) says the copy may remain.
    type: bool
    default: false
author: drtool maintainers
"""

RETURN = r"""
copy_database:
  description: The copy's database name.
  type: str
  returned: always
exists:
  description: Whether I(database) existed (C(taken)).
  type: bool
  returned: always
taken:
  description: Whether the copy was made (C(taken)).
  type: bool
  returned: always
reason:
  description: Why the server would not copy, when it would not.
  type: str
  returned: always
counts:
  description: Exact row count of every table of the copy.
  type: dict
  returned: when taken
oid:
  description: The copy's oid.
  type: int
  returned: when taken
found:
  description: Whether there was a copy (C(restored), C(absent)).
  type: bool
  returned: always
drtool_note:
  description: One line for the drill's journal.
  type: str
  returned: always
"""

import hashlib
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.postgres import (
    CONNECTION_ARGS,
    connect,
    exact_counts,
    import_psycopg,
)

# PostgreSQL's identifiers are at most 63 bytes.
NAME_BYTES = 63


def copy_name(database, snapshot_id):
    """The copy's name: recognisable (the database's name, cut to fit, and `_drtool_`) and
    the same from every run of the same drill, so a cleanup or a release finds it without the
    snapshot's record."""
    digest = hashlib.sha256(("%s\0%s" % (snapshot_id, database)).encode()).hexdigest()[:12]
    suffix = "_drtool_" + digest
    head = database.encode()[:NAME_BYTES - len(suffix)].decode("utf-8", "ignore")
    return head + suffix


def database_oid(conn, name):
    row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return None if row is None else int(row[0])


def database_exists(conn, name):
    return conn.execute("SELECT count(*) > 0 FROM pg_database WHERE datname = %s",
                        (name,)).fetchone()[0]


def drop(conn, sql, name, reopen=True):
    """Drop database `name`, closing its sessions; nothing may connect in between. Not
    dropped, it takes connections again (when it took them before: `reopen`)."""
    ident = sql.Identifier(name)
    conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident))
    try:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))
    except Exception:
        if reopen:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(ident))
        raise


def stop_copying(conn, name, timeout=30.0):
    """End a copy to `name` the server is still making for a drill that was killed: it does
    not notice its client is gone, and would commit the copy after a release or a cleanup
    had looked for it. Ended, the server removes what it had copied."""
    statement = 'CREATE DATABASE "%s" ' % name.replace('"', '""')
    find = ("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND starts_with(query, %s) AND state = 'active'")
    pids = [row[0] for row in conn.execute(find, (statement,)).fetchall()]
    for pid in pids:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + timeout
    while pids and conn.execute(find, (statement,)).fetchall():
        if time.monotonic() > deadline:
            raise RuntimeError("a copy to %s did not stop within %d s" % (name, timeout))
        time.sleep(0.1)


def refusal(psycopg, exc):
    """Why the server would not copy, in a line, or None for an error that is not a refusal
    (the server down, a lost connection: those fail the task whatever I(required) says)."""
    errors = psycopg.errors
    if isinstance(exc, errors.ObjectInUse):
        return "other sessions use the database, and a copy needs it to itself: %s" % exc
    if isinstance(exc, (errors.InsufficientPrivilege, errors.DiskFull,
                        errors.InsufficientResources, errors.ProgramLimitExceeded)):
        return str(exc).strip()
    return None


def take(module, psycopg, sql, conn, params, name):
    source = params["database"]
    result = dict(copy_database=name, exists=database_exists(conn, source), taken=False, reason="",
                  found=False)
    if not result["exists"]:
        result["drtool_note"] = "%s: no database to snapshot" % source
        return result
    if module.check_mode:
        return result
    stop_copying(conn, name)
    if database_exists(conn, name):  # a copy an earlier attempt of this drill left
        drop(conn, sql, name, reopen=False)
    owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                         (source,)).fetchone()[0]
    # Before 15 a template is always copied file by file; from 15 the default writes the
    # whole database into the WAL instead (slower, and an archive's worth of WAL).
    strategy = (sql.SQL(" STRATEGY FILE_COPY")
                if conn.info.server_version >= 150000 else sql.SQL(""))
    try:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}{}").format(
            sql.Identifier(name), sql.Identifier(source), sql.Identifier(owner), strategy))
    except psycopg.Error as exc:
        reason = refusal(psycopg, exc)
        if reason is None or params["required"]:
            raise
        result.update(reason=reason,
                      drtool_note="%s: no copy in its cluster (%s); dumped instead"
                      % (source, reason))
        return result
    with connect(psycopg, params, database=name) as copy:
        result["counts"] = exact_counts(copy)
    # No one uses the snapshot, nor changes it, until it is put back.
    conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false")
                 .format(sql.Identifier(name)))
    result.update(taken=True, oid=database_oid(conn, name),
                  drtool_note="%s: copied within its cluster as %s" % (source, name))
    return result


def put_back(module, sql, conn, params, name):
    target = params["database"]
    stop_copying(conn, name)
    result = dict(copy_database=name, exists=database_exists(conn, target), taken=False, reason="",
                  found=database_exists(conn, name))
    if not result["found"]:
        # Put back by an earlier attempt (a rename keeps the copy's oid), or lost.
        if params["copy_oid"] is None or database_oid(conn, target) != params["copy_oid"]:
            module.fail_json(msg="the safety snapshot's copy %s of %s is gone, and %s is not "
                             "it: there is nothing to roll back to" % (name, target, target),
                             **result)
        if not module.check_mode:  # an attempt cut short after the rename
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true")
                         .format(sql.Identifier(target)))
        result["drtool_note"] = "%s: its copy %s was put back already" % (target, name)
        return result
    if not module.check_mode:
        if result["exists"]:
            drop(conn, sql, target)
        # One transaction: the database is never there and closed to connections.
        with conn.transaction():
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(name), sql.Identifier(target)))
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true")
                         .format(sql.Identifier(target)))
    result["drtool_note"] = "%s: its copy %s put back in its place" % (target, name)
    return result


def main():
    args = dict(CONNECTION_ARGS)
    args.update(snapshot_id=dict(type="str", required=True), copy_database=dict(type="str"),
                copy_oid=dict(type="int"),
                state=dict(type="str", default="taken", choices=["taken", "restored", "absent"]),
                required=dict(type="bool", default=False),
                unreachable_ok=dict(type="bool", default=False))
    module = AnsibleModule(argument_spec=args, supports_check_mode=True)
    params = module.params
    psycopg = import_psycopg(module)
    from psycopg import sql  # noqa: PLC0415

    name = params["copy_database"] or copy_name(params["database"], params["snapshot_id"])
    if params["state"] == "absent" and params["unreachable_ok"]:
        try:
            connect(psycopg, params, database="postgres").close()
        except psycopg.OperationalError as exc:
            if exc.sqlstate is not None:  # the server answered: a refusal, not an absence
                module.fail_json(msg="PostgreSQL %s:%s: %s" % (params["host"], params["port"],
                                                               exc))
            module.exit_json(changed=False, copy_database=name, exists=False, taken=False,
                             reason="", found=False, drtool_note=(
                                 "%s: the server could not be reached (%s); a copy %s this "
                                 "drill made stays until it is dropped by hand"
                                 % (params["database"], " ".join(str(exc).split()), name)))
    try:
        with connect(psycopg, params, database="postgres") as conn:
            if params["state"] == "taken":
                result = take(module, psycopg, sql, conn, params, name)
                changed = result["taken"]
            elif params["state"] == "restored":
                result = put_back(module, sql, conn, params, name)
                changed = result["found"]
            else:
                stop_copying(conn, name)
                found = database_exists(conn, name)
                if found and not module.check_mode:
                    drop(conn, sql, name, reopen=False)
                result = dict(copy_database=name, exists=False, taken=False, reason="", found=found,
                              drtool_note="%s: its copy %s %s" % (
                                  params["database"], name, "dropped" if found else "was gone"))
                changed = found
    except (psycopg.Error, RuntimeError) as exc:
        module.fail_json(msg="PostgreSQL %s:%s: %s" % (params["host"], params["port"], exc))
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
