"""PostgreSQL helpers shared by drtool's modules (psycopg 3 on the managed host)."""

from __future__ import annotations

import os

CONNECTION_ARGS = dict(
    host=dict(type="str", default="127.0.0.1"),
    port=dict(type="int", default=5432),
    user=dict(type="str", default="postgres"),
    password=dict(type="str", no_log=True, default=None),
    database=dict(type="str", required=True),
    connect_timeout=dict(type="int", default=10),
)

# Tables and partitioned tables outside the system schemas. A partitioned parent is counted
# with its partitions; every other table is counted alone (FROM ONLY), so the two agree.
RELATIONS_SQL = """
SELECT n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1, 2
"""

SEQUENCES_SQL = """
SELECT schemaname, sequencename, last_value FROM pg_sequences
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2
"""

SENTINEL_DDL = (
    "CREATE SCHEMA IF NOT EXISTS drtool",
    "CREATE TABLE IF NOT EXISTS drtool.sentinel ("
    " backup_id text PRIMARY KEY, value text NOT NULL,"
    " written_at timestamptz NOT NULL DEFAULT clock_timestamp())",
)


# How much of a tool's stderr a failure message keeps: the end, where the error is.
STDERR_TAIL = 2000


def tool_failure(tool, returncode, stderr, secrets=()):
    """The message of a failed client program (pg_dump, pg_restore): its exit code and the
    tail of its own stderr, with every value in `secrets` replaced by ***."""
    text = (stderr or "").strip()
    for secret in secrets:  # before the cut: half a secret would not be found
        if secret:
            text = text.replace(secret, "***")
    if len(text) > STDERR_TAIL:
        text = "..." + text[-STDERR_TAIL:]
    return "%s failed (exit %d): %s" % (tool, returncode, text or "no message on stderr")


def client_env(params):
    """The environment of a client program: the password in PGPASSWORD, only there (never
    on its command line, where `ps` shows it)."""
    env = dict(os.environ, PGCONNECT_TIMEOUT=str(params["connect_timeout"]))
    env.pop("PGPASSWORD", None)
    if params["password"]:
        env["PGPASSWORD"] = params["password"]
    return env


def import_psycopg(module):
    """Return the psycopg module, or fail the task with a clear message."""
    try:
        import psycopg  # noqa: PLC0415 - the import is the check
        from psycopg import sql  # noqa: F401,PLC0415
    except ImportError:
        module.fail_json(msg="drtool.drill needs the psycopg (3) Python package on the managed host")
    return psycopg


def connect(psycopg, params, database=None, autocommit=True):
    """Open a connection from the module's connection parameters."""
    return psycopg.connect(
        host=params["host"],
        port=params["port"],
        user=params["user"],
        password=params["password"],
        dbname=database or params["database"],
        connect_timeout=params["connect_timeout"],
        autocommit=autocommit,
        application_name="drtool",
    )


def exact_counts(conn):
    """Return {"schema.table": exact row count} for every table, partitions included."""
    from psycopg import sql  # noqa: PLC0415

    counts = {}
    for schema, name, kind in conn.execute(RELATIONS_SQL).fetchall():
        only = sql.SQL("") if kind == "p" else sql.SQL("ONLY ")
        query = sql.SQL("SELECT count(*) FROM {}{}.{}").format(
            only, sql.Identifier(schema), sql.Identifier(name)
        )
        counts[schema + "." + name] = conn.execute(query).fetchone()[0]
    return counts


def sequence_values(conn):
    """Return {"schema.sequence": last_value or None when never used}."""
    return {s + "." + n: v for s, n, v in conn.execute(SEQUENCES_SQL).fetchall()}


def newest_heartbeat(conn, query):
    """Run the environment's heartbeat query; return its timestamp as ISO-8601 or None."""
    if not query:
        return None
    try:
        # A savepoint inside an open snapshot transaction, a transaction of its own otherwise:
        # either way a missing heartbeat table cannot break the caller's transaction.
        with conn.transaction():
            row = conn.execute(query).fetchone()
    except Exception:  # noqa: BLE001 - a missing heartbeat table means "no heartbeat"
        return None
    if not row or row[0] is None:
        return None
    return row[0].isoformat()


def sentinel_value(conn, backup_id):
    """Return the sentinel value written for `backup_id`, or None."""
    exists = conn.execute("SELECT to_regclass('drtool.sentinel') IS NOT NULL").fetchone()[0]
    if not exists or not backup_id:
        return None
    row = conn.execute(
        "SELECT value FROM drtool.sentinel WHERE backup_id = %s", (backup_id,)
    ).fetchone()
    return row[0] if row else None
