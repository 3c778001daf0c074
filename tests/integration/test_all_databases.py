"""A cluster declared with `databases: all`: the preflight finds its databases, the snapshot
and the backup take them, the manifest records them, and every later phase (a rollback
included) works on exactly those: one made after the preflight is left alone."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PORT_BASE, Drtool, copy_inventory_with_components, pg, wait_for_phase
from tests.integration.test_estate import failing_pg_restore

pytestmark = pytest.mark.integration

EXTRA, LATER = "reports", "made_later"


def drop(sandbox: Drtool, service: str, *names: str) -> None:
    with pg(sandbox, service, "postgres") as conn:
        conn.autocommit = True
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def databases(sandbox: Drtool, service: str) -> set[str]:
    with pg(sandbox, service, "postgres") as conn:
        return {row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE NOT datistemplate")}


@pytest.fixture(scope="module")
def reports(sandbox: Drtool) -> Iterator[str]:
    """A third database on the sandbox's primary, which its inventory does not name."""
    drop(sandbox, "pg_primary", EXTRA, LATER)
    with pg(sandbox, "pg_primary", "postgres") as conn:
        conn.autocommit = True
        conn.execute(f"CREATE DATABASE {EXTRA}")
    with pg(sandbox, "pg_primary", EXTRA) as conn:
        conn.execute("CREATE TABLE public.monthly AS SELECT g AS id FROM generate_series(1, 700) g")
        conn.commit()
    yield EXTRA
    for service in ("pg_primary", "pg_target"):
        drop(sandbox, service, EXTRA, LATER)


def test_every_database_the_backup_found_is_restored_and_one_made_later_is_not(
        sandbox: Drtool, reports: str):
    env = copy_inventory_with_components(sandbox, "sandbox-all-databases", {
        "drtool_postgres_clusters[0].databases": "all"}, keep={"main"})
    code, plan = sandbox.json("drill", "--env", env, "--plan")
    assert code == 0
    drops = next(s["action"] for p in plan["plan"] if p["phase"] == "disaster"
                 for s in p["steps"] if s["component"] == "main")
    assert drops == "DESTROYS: drops the databases the preflight finds"
    drill = sandbox.popen("drill", "--env", env, "--json")
    wait_for_phase(sandbox.home / "evidence" / env, "snapshot", proc=drill)
    with pg(sandbox, "pg_primary", "postgres") as conn:  # after the preflight listed them
        conn.autocommit = True
        conn.execute(f"CREATE DATABASE {LATER}")
    out, err = drill.communicate(timeout=600)

    journal = json.loads(out)
    assert drill.returncode == 0, (journal.get("failure"), err[-2000:])
    main = next(c for c in journal["scope"]["components"] if c["name"] == "main")
    assert main["databases"] == ["appdb", "reports", "shop"]
    count = next(c for c in journal["checks"] if c["name"] == "postgres.row_count"
                 and c["target"] == "sandbox-pg-target/main/reports:public.monthly")
    assert (count["expected"], count["actual"], count["status"]) == (700, 700, "passed")
    assert {"appdb", "reports", "shop"} <= databases(sandbox, "pg_target")
    assert LATER not in databases(sandbox, "pg_target")
    manifest = json.loads(Path(journal["backup"]["manifest"]).read_text())
    assert sorted(p["database"] for p in manifest["postgres"]) == ["appdb", "reports", "shop"]


