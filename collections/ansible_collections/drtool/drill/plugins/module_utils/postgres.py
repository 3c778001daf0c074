"""PostgreSQL helpers shared by drtool's modules (psycopg 3 on the managed host), and the
pure reading of pg_restore's script and pg_dumpall's globals (unit-tested alone)."""

from __future__ import annotations

import os
import re
from collections import namedtuple

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



def write_sentinel(conn, backup_id, value):
    """drtool's sentinel row for `backup_id` (its table created where missing)."""
    for statement in SENTINEL_DDL:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO drtool.sentinel (backup_id, value) VALUES (%s, %s)"
        " ON CONFLICT (backup_id) DO UPDATE SET value = EXCLUDED.value",
        (backup_id, value),
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


def database_exists(conn, database):
    return conn.execute("SELECT count(*) > 0 FROM pg_database WHERE datname = %s",
                        (database,)).fetchone()[0]


def recreate_database(psycopg, conn, database, state="recreated", owner=None):
    """Drop `database` (state absent or recreated) and create it (recreated, or present
    when missing), on a connection to another database. A drop first refuses new
    connections, then ends the open ones (WITH (FORCE)); a database it creates is given to
    `owner` when the cluster has that role. Returns (existed, created, owned_by)."""
    from psycopg import sql  # noqa: PLC0415 - psycopg is imported by import_psycopg

    name = sql.Identifier(database)
    existed = database_exists(conn, database)
    if existed and state in ("absent", "recreated"):
        # Refuse new connections first: FORCE ends the open ones, and nothing (an
        # application, a worker) may connect between that and the drop.
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(name))
        try:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
        except psycopg.Error:
            # Not dropped: let it be used again, then say why.
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(name))
            raise
    if not (state == "recreated" or (state == "present" and not existed)):
        return existed, False, None
    conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    if owner and conn.execute("SELECT count(*) > 0 FROM pg_roles WHERE rolname = %s",
                              (owner,)).fetchone()[0]:
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(name, sql.Identifier(owner)))
    owned_by = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                            (database,)).fetchone()[0]
    return existed, True, owned_by


def setting(psycopg, conn, name):
    """A server setting only a superuser (or pg_read_all_settings) may read; None when this
    role may not."""
    try:
        with conn.transaction():
            return conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]
    except psycopg.Error:
        return None


def system_identifier(psycopg, conn):
    """The cluster's identity, set by initdb and shared by its physical copies: what tells
    two servers apart whatever address or port they answer on. None when it cannot be read
    (a role without the right to call pg_control_system)."""
    try:
        row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
    except psycopg.Error:  # an unknown identity is for the caller to judge
        return None
    return row[0] if row else None


def server_facts(psycopg, admin):
    """The server's version and identity, on any connection to it."""
    return {"server_version": admin.execute("SHOW server_version").fetchone()[0],
            "system_identifier": system_identifier(psycopg, admin),
            "data_directory": setting(psycopg, admin, "data_directory")}


def content_facts(conn, backup_id, heartbeat_query):
    """What a database holds, on a connection to it: exact counts, sequences, the sentinel
    of `backup_id`, the newest heartbeat (pg_facts' measure, and a restore's)."""
    return {"counts": exact_counts(conn), "sequences": sequence_values(conn),
            "sentinel_value": sentinel_value(conn, backup_id),
            "heartbeat_at": newest_heartbeat(conn, heartbeat_query)}


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



# -- Which roles and tablespaces a dump needs, and the globals to create roles from ----------
#
# pg_restore prints every TOC entry of a dump (`pg_restore --schema-only -f -` reads only
# toc.dat) under a header comment naming its type, owner and tablespace. The owners, and the
# roles its ACL, policy and user mapping entries name, are what the target cluster must
# have. A tokenizer that knows SQL's quoting reads the script, so a function body that only
# looks like a header or a GRANT is never taken for one.

