"""The manifest describes the backup exactly, even while the primaries take writes; and a
restore of the wrong backup is caught (pgBackRest-style sentinels)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from drtool.adapters import postgres, redis_client
from tests.conftest import Drtool, copy_inventory, pg, rd

pytestmark = pytest.mark.integration


def exact_counts(conn) -> dict[str, int]:
    rows = conn.execute("""
        SELECT n.nspname || '.' || c.relname, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    """).fetchall()
    only = {"p": ""}  # a partitioned parent counts its partitions; other tables count alone
    return {name: conn.execute(f"SELECT count(*) FROM {only.get(kind, 'ONLY ')}{name}")  # noqa: S608 - catalog names
            .fetchone()[0] for name, kind in rows}


@pytest.fixture(scope="module")
def backup_under_writes(sandbox: Drtool) -> tuple[dict[str, Any], dict[str, int]]:
    """A backup of the whole sandbox taken while a row writer and a key writer ran all
    along, and how many rows and keys they wrote."""
    stop = threading.Event()
    written = {"rows": 0, "keys": 0}

    def write_rows() -> None:
        with pg(sandbox, "pg_primary") as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS load_test (id bigserial PRIMARY KEY, "
                         "at timestamptz DEFAULT clock_timestamp())")
            while not stop.is_set():
                conn.execute("INSERT INTO load_test DEFAULT VALUES")
                written["rows"] += 1

    def write_keys() -> None:
        client = rd(sandbox, "redis_primary")
        while not stop.is_set():
            client.set(f"load:{written['keys']}", "x")
            written["keys"] += 1

    writers = [threading.Thread(target=write_rows), threading.Thread(target=write_keys)]
    for thread in writers:
        thread.start()
    try:
        time.sleep(1.0)
        code, backup = sandbox.json("backup", "--env", "sandbox")
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=30)
    assert code == 0, backup["failure"]
    return backup, written


def test_counts_match_the_backup_exactly_under_concurrent_writes(sandbox: Drtool,
                                                                backup_under_writes):
    backup, written = backup_under_writes
    assert written["rows"] > 100 and written["keys"] > 100  # the writers really ran throughout
    manifest = json.loads(Path(backup["backup"]["manifest"]).read_text())
    # A part per database of the cluster `main` and per Redis instance.
    databases = {p["database"]: p for p in manifest["postgres"] if p["component"] == "main"}
    instances = {p["component"]: p for p in manifest["redis"]}
    assert set(databases) == {"appdb", "shop"} and set(instances) == {"cache", "queue"}
    database, instance = databases["appdb"], instances["cache"]  # the ones written to here

    restored = sandbox("restore", "--env", "sandbox", "--backup", backup["backup"]["id"])
    assert restored.returncode == 0, restored.stdout + restored.stderr

    # Nothing writes to the targets after a plain restore: they must hold exactly what the
    # manifest says, though both primaries kept changing during the backup.
    with pg(sandbox, "pg_target") as conn:
        assert exact_counts(conn) == database["counts"]
    assert 0 < database["counts"]["public.load_test"] < written["rows"]
    assert rd(sandbox, "redis_target").dbsize() == instance["counts"]["db0"]
    # The other parts too: shop, and the queue its worker kept changing during the backup.
    with pg(sandbox, "pg_target", "shop") as conn:
        assert exact_counts(conn) == databases["shop"]["counts"]
    queue = redis_client.connect("127.0.0.1", sandbox.layout.port("queue_target"),
                                 sandbox.secret("redis_password"))
    assert queue.dbsize() == instances["queue"]["counts"]["db0"]
    with pg(sandbox, "pg_primary") as conn:
        conn.execute("DROP TABLE load_test")
    rd(sandbox, "redis_primary").delete(*[f"load:{i}" for i in range(written["keys"])])


def test_restoring_the_wrong_backup_fails_verification(sandbox: Drtool):
    env = copy_inventory(sandbox, "sandbox-wrong-backup", {})
    code, first = sandbox.json("backup", "--env", env)
    assert code == 0
    code, second = sandbox.json("backup", "--env", env)
    assert code == 0
    restored = sandbox("restore", "--env", env, "--backup", first["backup"]["id"])
    assert restored.returncode == 0, restored.stderr

    right = sandbox("verify", "--env", env, "--backup", first["backup"]["id"])
    wrong = sandbox("verify", "--env", env, "--backup", second["backup"]["id"])

    assert right.returncode == 0, right.stdout + right.stderr
    assert wrong.returncode == 1, wrong.stdout
    code, journal = sandbox.json("history", "--env", env)
    failed = json.loads((Path(journal[-1]["journal"])).read_text())["checks"]
    names = {c["name"] for c in failed if c["status"] == "failed"}
    assert {"postgres.sentinel", "redis.sentinel"} <= names


def test_the_manifest_checksums_are_the_files_checksums(backup_under_writes):
    import hashlib

    backup, _written = backup_under_writes
    folder = Path(backup["backup"]["location"])
    manifest = json.loads((folder / "manifest.json").read_text())
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    assert on_disk == {entry["path"] for entry in manifest["files"]}
    for entry in manifest["files"]:
        data = (folder / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]


def test_postgres_adapter_reports_unreachable_servers(sandbox: Drtool):
    with pytest.raises(postgres.Error):
        postgres.connect("127.0.0.1", sandbox.port("pg_primary"), "postgres", "wrong-password",
                         "appdb")
