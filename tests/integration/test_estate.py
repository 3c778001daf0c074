"""The sandbox as an estate: one cluster with two databases (one owned by an application
role the target lacks), two Redis instances, a file tree and two services, restored side by
side; and a restore that fails in one component, named with the tool's own error, rolls
back every component while the sources stay as they were."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from tests.conftest import Drtool, copy_inventory_with_components, rd


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["started_at"] < b["ended_at"] and b["started_at"] < a["ended_at"]


def test_the_whole_estate_is_drilled_and_restored_side_by_side(
        passed_drill: dict[str, Any], passed_drill_target: dict[str, Any]):
    journal = passed_drill
    scope = {c["name"]: c for c in journal["scope"]["components"]}
    assert {(n, c["kind"]) for n, c in scope.items()} == {
        ("main", "postgres"), ("cache", "redis"), ("queue", "redis"), ("uploads", "files"),
        ("api", "service"), ("worker", "service")}
    assert scope["main"]["databases"] == ["appdb", "shop"]
    restore = next(p for p in journal["phases"] if p["name"] == "restore")
    runs = {r["component"]: r for r in restore["components"]}
    assert set(runs) == {"main", "cache", "queue", "uploads"}
    assert all(r["status"] == "passed" for r in runs.values())
    # Each restore ran while the others did: the RTO is the slowest one's, not their sum.
    assert all(overlap(runs["main"], runs[other]) for other in ("cache", "queue", "uploads"))
    assert restore["duration_s"] < sum(r["duration_s"] for r in runs.values())
    checks = {(c["name"], c["target"]) for c in journal["checks"] if c["status"] == "passed"}
    for name, target in [("postgres.sentinel", "sandbox-pg-target/main/shop:drtool.sentinel"),
                         ("postgres.roles", "sandbox-pg-target/main/shop"),
                         ("redis.key_count", "sandbox-queue-target/queue:db0"),
                         ("files.tree", "sandbox-app/uploads"),
                         ("service.health_field", None)]:
        assert any(n == name and (target is None or t.startswith(target)) for n, t in checks), (
            name, target)
    # The role-owned database is back, owned by the role the restore created (as the drill
    # left it: later tests restore the same target their own ways).
    assert passed_drill_target == {"shop_owner": "shop_owner", "price_changes": 500}


def failing_pg_restore(folder: Path, database: str) -> Path:
    """A bin dir whose pg_restore fails, with an error of its own, when it restores the
    backup (not a safety snapshot) into `database`; every other tool is the real one."""
    real = Path("/usr/lib/postgresql/15/bin")
    folder.mkdir(parents=True, exist_ok=True)
    for tool in ("pg_dump", "pg_dumpall"):
        (folder / tool).symlink_to(real / tool)
    script = folder / "pg_restore"
    script.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" --dbname={database} "*/backups/*)\n'
        '  echo "pg_restore: error: could not execute query: ERROR:  out of shared memory" >&2\n'
        "  exit 1;;\n"
        "esac\n"
        f'exec {real}/pg_restore "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def test_a_failed_database_restore_names_it_and_rolls_every_component_back(
        sandbox: Drtool, tmp_path: Path):
    bin_dir = failing_pg_restore(tmp_path / "bin", "shop")
    env = copy_inventory_with_components(sandbox, "sandbox-shop-fails", estate=True, changes={
        "drtool_postgres_clusters[0].target.bin_dir": str(bin_dir)})
    with rd(sandbox, "redis_primary") as primary:
        source_keys = primary.dbsize()
    code, journal = sandbox.json("drill", "--env", env)
    assert code == 3, journal.get("failure")
    failure = journal["failure"]
    assert failure["phase"] == "restore"
    assert "sandbox-pg-target: main: task" in failure["reason"]
    assert "out of shared memory" in failure["reason"]  # pg_restore's own words
    runs = {r["component"]: r["status"] for r in
            next(p for p in journal["phases"] if p["name"] == "restore")["components"]}
    assert runs["main"] == "failed" and runs["cache"] == runs["queue"] == "passed"
    # Every component the drill had changed is back as its snapshot found it.
    assert journal["rollback"]["status"] == "passed", journal["rollback"]["error"]
    rolled = {c["target"].split(":")[0] for c in journal["checks"]
              if c["name"].startswith("rollback.") and c["status"] == "passed"}
    assert {"main/appdb", "main/shop", "cache", "queue"} <= rolled
    assert not [c for c in journal["checks"]
                if c["name"].startswith("rollback.") and c["status"] != "passed"]
    # The sources were only read.
    with rd(sandbox, "redis_primary") as primary:
        assert primary.dbsize() >= source_keys