SQL_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*)
  | (?P<block>/\*)
  | (?P<meta>\\[^\n]*)
  | (?P<ident>"(?:[^"]|"")*")
  | (?P<string>[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*')
  | (?P<dollar>\$(?:[^\W\d]\w*)?\$)
  | (?P<word>[^\W\d]\w*(?:\$\w*)*)
  | (?P<semi>;)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)

TOC_HEADER = re.compile(
    r"^-- (?:Data for )?Name: .*?; Type: (?P<type>.*?); Schema: .*?; "
    r"Owner: (?P<owner>.*?)(?:; Tablespace: (?P<tablespace>.*))?$")

# Names in a role list that are no role, and the tablespaces every cluster has.
NOT_ROLES = frozenset({"public", "current_user", "session_user", "current_role", "group"})
BUILTIN_TABLESPACES = frozenset({"pg_default", "pg_global"})
# Entries whose roles pg_restore --no-privileges leaves out, and every entry naming roles.
ACL_TYPES = frozenset({"ACL", "DEFAULT ACL", "ACL LANGUAGE"})
ROLE_NAMING_TYPES = ACL_TYPES | {"POLICY", "USER MAPPING"}

# kind: word (folded to lower case, as PostgreSQL folds it), ident (unquoted), string,
# semi, other or comment; start and end are offsets in the script.
Token = namedtuple("Token", "kind value start end")


def sql_tokens(text):
    """Every token of an SQL script, comments included; whitespace and psql meta-commands
    (such as \\restrict) left out. Raises ValueError on an unterminated quote or comment."""
    tokens, pos = [], 0
    while pos < len(text):
        match = SQL_TOKEN.match(text, pos)
        kind, end = match.lastgroup, match.end()
        if kind == "block":  # block comments nest in PostgreSQL
            depth = 1
            while depth:
                found = [i for i in (text.find("/*", end), text.find("*/", end)) if i >= 0]
                if not found:
                    raise ValueError("an unterminated /* comment at offset %d" % pos)
                depth += 1 if text.startswith("/*", min(found)) else -1
                end = min(found) + 2
        elif kind == "dollar":
            close = text.find(match.group(), end)
            if close < 0:
                raise ValueError("an unterminated %s quote at offset %d" % (match.group(), pos))
            tokens.append(Token("string", text[end:close], pos, close + len(match.group())))
            end = close + len(match.group())
        elif kind == "ident":
            tokens.append(Token("ident", match.group()[1:-1].replace('""', '"'), pos, end))
        elif kind == "word":
            tokens.append(Token("word", match.group().lower(), pos, end))
        elif kind == "other" and match.group() in "'\"":
            raise ValueError("an unterminated quote at offset %d" % pos)
        elif kind in ("string", "semi", "other", "comment"):
            tokens.append(Token(kind, match.group(), pos, end))
        pos = end
    return tokens


def sql_statements(tokens):
    """Split tokens at their semicolons: a list of (statement tokens, start, end), comments
    left out, `end` just past the semicolon."""
    statements, current = [], []
    for token in tokens:
        if token.kind == "semi":
            if current:
                statements.append((current, current[0].start, token.end))
            current = []
        elif token.kind != "comment":
            current.append(token)
    if current:
        statements.append((current, current[0].start, current[-1].end))
    return statements


def _is(token, *words):
    return token.kind == "word" and token.value in words


def _after(tokens, word):
    """The tokens after the first bare `word`, or []."""
    for index, token in enumerate(tokens):
        if _is(token, word):
            return tokens[index + 1:]
    return []


def _names(tokens, stop=()):
    """The role names of a list such as `a, "B c", PUBLIC`, up to a bare word in `stop`."""
    names = []
    for token in tokens:
        if token.kind == "word" and token.value in stop:
            break
        if token.kind == "ident" or (token.kind == "word" and token.value not in NOT_ROLES):
            names.append(token.value)
    return names


def statement_roles(tokens):
    """The roles one GRANT, REVOKE, ALTER DEFAULT PRIVILEGES, SET SESSION AUTHORIZATION,
    CREATE POLICY or CREATE USER MAPPING statement, as pg_dump writes them, names."""
    words = [t.value if t.kind == "word" else None for t in tokens[:3]]
    if words == ["set", "session", "authorization"]:
        return _names(tokens[3:4])
    if words == ["alter", "default", "privileges"]:
        action = next((i for i, t in enumerate(tokens) if _is(t, "grant", "revoke")), len(tokens))
        return (_names(_after(tokens[:action], "for")[1:], {"in"})
                + statement_roles(tokens[action:]))
    if words[:1] == ["grant"]:
        return _names(_after(tokens, "to"), {"with", "granted"}) + _names(
            _after(tokens, "granted")[1:2])
    if words[:1] == ["revoke"]:
        return _names(_after(tokens, "from"), {"cascade", "restrict", "granted"}) + _names(
            _after(tokens, "granted")[1:2])
    if words[:2] == ["create", "policy"]:
        # Only before its expressions, where SIMILAR TO is no role list.
        head = next((tokens[:i] for i, t in enumerate(tokens) if _is(t, "using", "with")),
                    tokens)
        return _names(_after(_after(head, "on"), "to"))
    if words == ["create", "user", "mapping"]:
        return _names(_after(tokens, "for")[:1])
    return []


def dump_requirements(script):
    """What a dump needs of the cluster it is restored into, read from its pg_restore
    script: {"owners", "grantees", "others", "tablespaces"}, each a sorted list. Owners own
    its objects (--no-owner restores without them); grantees are named by its ACL entries
    (--no-privileges restores without them); others are named by its policies and user
    mappings (needed either way). Raises ValueError on a script it cannot read."""
    found = {"owners": set(), "grantees": set(), "others": set(), "tablespaces": set()}
    entry, statement = None, []
    for token in sql_tokens(script):
        header = TOC_HEADER.match(token.value) if token.kind == "comment" else None
        if header:
            entry, statement = header.group("type"), []
            if header.group("owner") not in ("", "-"):
                found["owners"].add(header.group("owner"))
            if header.group("tablespace"):
                found["tablespaces"].add(header.group("tablespace"))
        elif token.kind == "semi":
            if entry in ROLE_NAMING_TYPES:
                kind = "grantees" if entry in ACL_TYPES else "others"
                found[kind].update(statement_roles(statement))
            statement = []
        elif token.kind != "comment":
            statement.append(token)
    found["tablespaces"] -= BUILTIN_TABLESPACES
    return {kind: sorted(names) for kind, names in found.items()}


def globals_for_roles(script, roles):
    """The statements of a pg_dumpall --globals-only script that create `roles` as the
    source cluster had them: {"roles": {role: [CREATE ROLE, ALTER ROLE ... WITH, ALTER ROLE
    ... SET, COMMENT ON ROLE]}, "memberships": [(role, member, statement)]}. Per-database
    settings (ALTER ROLE ... IN DATABASE) are left out: the restore creates the database
    itself. A membership names `roles` on either side; its GRANTED BY is cut, so the
    grantor need not exist. Roles the script does not create are not in "roles"."""
    wanted, found, memberships = set(roles), {}, []
    for tokens, start, end in sql_statements(sql_tokens(script)):
        text = script[start:end]
        words = [t.value if t.kind == "word" else None for t in tokens]
        name = tokens[2].value if len(tokens) > 2 and tokens[2].kind in ("word", "ident") else None
        if words[:2] == ["create", "role"] and name in wanted:
            found.setdefault(name, []).insert(0, text)
        elif words[:2] == ["alter", "role"] and name in wanted and "database" not in words[3:5]:
            found.setdefault(name, []).append(text)
        elif words[:3] == ["comment", "on", "role"] and len(tokens) > 3 and (
                tokens[3].value in wanted):
            found.setdefault(tokens[3].value, []).append(text)
        elif words[:1] == ["grant"] and "on" not in words and len(tokens) > 3 and _is(
                tokens[2], "to"):
            role, member = tokens[1].value, tokens[3].value
            if wanted & {role, member}:
                granted = next((t.start for t in tokens if _is(t, "granted")), end)
                memberships.append((role, member, script[start:granted].strip().rstrip(";")))
    return {"roles": {name: found[name] for name in found if found[name][0].lower().startswith(
        "create")}, "memberships": memberships}
