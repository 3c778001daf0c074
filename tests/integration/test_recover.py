"""`drtool recover` on the sandbox, as on the day of a real disaster: a production-tier copy
of it whose recovery targets are its primaries. Each refusal changes nothing (no
confirmation, live data on a target, a target that is another environment's source); then
the primaries are lost (their databases dropped, their Redis emptied) and recovered from a
backup, with the data, the checks, the journal, the history and the report proved."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Drtool, alive, copy_inventory_with_components, pg, rd, wait_for_phase
from tests.integration.test_interrupts import REAL_BIN, WRAPPER, wait_for_file, wrapped_bin_dir

pytestmark = pytest.mark.integration

ENV = "recover"
ELSEWHERE = "recover-elsewhere"


@pytest.fixture(scope="module")
def backup(sandbox: Drtool) -> dict[str, Any]:
    """The production-tier copy (a cluster of two databases, a Redis and the API, recovered
    onto the primaries they run on) and one backup of it; its journal."""
    copy_inventory_with_components(sandbox, ENV, {"drtool_tier": "production"})
    code, journal = sandbox.json("backup", "--env", ENV)
    assert code == 0, journal.get("failure")
    return journal


def journals(drtool: Drtool, env: str) -> set[str]:
    folder = drtool.home / "evidence" / env
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def orders(drtool: Drtool) -> int:
    with pg(drtool, "pg_primary") as conn:
        return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])


def test_the_plan_restores_onto_the_recovery_targets_from_the_backup(sandbox: Drtool, backup):
    code, plan = sandbox.json("recover", "--env", ENV, "--backup", "latest", "--plan")
    assert code == 0
    assert plan["operation"] == "recover" and plan["backup"] == backup["backup"]["id"]
    assert [p["phase"] for p in plan["plan"]] == [
        "preflight", "snapshot", "restore", "restart", "verify"]
    restore = next(p for p in plan["plan"] if p["phase"] == "restore")["steps"]
    assert [(s["host"], s["component"]) for s in restore] == [
        ("sandbox-app", "api"), ("sandbox-pg-primary", "main"),
        ("sandbox-redis-primary", "cache")]
    assert restore[0]["action"].startswith("stops the application")
    # No step of a drill target: a recovery touches only what `recovery` names.
    assert not any(s["host"].endswith("-target") for p in plan["plan"] for s in p["steps"])


def test_without_the_environments_name_confirmed_nothing_runs(sandbox: Drtool, backup):
    before, count = journals(sandbox, ENV), orders(sandbox)
    done = sandbox("recover", "--env", ENV, "--backup", "latest")  # stdin is no terminal
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"drtool: error: a recovery is confirmed by typing the environment's name on a "
        f"terminal, or with --confirm {ENV}: nothing was changed")
    wrong = sandbox("recover", "--env", ENV, "--backup", "latest", "--confirm", "sandbox")
    assert wrong.returncode == 2 and "--confirm names 'sandbox'" in wrong.stderr
    assert journals(sandbox, ENV) == before and orders(sandbox) >= count


def test_live_data_on_a_recovery_target_is_refused_saying_what_is_there(
        sandbox: Drtool, backup):
    count = orders(sandbox)
    code, journal = sandbox.json("recover", "--env", ENV, "--backup", "latest",
                                 "--confirm", ENV)
    assert code == 2, journal.get("failure")
    assert journal["operation"] == "recover" and journal["status"] == "failed"
    assert journal["failure"]["phase"] == "preflight" and journal["failure"]["kind"] == "guard"
    occupied = {c["target"]: c for c in journal["checks"] if c["name"] == "recover.target"}
    assert occupied["sandbox-pg-primary/main"]["status"] == "failed"
    assert "give --replace-existing to replace it: database appdb (" in (
        occupied["sandbox-pg-primary/main"]["detail"])
    assert "newest heartbeat 20" in occupied["sandbox-pg-primary/main"]["detail"]
    assert " keys in db0" in occupied["sandbox-redis-primary/cache"]["detail"]
    assert [p["status"] for p in journal["phases"][1:]] == ["skipped"] * 4
    assert orders(sandbox) == count


def test_a_recovery_target_that_is_another_environments_source_is_refused(
        sandbox: Drtool, backup):
    # An environment that backs up the drill target's cluster and would recover it onto the
    # primary: the primary is the recover environment's source, as its backup recorded.
    copy_inventory_with_components(sandbox, ELSEWHERE, {
        "drtool_tier": "production",
        "drtool_postgres_clusters[0].source.port": "{{ drtool_sandbox_port_base | int + 2 }}",
        "drtool_postgres_clusters[0].source.data_dir":
            "{{ drtool_sandbox_postgres_root }}/pg_target/data"}, keep={"main"})
    store = sandbox.home / "backups" / ELSEWHERE
    shutil.copytree(Path(backup["backup"]["location"]), store / backup["backup"]["id"])
    code, journal = sandbox.json("recover", "--env", ELSEWHERE, "--backup", "latest",
                                 "--confirm", ELSEWHERE)
    assert code == 2, journal.get("failure")
    assert journal["failure"]["kind"] == "guard"
    refused = next(c for c in journal["checks"] if c["name"] == "guard.identity")
    assert refused["status"] == "failed" and refused["target"] == "sandbox-pg-primary/main"
    assert (f"is backup source sandbox-pg-primary (main of environment {ENV}): same "
            "PostgreSQL system_identifier") in refused["detail"]
    assert [p["status"] for p in journal["phases"][1:]] == ["skipped"] * 4


def test_lost_primaries_are_recovered_with_their_data_their_checks_and_the_evidence(
        sandbox: Drtool, backup):
    manifest = json.loads((Path(backup["backup"]["location"]) / "manifest.json").read_text())
    counts = {p["database"]: p["counts"] for p in manifest["postgres"]}
    keys = next(r for r in manifest["redis"] if r["component"] == "cache")["counts"]
    # The disaster: the application goes down, the databases and the cache are lost.
    subprocess.run([sys.executable, "-m", "drtool.sandbox.app", "stop", "--config",
                    str(sandbox.home / "sandbox" / "app.json")], env=sandbox.env, check=True)
    with pg(sandbox, "pg_primary", "postgres") as conn:
        conn.autocommit = True
        for database in ("appdb", "shop"):
            conn.execute(f"DROP DATABASE {database} WITH (FORCE)")
    rd(sandbox, "redis_primary").flushall()

    code, journal = sandbox.json("recover", "--env", ENV, "--backup", "latest", "--confirm",
                                 ENV, "--operator", "ana (on call)", "--note", "INC-42")
    assert code == 0, journal.get("failure")
    assert (journal["operation"], journal["status"]) == ("recover", "passed")
    assert (journal["operator"], journal["note"]) == ("ana (on call)", "INC-42")
    assert [p["status"] for p in journal["phases"]] == ["passed"] * 5
    assert journal["disaster_declared_at"] == journal["started_at"] and journal["rto_s"] > 0
    assert journal["rollback"] is None and journal["schema_version"] == 10
    checks = {(c["name"], c["target"]): c for c in journal["checks"]}
    assert checks[("recover.target", "sandbox-pg-primary/main")]["actual"] == "empty"
    assert checks[("recover.target", "sandbox-redis-primary/cache")]["actual"] == "empty"
    assert all(c["status"] == "passed" for c in journal["checks"])
    team = {c["name"] for c in journal["checks"] if c["name"].startswith("team.")}
    assert {"team.orders-exist", "team.current-prices", "team.customer-profile",
            "team.api-reports-the-restored-orders"} <= team

    # The data came back on the primaries, the application runs on them again.
    assert orders(sandbox) == counts["appdb"]["public.orders"]
    with pg(sandbox, "pg_primary", "shop") as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                             "WHERE datname = 'shop'").fetchone()[0]
        changes = conn.execute("SELECT count(*) FROM shop.price_changes").fetchone()[0]
    assert owner == "shop_owner" and changes == counts["shop"]["shop.price_changes"]
    assert rd(sandbox, "redis_primary").dbsize() >= sum(keys.values())
    status = {row["service"]: row for row in json.loads(
        sandbox("sandbox", "status", "--json").stdout)}
    assert status["app"]["pid"], status["app"]

    # The evidence: chained into the history, an incident in the report, no secret in it.
    code, records = sandbox.json("history", "--env", ENV)
    assert any(r["drill_id"] == journal["drill_id"] and r["operation"] == "recover"
               for r in records)
    assert sandbox("evidence", "verify").returncode == 0
    out = sandbox.home / "recover-report"
    report = sandbox("report", "--env", ENV, "--format", "md", "--out", str(out))
    assert report.returncode == 0, report.stderr
    text = next(out.glob("*.md")).read_text()
    incidents = text.split("## Incidents: real recoveries", 1)[1].split("\n## ", 1)[0]
    assert journal["drill_id"] in incidents and "ana (on call)" in incidents
    assert "PASSED" in incidents and "INC-42" in incidents
    evidence = sandbox.home / "evidence" / ENV / journal["drill_id"]
    for secret in (sandbox.secret("postgres_password"), sandbox.secret("redis_password")):
        assert not [p for p in evidence.rglob("*") if p.is_file()
                    and secret.encode() in p.read_bytes()]


def test_a_recovery_over_live_data_is_undone_from_its_safety_snapshot(sandbox: Drtool, backup):
    # What the primaries hold now and the backup does not: a table and a key.
    with pg(sandbox, "pg_primary") as conn:
        conn.execute("CREATE TABLE undo_marker (n int)")
        conn.execute("INSERT INTO undo_marker SELECT generate_series(1, 3)")
        conn.commit()
    rd(sandbox, "redis_primary").set("undo:marker", "kept")
    try:
        code, recovered = sandbox.json("recover", "--env", ENV, "--backup", "latest",
                                       "--confirm", ENV, "--replace-existing")
        assert code == 0, recovered.get("failure")
        with pg(sandbox, "pg_primary") as conn:
            assert conn.execute("SELECT to_regclass('undo_marker')").fetchone()[0] is None
        assert rd(sandbox, "redis_primary").get("undo:marker") is None

        plan = sandbox("recover", "--env", ENV, "--undo", recovered["drill_id"], "--plan")
        assert plan.returncode == 0, plan.stderr
        assert plan.stdout.startswith(f"Plan to undo recovery {recovered['drill_id']} of {ENV}")
        assert "main (postgres) on sandbox-pg-primary" in plan.stdout
        unconfirmed = sandbox("recover", "--env", ENV, "--undo", recovered["drill_id"])
        assert unconfirmed.returncode == 2 and "nothing was changed" in unconfirmed.stderr
        mixed = sandbox("recover", "--env", ENV, "--undo", recovered["drill_id"], "--backup",
                        "latest", "--confirm", ENV)
        assert mixed.returncode == 2 and "it takes no --backup" in mixed.stderr

        code, undo = sandbox.json("recover", "--env", ENV, "--undo", recovered["drill_id"],
                                  "--confirm", ENV, "--note", "INC-43: wrong backup")
        assert code == 0, undo.get("failure")
        assert (undo["operation"], undo["status"], undo["undoes"]) == (
            "undo-recover", "passed", recovered["drill_id"])
        assert undo["rollback"]["status"] == "passed"
        assert [(p["name"], p["status"]) for p in undo["phases"]] == [("preflight", "passed")]
        same = {c["target"]: c for c in undo["checks"] if c["name"] == "guard.identity"}
        assert same["sandbox-pg-primary/main"]["actual"] == "the same", same
        rolled = [c for c in undo["checks"] if c["name"].startswith("rollback.")]
        assert rolled and all(c["status"] == "passed" for c in rolled)
        assert any(c["name"] == "rollback.postgres.row_count"
                   and c["target"].endswith("public.undo_marker") and c["actual"] == 3
                   for c in rolled), rolled
        # The primaries hold again what they held before the recovery.
        with pg(sandbox, "pg_primary") as conn:
            assert conn.execute("SELECT count(*) FROM undo_marker").fetchone()[0] == 3
        assert rd(sandbox, "redis_primary").get("undo:marker") == "kept"

        again = sandbox("recover", "--env", ENV, "--undo", recovered["drill_id"],
                        "--confirm", ENV)
        assert again.returncode == 2
        assert again.stderr.strip().splitlines()[-1] == (
            f"drtool: error: cannot undo {recovered['drill_id']} of {ENV}: recovery "
            f"{recovered['drill_id']} was undone already, by {undo['drill_id']}; nothing "
            "was changed")
        out = sandbox.home / "undo-report"
        assert sandbox("report", "--env", ENV, "--format", "md", "--out",
                       str(out)).returncode == 0
        incidents = next(out.glob("*.md")).read_text().split(
            "## Incidents: real recoveries", 1)[1].split("\n## ", 1)[0]
        assert f"`{undo['drill_id']}` undoes `{recovered['drill_id']}`" in incidents
    finally:
        with pg(sandbox, "pg_primary") as conn:
            conn.execute("DROP TABLE IF EXISTS undo_marker")
            conn.commit()
        rd(sandbox, "redis_primary").delete("undo:marker")


def test_a_killed_recovery_is_closed_not_rolled_back_and_can_then_be_undone(
        sandbox: Drtool, backup):
    with pg(sandbox, "pg_primary") as conn:
        conn.execute("CREATE TABLE undo_marker (n int)")
        conn.execute("INSERT INTO undo_marker SELECT generate_series(1, 3)")
        conn.commit()
    # The recovery's first pg_restore waits, long enough to be killed in it.
    bindir = wrapped_bin_dir(sandbox, "slow-bin-recover", "pg_restore",
                             WRAPPER.format(real=REAL_BIN))
    (bindir / "slow-calls").write_text("1 40\n")
    copy_inventory_with_components(sandbox, ENV, {
        "drtool_tier": "production",
        "drtool_postgres_clusters[0].recovery.bin_dir": str(bindir)})
    try:
        recovery = sandbox.popen("recover", "--env", ENV, "--backup", "latest", "--confirm",
                                 ENV, "--replace-existing")
        restore_pid = wait_for_file(bindir / "slow-1.pid")
        journal_path = wait_for_phase(sandbox.home / "evidence" / ENV, "restore",
                                      proc=recovery)
        recovery.kill()  # SIGKILL: no handler runs; its journal still says running
        recovery.wait(timeout=30)
        recovery_id = json.loads(journal_path.read_text())["drill_id"]
        assert json.loads(journal_path.read_text())["status"] == "running"

        # Its operator puts the targets back from the snapshot it kept. The undo first
        # closes the killed recovery: never rolled back, its leases given back, a warning.
        code, undo = sandbox.json("recover", "--env", ENV, "--undo", recovery_id,
                                  "--confirm", ENV)
        assert code == 0, undo.get("failure")
        assert undo["undoes"] == recovery_id and undo["rollback"]["status"] == "passed"
        assert any(w.startswith(f"recovery {recovery_id} was killed after it changed its "
                                "recovery targets: they hold what it restored so far")
                   for w in undo["warnings"]), undo["warnings"]
        assert not alive(restore_pid)
        killed = json.loads(journal_path.read_text())
        assert killed["status"] == "aborted" and killed["rollback"] is None
        assert "nothing was rolled back (its safety snapshot is kept)" in (
            killed["failure"]["reason"])
        with pg(sandbox, "pg_primary") as conn:
            assert conn.execute("SELECT count(*) FROM undo_marker").fetchone()[0] == 3
        status = {row["service"]: row for row in json.loads(
            sandbox("sandbox", "status", "--json").stdout)}
        assert status["app"]["pid"], status["app"]
    finally:
        copy_inventory_with_components(sandbox, ENV, {"drtool_tier": "production"})
        with pg(sandbox, "pg_primary") as conn:
            conn.execute("DROP TABLE IF EXISTS undo_marker")
            conn.commit()


def test_where_there_is_no_room_for_a_safety_snapshot_the_recovery_goes_on_and_says_so(
        sandbox: Drtool, backup):
    # The snapshots go to a small file system: room for the Redis RDB, not for the databases.
    cache = rd(sandbox, "redis_primary")
    cache.save()
    said = cache.config_get("dir") | cache.config_get("dbfilename")
    rdb = (Path(said["dir"]) / said["dbfilename"]).stat().st_size
    with pg(sandbox, "pg_primary", "postgres") as conn:
        databases = conn.execute("SELECT sum(pg_database_size(datname)) FROM pg_database "
                                 "WHERE datname IN ('appdb', 'shop')").fetchone()[0]
    size = rdb + 2**20
    assert databases > size
    tight = sandbox.home / "tight"
    tight.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(tight)],
                   check=True)
    try:
        # The same environment (another would be refused: the primaries are its sources).
        copy_inventory_with_components(sandbox, ENV, {
            "drtool_tier": "production",
            "drtool_snapshot_path": f"{tight}/{{{{ drtool_drill_id }}}}"})
        code, journal = sandbox.json("recover", "--env", ENV, "--backup", "latest",
                                     "--confirm", ENV, "--replace-existing")
        assert code == 0, journal.get("failure")
        assert [p["status"] for p in journal["phases"]] == ["passed"] * 5
        tight_warnings = [w for w in journal["warnings"] if w.startswith("no safety snapshot")]
        assert len(tight_warnings) == 1, journal["warnings"]
        assert tight_warnings[0].startswith(
            "no safety snapshot on sandbox-pg-primary: what its recovery targets hold (main) "
            "takes ")
        assert f"and {tight} has " in tight_warnings[0]
        # Only the Redis was snapshotted, and the snapshot is kept for an undo.
        kept = tight / journal["drill_id"]
        assert sorted(p.name for p in kept.iterdir()) == ["redis"]
        assert (kept / "redis" / "cache" / "state.json").is_file()
        # An undo puts back what it can, and fails on what had no snapshot, saying so.
        code, undo = sandbox.json("recover", "--env", ENV, "--undo", journal["drill_id"],
                                  "--confirm", ENV)
        assert code == 1, undo.get("failure")
        failed = [c for c in undo["checks"] if c["status"] == "failed"]
        assert [(c["name"], c["target"]) for c in failed] == [
            ("rollback.postgres.snapshot", "main/appdb"),
            ("rollback.postgres.snapshot", "main/shop")], failed
        assert all(c["detail"] == "the target was left as it is" for c in failed)
        assert any(c["name"] == "rollback.redis.key_count" and c["status"] == "passed"
                   for c in undo["checks"])
    finally:
        copy_inventory_with_components(sandbox, ENV, {"drtool_tier": "production"})
        subprocess.run(["umount", str(tight)], check=True)


def test_a_runbook_no_drill_proves_says_so_at_its_top_and_exits_1(sandbox: Drtool, backup):
    out = sandbox.home / "recover-runbook"
    done = sandbox("runbook", "--env", ENV, "--format", "md,json", "--out", str(out))
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (f"drtool: the runbook of {ENV} is not proven: no drill of "
                                   "this environment has passed: the procedure is unproven")
    text = (out / f"runbook-{ENV}.md").read_text()
    assert text.splitlines()[4].startswith("> **NOT PROVEN RECENTLY")
    data = json.loads((out / f"runbook-{ENV}.json").read_text())
    assert data["backup"]["id"] == backup["backup"]["id"] and data["backup"]["verified_by"] is None
    assert {t["host"] for t in data["targets"]} == {
        "sandbox-pg-primary", "sandbox-redis-primary", "sandbox-app"}
