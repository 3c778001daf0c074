"""A failed task says why in the tool's own words, and neither the reason nor any artifact
holds a secret. Each test fails a task the way a drill task fails, with drtool's own role
file or module, through AnsibleAdapter as a drill phase runs it (real ansible-playbook,
connection local): a command, a loop item, a service's and Redis's start commands, the
pg_restore module, a no_log task; then, against the sandbox's real PostgreSQL, pg_restore,
pg_dump and a wrong password, on a scratch database (the sandbox's appdb is not touched)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drtool.adapters.ansible import PlaybookRun
from tests.ansible_probe import Probe, artifacts_text, only_failure, probe_runner
from tests.conftest import Drtool, pg

pytestmark = pytest.mark.integration

GHOST = "drtool_ghost"  # a role the primary has and the restore target lacks
SCRATCH = "drtool_reasons"


@pytest.fixture
def probe(tmp_path: Path) -> Probe:
    return probe_runner(tmp_path)


# -- drill tasks that fail on this machine, no sandbox needed -------------------------------

PY = sys.executable
SECRET = "pr0be-s3cret-VALUE"


def test_a_failed_command_says_what_it_printed(probe):
    run = probe([{"name": "Fail loudly", "ansible.builtin.command": {"argv": [
        PY, "-c", "import sys; sys.stderr.write('disk on fire\\n'); sys.exit(3)"]}}])
    assert only_failure(run) == "non-zero return code: disk on fire"


def test_a_failed_loop_item_says_which_and_why(probe):
    run = probe([{"name": "Check every part", "ansible.builtin.command": {"argv": [
        "/bin/sh", "-c", 'test "$0" != beta || { echo "$0 is broken" >&2; exit 1; }',
        "{{ item }}"]}, "loop": ["alpha", "beta", "gamma"]}])
    assert only_failure(run) == "item beta: non-zero return code: beta is broken"


def test_the_services_start_command_failing_says_why(probe):
    run = probe([{"name": "Start the app", "ansible.builtin.include_role": {
        "name": "drtool_service", "tasks_from": "start"}, "vars": {
        "drtool_service_manager": "command",
        "drtool_service_start_command": [PY, "-c", "import sys; print('starting');"
                                         "sys.exit('cannot bind 127.0.0.1:8080: in use')"]}}])
    assert only_failure(run) == "non-zero return code: cannot bind 127.0.0.1:8080: in use"
    assert run.failures[0].task == "Start the application on the restored stores with its command"


def test_the_redis_start_command_failing_says_why_without_the_password(probe, tmp_path):
    rdb = tmp_path / "backup.rdb"
    rdb.write_bytes(b"REDIS0011")
    with socket.socket() as sock:  # a port nothing listens on: the shutdown finds it down
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = probe([{"name": "Load the RDB", "ansible.builtin.include_role": {
        "name": "drtool_redis", "tasks_from": "load_rdb"}, "vars": {
        "drtool_redis_port": port, "drtool_redis_password": SECRET,
        "__drtool_redis_rdb": str(rdb), "drtool_redis_rdb_path": str(tmp_path / "dump.rdb"),
        "drtool_redis_service_manager": "command",
        "drtool_redis_start_command": ["redis-server", str(tmp_path / "missing.conf")]}}])
    reason = only_failure(run)
    assert reason.startswith("non-zero return code: ") and "can't open config file" in reason
    assert run.failures[0].task == "Start the server with its command"
    assert SECRET not in reason and SECRET not in artifacts_text(tmp_path)


def test_pg_restore_fails_with_its_own_error_and_gets_the_password_in_its_env_only(probe,
                                                                                    tmp_path):
    # A stand-in for pg_restore that reports what it was given and fails like the real one.
    seen = tmp_path / "seen.json"
    fake = tmp_path / "pg_restore"
    fake.write_text(f"#!{PY}\nimport json, os, sys\n"
                    f"json.dump({{'argv': sys.argv, 'env': os.environ.get('PGPASSWORD')}}, "
                    f"open({str(seen)!r}, 'w'))\n"
                    "sys.stderr.write('pg_restore: error: could not execute query: ERROR:  "
                    "role \"ghost\" does not exist\\nCommand was: ALTER TABLE t OWNER TO ghost;"
                    "\\n(it had PGPASSWORD=' + os.environ['PGPASSWORD'] + ')\\n')\n"
                    "sys.exit(1)\n")
    fake.chmod(0o755)
    run = probe([{"name": "Restore the dump", "drtool.drill.pg_restore": {
        "port": 1, "password": SECRET, "database": "appdb", "src": str(tmp_path),
        "pg_restore": str(fake)}}])
    reason = only_failure(run)
    assert reason.startswith("pg_restore failed (exit 1): pg_restore: error: could not execute "
                             'query: ERROR:  role "ghost" does not exist | Command was: ALTER')
    assert SECRET not in reason and SECRET not in artifacts_text(tmp_path)
    given = json.loads(seen.read_text())
    assert given["env"] == SECRET and not any(SECRET in arg for arg in given["argv"])
    assert "--exit-on-error" in given["argv"] and given["argv"][-1] == str(tmp_path)


def test_a_no_log_task_says_its_output_is_hidden(probe):
    run = probe([{"name": "Secretive", "no_log": True, "ansible.builtin.command": {
        "argv": [PY, "-c", "raise SystemExit(1)"]}}])
    assert only_failure(run) == "the task's output is hidden (no_log: true)"


# -- against the sandbox's PostgreSQL -------------------------------------------------------

@pytest.fixture
def ghost_database(sandbox: Drtool) -> Iterator[str]:
    """A database on the primary owned by a role the target lacks, dropped again after."""
    def drop() -> None:
        for service in ("pg_primary", "pg_target"):
            with pg(sandbox, service, "postgres") as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
                conn.execute(f"DROP ROLE IF EXISTS {GHOST}")

    drop()
    with pg(sandbox, "pg_primary", "postgres") as conn:
        conn.execute(f"CREATE ROLE {GHOST}")
        conn.execute(f"CREATE DATABASE {SCRATCH} OWNER {GHOST}")
    with pg(sandbox, "pg_primary", SCRATCH) as conn:
        conn.execute("CREATE TABLE owned (i int)")
        conn.execute(f"ALTER TABLE owned OWNER TO {GHOST}")
        conn.execute("INSERT INTO owned VALUES (1), (2)")
    try:
        yield SCRATCH
    finally:
        drop()


def restore_dump(probe: Probe, sandbox: Drtool, database: str, dump: Path) -> PlaybookRun:
    """Run the role file a restore and a rollback both include into the sandbox target's
    `database`, with its variables as they set them."""
    return probe([{"name": "Restore", "ansible.builtin.include_role": {
        "name": "drtool_postgres", "tasks_from": "restore_dump"}, "vars": {
        "drtool_postgres_port": sandbox.port("pg_target"),
        "drtool_postgres_password": sandbox.secret("postgres_password"),
        "drtool_postgres_database": database, "__drtool_postgres_dump": str(dump)}}])


def test_pg_restore_of_a_database_whose_owner_the_target_lacks_says_so(sandbox, probe,
                                                                       ghost_database,
                                                                       tmp_path):
    password = sandbox.secret("postgres_password")
    dump = tmp_path / "ghost.dump"
    subprocess.run(["/usr/lib/postgresql/15/bin/pg_dump", "--format=custom", f"--file={dump}",
                    "--host=127.0.0.1", f"--port={sandbox.port('pg_primary')}",
                    "--username=postgres", "--no-password", ghost_database],
                   env=dict(os.environ, PGPASSWORD=password), check=True, timeout=60)

    run = restore_dump(probe, sandbox, ghost_database, dump)

    reason = only_failure(run)
    assert run.failures[0].task == "Restore the dump"
    assert reason.startswith("pg_restore failed (exit 1): pg_restore: error: could not execute "
                             f'query: ERROR:  role "{GHOST}" does not exist'), reason
    assert password not in reason and password not in artifacts_text(tmp_path)


def test_a_dump_whose_database_file_cannot_be_read_is_refused_before_the_drop(
        sandbox, probe, tmp_path):
    # The restore recreates the database owned as dumped (database.json beside the dump):
    # a file that is there and unreadable fails the task before the database is dropped.
    password = sandbox.secret("postgres_password")
    with pg(sandbox, "pg_target", "postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {SCRATCH}")
    try:
        with pg(sandbox, "pg_target", SCRATCH) as conn:
            conn.execute("CREATE TABLE kept (i int)")
            conn.execute("INSERT INTO kept VALUES (1)")
        dump = tmp_path / "dump"
        dump.mkdir()
        (dump / "database.json").write_text('{"database": "' + SCRATCH + '", "own')

        run = restore_dump(probe, sandbox, SCRATCH, dump)

        reason = only_failure(run)
        assert run.failures[0].task == "Restore the dump"
        assert reason.startswith(f"cannot read who owned the database from {dump}/database.json"), \
            reason
        with pg(sandbox, "pg_target", SCRATCH) as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone()[0] == 1
        assert password not in artifacts_text(tmp_path)
    finally:
        with pg(sandbox, "pg_target", "postgres") as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")


def test_pg_dump_failing_says_what_pg_dump_said(sandbox, probe, ghost_database, tmp_path):
    password = sandbox.secret("postgres_password")
    run = probe([{"name": "Dump", "drtool.drill.pg_backup": {
        "port": sandbox.port("pg_primary"), "password": password, "database": ghost_database,
        "dest": str(tmp_path / "backup" / "postgres"), "backup_root": str(tmp_path / "backup"),
        "jobs": 0, "pg_dump": "/usr/lib/postgresql/15/bin/pg_dump", "backup_id": "reasons",
        "sentinel_value": "reasons"}}])
    reason = only_failure(run)
    assert reason.startswith("pg_dump failed (exit 1): pg_dump: error: -j/--jobs must be in "
                             "range 1.."), reason
    assert password not in artifacts_text(tmp_path)


def test_the_dump_is_compressed_as_asked_and_a_level_pg_dump_refuses_says_why(
        sandbox, probe, ghost_database, tmp_path):
    password = sandbox.secret("postgres_password")

    def dump(folder: str, compress: object) -> dict[str, object]:
        return {"name": f"Dump {folder}", "drtool.drill.pg_backup": {
            "port": sandbox.port("pg_primary"), "password": password,
            "database": ghost_database, "dest": str(tmp_path / folder / "postgres"),
            "backup_root": str(tmp_path / folder), "compress": compress,
            "pg_dump": "/usr/lib/postgresql/15/bin/pg_dump", "backup_id": "reasons"}}

    run = probe([dump("none", 0), dump("gzip", "1"), dump("default", ""), dump("bad", "zstd")])
    reason = only_failure(run)
    assert reason.startswith('pg_dump failed (exit 1): pg_dump: error: invalid value "zstd" '
                             "for option -Z/--compress"), reason
    data = {folder: sorted(p.name for p in (tmp_path / folder / "postgres").glob("*.dat*")
                           if p.name != "toc.dat")
            for folder in ("none", "gzip", "default")}
    assert data["none"] and all(name.endswith(".dat") for name in data["none"]), data
    assert data["gzip"] and all(name.endswith(".dat.gz") for name in data["gzip"]), data
    assert data["default"] and all(name.endswith(".dat.gz") for name in data["default"]), data
    assert password not in artifacts_text(tmp_path)


def test_a_wrong_password_is_named_as_the_server_said_it_and_not_shown(sandbox, probe, tmp_path):
    password = sandbox.secret("postgres_password")
    wrong = "wrong-" + password[::-1]
    run = probe([{"name": "Facts", "drtool.drill.pg_facts": {
        "port": sandbox.port("pg_target"), "password": wrong, "database": "postgres"}}])
    reason = only_failure(run)
    assert 'password authentication failed for user "postgres"' in reason, reason
    text = artifacts_text(tmp_path)
    for secret in (wrong, password):
        assert secret not in reason and secret not in text
