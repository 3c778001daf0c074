"""`drtool drill`, `restore` and `verify` as a user runs them, on a real sandbox."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.conftest import Drtool, copy_inventory, pg, rd

pytestmark = pytest.mark.e2e

DRILL_PHASES = ["preflight", "snapshot", "backup", "disaster", "restore", "restart", "verify",
                "cleanup"]


def when(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def test_a_sandbox_drill_passes_with_every_journal_field(sandbox: Drtool, passed_drill):
    j = passed_drill
    assert j["schema_version"] == 10 and j["env"] == "sandbox" and j["status"] == "passed"
    assert j["operation"] == "drill" and j["failure"] is None
    assert when(j["started_at"]) < when(j["ended_at"])
    assert [p["name"] for p in j["phases"]] == DRILL_PHASES
    # The safety snapshot is done before the backup begins: nothing but the backup's own
    # time lies between the data it holds and the disaster.
    at = {p["name"]: p for p in j["phases"]}
    assert when(at["snapshot"]["ended_at"]) <= when(at["backup"]["started_at"])
    assert when(at["backup"]["ended_at"]) <= when(at["disaster"]["started_at"])
    for phase in j["phases"]:
        assert phase["status"] == "passed", phase
        assert when(phase["started_at"]) <= when(phase["ended_at"])
        assert phase["duration_s"] > 0 and phase["tasks"], phase["name"]
        for task in phase["tasks"]:
            assert task["host"] and task["name"] and task["status"] in ("ok", "changed", "skipped")
            assert task["duration_s"] is not None and task["duration_s"] >= 0
    hosts = {t["host"] for p in j["phases"] for t in p["tasks"]}
    assert hosts == {"sandbox-pg-primary", "sandbox-pg-target", "sandbox-redis-primary",
                     "sandbox-redis-target", "sandbox-queue-target", "sandbox-files-primary",
                     "sandbox-app", "sandbox-worker"}
    assert j["objectives"] == {"rto_s": 300, "rpo_s": 120}
    assert 0 < j["rto_s"] < 300
    assert 0 < j["rpo_backup_age_s"] < j["rto_s"] + 120
    assert set(j["tool_versions"]) >= {"drtool", "python", "ansible-core", "ansible-runner",
                                       "postgresql_server", "pg_dump", "redis_server"}
    assert Path(j["backup"]["manifest"]).is_file() and j["backup"]["id"].startswith("bk-")
    assert j["backup"]["chosen"] == "fresh"  # made by the drill, not taken from the store
    assert {c["status"] for c in j["checks"]} == {"passed"}
    names = {c["name"] for c in j["checks"]}
    assert names >= {"postgres.row_count", "postgres.sequence", "postgres.sentinel",
                     "postgres.write", "redis.ping", "redis.key_count", "redis.sentinel",
                     "files.tree", "service.health", "service.health_field", "objective.rto",
                     "objective.rpo"}
    for check in j["checks"]:
        assert set(check) >= {"name", "target", "expected", "actual", "status"}
    # The journal on disk is what --json printed.
    on_disk = sandbox.home / "evidence" / "sandbox" / j["drill_id"] / "journal.json"
    assert json.loads(on_disk.read_text()) == j
    # The restore ran once per data component, side by side, each with its own artifacts.
    restore = next(p for p in j["phases"] if p["name"] == "restore")
    assert sorted((c["component"], c["kind"], c["host"], c["status"])
                  for c in restore["components"]) == [
        ("cache", "redis", "sandbox-redis-target", "passed"),
        ("main", "postgres", "sandbox-pg-target", "passed"),
        ("queue", "redis", "sandbox-queue-target", "passed"),
        ("uploads", "files", "sandbox-app", "passed")]
    for component in ("main", "cache", "queue", "uploads"):
        assert (on_disk.parent / "artifacts" / "restore" / component / "job_events").is_dir()


def test_every_partition_and_table_is_counted_exactly(passed_drill, sandbox: Drtool):
    manifest = json.loads(Path(passed_drill["backup"]["manifest"]).read_text())
    counts = part(manifest, "postgres", "main", "appdb")["counts"]
    assert {"public.events", "public.events_2026_h1", "public.events_2026_h2",
            "public.events_other", "public.customers", "public.orders", "public.order_items",
            "public.products", "public.app_heartbeat", "drtool.sentinel"} <= set(counts)
    assert counts["public.events"] == sum(counts[f"public.events_{p}"]
                                          for p in ("2026_h1", "2026_h2", "other"))
    assert sum(counts.values()) - counts["public.events"] >= 200_000
    assert part(manifest, "redis", "cache")["counts"]["db0"] >= 20_000
    for entry in manifest["files"]:
        assert len(entry["sha256"]) == 64 and entry["size"] > 0


def test_rpo_measured_comes_from_a_heartbeat_in_the_restored_data(passed_drill, sandbox: Drtool):
    j = passed_drill
    beats = j["rpo_measured_from"]
    # Keyed by each part restored: every database of main, every Redis instance. The cluster's
    # heartbeat is read in its first database (appdb), the queue's is the worker's key.
    assert set(beats) == {"postgres:main/appdb", "postgres:main/shop", "redis:cache",
                          "redis:queue"}
    assert beats["postgres:main/shop"] is None
    found = [b for b in beats.values() if b is not None]
    assert len(found) == 3
    declared = when(j["disaster_declared_at"])
    oldest = min(when(b) for b in found)
    assert j["rpo_measured_s"] == pytest.approx((declared - oldest).total_seconds(), abs=0.002)
    assert j["rpo_measured_s"] >= j["rpo_backup_age_s"] - 1.5  # a heartbeat is ~1 s apart
    # Per store: its data loss, and which backup part it came from and how old that was.
    by_store = {entry["store"]: entry for entry in j["rpo_by_store"]}
    assert set(by_store) == set(beats) | {"files:uploads"}
    for store, entry in by_store.items():
        assert entry["backup_id"] == j["backup"]["id"]
        assert 0 < entry["backup_age_s"] <= j["rpo_backup_age_s"] + 0.5, entry
        beat = beats.get(store)
        assert entry["newest_heartbeat_at"] == beat
        assert entry["data_loss_s"] == (None if beat is None else pytest.approx(
            (declared - when(beat)).total_seconds(), abs=0.002))
    assert max(e["data_loss_s"] or 0 for e in by_store.values()) == pytest.approx(
        j["rpo_measured_s"], abs=0.002)
    # That heartbeat is a real row the application wrote on the primary.
    with pg(sandbox, "pg_primary") as conn:
        row = conn.execute("SELECT count(*) FROM app_heartbeat WHERE beat_at = %s",
                           (when(beats["postgres:main/appdb"]),)).fetchone()
    assert row[0] == 1


def test_history_and_backups_list_show_the_drill(passed_drill, sandbox: Drtool):
    history = sandbox("history", "--env", "sandbox")
    assert history.returncode == 0 and passed_drill["drill_id"] in history.stdout
    code, rows = sandbox.json("history", "--env", "sandbox")
    assert code == 0 and passed_drill["drill_id"] in {r["drill_id"] for r in rows}
    code, backups = sandbox.json("backups", "list", "--env", "sandbox")
    assert code == 0
    assert passed_drill["backup"]["id"] in {b["id"] for b in backups if b["complete"]}
    # The passed drill marked its backup as verified (what retention always keeps).
    [mine] = [b for b in backups if b["id"] == passed_drill["backup"]["id"]]
    assert mine["verified"] is True and mine["verified_by"] == passed_drill["drill_id"]


def test_the_human_summary_names_phases_objectives_and_verdict(sandbox: Drtool, passed_drill):
    done = sandbox("verify", "--env", "sandbox", "--backup", passed_drill["backup"]["id"])
    # The target now also holds the app's writes made after the drill's restart: rows in the
    # growing heartbeat table are allowed, so verify still passes against the same backup.
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verdict   PASSED" in done.stdout and "journal.json" in done.stdout
    customers = passed_drill_count(passed_drill, "public.customers")
    assert (f"PASSED {'postgres.row_count':<26} sandbox-pg-target/main/appdb:public.customers: "
            f"expected {customers}, actual {customers}") in done.stdout


def passed_drill_count(journal, table: str) -> int:
    manifest = json.loads(Path(journal["backup"]["manifest"]).read_text())
    return part(manifest, "postgres", "main", "appdb")["counts"][table]


def part(manifest: dict, kind: str, component: str, database: str | None = None) -> dict:
    """The manifest's one part of `kind` for `component` (and `database`): the sandbox's
    cluster `main` (database appdb) or its Redis `cache`."""
    [found] = [p for p in manifest[kind] if p["component"] == component
               and (database is None or p["database"] == database)]
    return found


def test_every_drill_is_in_the_chained_history_and_the_chain_holds(sandbox: Drtool,
                                                                    passed_drill):
    code, rows = sandbox.json("history", "--env", "sandbox")
    assert code == 0
    evidence = sandbox.home / "evidence" / "sandbox"
    journals = {p.parent.name for p in evidence.glob("*/journal.json")}
    assert {row["drill_id"] for row in rows} == journals
    assert [row["seq"] for row in rows] == sorted(row["seq"] for row in rows)
    done = sandbox("evidence", "verify", "--env", "sandbox")
    assert done.returncode == 0, done.stdout
    assert done.stdout == f"sandbox: {len(rows)} record{'s' * (len(rows) != 1)}, chain intact\n"


def test_a_corrupted_backup_is_refused_and_the_target_left_untouched(sandbox: Drtool, copies):
    folder = copies("corrupted")  # the passed drill's backup, as a backup of its own
    backup_id = folder.name
    # The dump of the cluster main's database appdb, in its own folder of the backup.
    victim = max((folder / "postgres" / "main" / "appdb").glob("*.dat.gz"),
                 key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    before = target_state(sandbox)

    done = sandbox("restore", "--env", "sandbox", "--backup", backup_id)

    assert done.returncode == 1, done.stdout + done.stderr
    relative = f"postgres/main/appdb/{victim.name}"
    assert f"{relative}: sha256 mismatch" in done.stderr
    assert "Traceback" not in done.stderr
    assert target_state(sandbox) == before
    journal = json.loads(latest_journal(sandbox).read_text())
    assert journal["status"] == "failed" and journal["failure"]["phase"] == "restore"
    assert journal["failure"]["kind"] == "check"
    assert [c["target"].split(":", 1)[1] for c in journal["checks"]
            if c["name"] == "backup.integrity"] == [relative]


def test_a_missing_row_fails_verify_naming_the_table_and_both_counts(sandbox: Drtool):
    env = copy_inventory(sandbox, "sandbox-missing-row", {}, keep={"main"})  # a table's count
    code, backup = sandbox.json("backup", "--env", env)
    assert code == 0
    backup_id = backup["backup"]["id"]
    restored = sandbox("restore", "--env", env, "--backup", backup_id)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    expected = part(json.loads(Path(backup["backup"]["manifest"]).read_text()), "postgres",
                    "main", "appdb")["counts"]
    assert sandbox("verify", "--env", env, "--backup", backup_id).returncode == 0
    with pg(sandbox, "pg_target") as conn:
        conn.execute("DELETE FROM order_items WHERE order_id = 1 AND line = 1")

    done = sandbox("verify", "--env", env, "--backup", backup_id)

    assert done.returncode == 1, done.stdout + done.stderr
    want = expected["public.order_items"]
    assert (f"postgres.row_count sandbox-pg-target/main/appdb:public.order_items: "
            f"expected {want}, actual {want - 1}") in done.stderr


def test_unknown_backup_and_environment_are_usage_errors(sandbox: Drtool):
    for args in (("verify", "--env", "sandbox", "--backup", "bk-nope"),
                 ("restore", "--env", "sandbox", "--backup", "../../etc"),
                 ("drill", "--env", "no-such-env")):
        done = sandbox(*args)
        assert done.returncode == 2, args
        assert done.stderr.startswith("drtool: error: ") and done.stderr.count("\n") == 1
        assert "Traceback" not in done.stderr


def test_a_drill_without_a_running_sandbox_says_how_to_start_it(sandbox: Drtool, tmp_path):
    elsewhere = Drtool(tmp_path, dict(sandbox.env, DRTOOL_HOME=str(tmp_path)))
    done = elsewhere("drill", "--env", "sandbox")
    assert done.returncode == 3
    assert done.stderr == ("drtool: error: the sandbox is not set up: "
                           "start it with `drtool sandbox up`\n")
    assert not (tmp_path / "evidence").exists()  # refused before any phase ran
    listed = elsewhere("backups", "list", "--env", "sandbox")  # the catalog needs no services
    assert listed.returncode == 0 and "no backups" in listed.stdout


def test_secrets_never_reach_journals_artifacts_backups_or_logs(sandbox: Drtool, passed_drill):
    secrets = [sandbox.secret("postgres_password"), sandbox.secret("redis_password")]
    searched = 0
    for top in ("evidence", "backups", "snapshots", "run", "sandbox/logs"):
        for path in (sandbox.home / top).rglob("*"):
            if path.is_file():
                searched += 1
                data = path.read_bytes()
                for secret in secrets:
                    assert secret.encode() not in data, f"{secret[:3]}... found in {path}"
    assert searched > 50  # the search really covered the drills' artifacts


def target_state(drtool: Drtool) -> dict[str, object]:
    """What the restore targets hold, exactly enough to see any change."""
    with pg(drtool, "pg_target", "postgres") as admin:
        # The database's OID changes if it is dropped and recreated, even with equal data.
        row = admin.execute("SELECT oid FROM pg_database WHERE datname = 'appdb'").fetchone()
    exists = row is not None
    state: dict[str, object] = {"database_oid": row[0] if row else None}
    if exists:
        with pg(drtool, "pg_target") as conn:
            state["sentinels"] = conn.execute("SELECT backup_id, value FROM drtool.sentinel "
                                              "ORDER BY 1").fetchall()
            state["rows"] = conn.execute("SELECT (SELECT count(*) FROM order_items), "
                                         "(SELECT count(*) FROM app_heartbeat)").fetchone()
    with pg(drtool, "pg_target", "postgres") as admin:  # the cluster's other database
        row = admin.execute("SELECT oid FROM pg_database WHERE datname = 'shop'").fetchone()
    state["shop_oid"] = row[0] if row else None
    client = rd(drtool, "redis_target")
    state["redis_run_id"] = client.info("server")["run_id"]  # changes when Redis restarts
    state["redis_keys"] = client.dbsize()
    state["redis_sentinels"] = sorted(client.scan_iter("drtool:sentinel:*"))
    from drtool.adapters import redis_client  # the queue's target: the other Redis restored

    queue = redis_client.connect("127.0.0.1", drtool.layout.port("queue_target"),
                                 drtool.secret("redis_password"))
    state["queue_run_id"] = queue.info("server")["run_id"]
    state["queue_keys"] = queue.dbsize()
    return state


def latest_journal(drtool: Drtool) -> Path:
    return max((drtool.home / "evidence" / "sandbox").glob("*/journal.json"),
               key=lambda p: p.parent.name)