def test_a_drill_of_a_stored_backup_restores_the_databases_that_backup_found(
        sandbox: Drtool, reports: str):
    """Not those the source has now: one dropped since is restored, one made since is not."""
    env = copy_inventory_with_components(sandbox, "sandbox-all-stored", {
        "drtool_postgres_clusters[0].databases": "all"}, keep={"main"})
    drop(sandbox, "pg_primary", LATER)  # (made by a drill above)
    code, made = sandbox.json("backup", "--env", env)
    assert code == 0, made.get("failure")
    try:
        drop(sandbox, "pg_primary", EXTRA, LATER)
        drop(sandbox, "pg_target", EXTRA, LATER)
        with pg(sandbox, "pg_primary", "postgres") as conn:
            conn.autocommit = True
            conn.execute(f"CREATE DATABASE {LATER}")
        code, journal = sandbox.json("drill", "--env", env, "--backup", "latest")
    finally:  # the database this module made is back on the primary for the tests after
        drop(sandbox, "pg_primary", EXTRA, LATER)
        with pg(sandbox, "pg_primary", "postgres") as conn:
            conn.autocommit = True
            conn.execute(f"CREATE DATABASE {EXTRA}")
        with pg(sandbox, "pg_primary", EXTRA) as conn:
            conn.execute("CREATE TABLE public.monthly AS SELECT g AS id FROM "
                         "generate_series(1, 700) g")
            conn.commit()

    assert code == 0, journal.get("failure")
    assert journal["backup"]["id"] == made["backup"]["id"]
    main = next(c for c in journal["scope"]["components"] if c["name"] == "main")
    assert (main["databases"], main["all_databases"]) == (["appdb", "reports", "shop"], True)
    assert EXTRA in databases(sandbox, "pg_target") and LATER not in databases(
        sandbox, "pg_target")


def test_a_failed_restore_rolls_back_every_database_the_backup_found(
        sandbox: Drtool, reports: str, tmp_path: Path):
    """A row only the target's `reports` has shows the rollback put back the target's own
    copy of it, not the backup's."""
    bin_dir = failing_pg_restore(tmp_path / "bin", EXTRA)
    env = copy_inventory_with_components(sandbox, "sandbox-all-databases-fails", {
        "drtool_postgres_clusters[0].databases": "all",
        "drtool_postgres_clusters[0].target.bin_dir": str(bin_dir)}, keep={"main"})
    if EXTRA not in databases(sandbox, "pg_target"):  # (a drill above may have restored it)
        with pg(sandbox, "pg_target", "postgres") as conn:
            conn.autocommit = True
            conn.execute(f"CREATE DATABASE {EXTRA}")
    with pg(sandbox, "pg_target", EXTRA) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.target_only (note text)")
        conn.execute("INSERT INTO public.target_only VALUES ('the target had this')")
        conn.commit()

    code, journal = sandbox.json("drill", "--env", env)

    assert code == 3, journal.get("failure")
    assert journal["failure"]["phase"] == "restore"
    assert "out of shared memory" in journal["failure"]["reason"]
    assert journal["rollback"]["status"] == "passed", journal["rollback"]["error"]
    rolled = {c["target"].split(":")[0] for c in journal["checks"]
              if c["name"].startswith("rollback.") and c["status"] == "passed"}
    assert {"main/appdb", "main/reports", "main/shop"} <= rolled, rolled
    with pg(sandbox, "pg_target", EXTRA) as conn:
        assert conn.execute("SELECT note FROM public.target_only").fetchall() == [
            ("the target had this",)]


def test_a_cluster_with_nothing_to_back_up_fails_the_preflight_and_touches_no_target(
        sandbox: Drtool):
    from drtool.sandbox.layout import PG_BIN
    from drtool.sandbox.services import PostgresCluster

    layout = sandbox.layout
    cluster = PostgresCluster("empty", layout.postgres_root / "empty-cluster",
                              int(PORT_BASE) + 60, PG_BIN)
    cluster.initialise(sandbox.secret("postgres_password"))
    cluster.start()
    try:
        env = copy_inventory_with_components(sandbox, "sandbox-all-empty", {
            "drtool_postgres_clusters[0].databases": "all",
            "drtool_postgres_clusters[0].source.port": cluster.port,
            "drtool_postgres_clusters[0].source.data_dir": str(cluster.data)}, keep={"main"})
        before = databases(sandbox, "pg_target")

        code, journal = sandbox.json("drill", "--env", env)

        assert code == 3, journal.get("failure")
        assert journal["failure"]["phase"] == "preflight"
        assert journal["failure"]["reason"].endswith(
            f"main: PostgreSQL 127.0.0.1:{cluster.port} has no database but postgres and the "
            "templates: databases all finds nothing to back up"), journal["failure"]
        phases = {p["name"]: p["status"] for p in journal["phases"]}
        assert phases["snapshot"] == phases["disaster"] == phases["restore"] == "skipped", phases
        assert databases(sandbox, "pg_target") == before
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
