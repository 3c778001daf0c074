"""The dump method's safety snapshot: a copy of each database in the target's own cluster
(CREATE DATABASE ... TEMPLATE) where the server makes one, else a pg_dump, and the rollback
from either."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Drtool, copy_inventory, copy_inventory_with_components, pg

pytestmark = pytest.mark.integration

COPY = "Copy the restore target within its cluster, with exact counts of the copy"
DUMP = "Dump the restore target as it is now, with exact counts from the same snapshot"
PUT_BACK = "Put the safety snapshot's copy back in the database's place"
RESTORE_DUMP = "Restore the dump"
INCLUDE_DUMP = "Restore the safety snapshot's dump"


def tasks(journal: dict[str, Any], phase: str, name: str) -> list[dict[str, Any]]:
    """The phase's runs of the task `name` (a task a role includes is named by its own name)."""
    record = journal["rollback"] if phase == "rollback" else next(
        p for p in journal["phases"] if p["name"] == phase)
    return [t for t in record["tasks"] if t["name"].endswith(name)]


def copies_on_target(sandbox: Drtool) -> list[str]:
    with pg(sandbox, "pg_target", "postgres") as conn:
        return [row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE '%\\_drtool\\_%' ORDER BY 1")]


@pytest.fixture
def marked_target(sandbox: Drtool, passed_drill) -> Iterator[int]:
    """A table only the restore target's appdb holds (no backup has it): a rollback must
    bring it back. Dropped afterwards wherever it is."""
    with pg(sandbox, "pg_target") as conn:
        conn.execute("DROP TABLE IF EXISTS before_the_drill")
        conn.execute("CREATE TABLE before_the_drill AS SELECT g AS n FROM generate_series(1, 7) g")
    yield 7
    with pg(sandbox, "pg_target") as conn:
        conn.execute("DROP TABLE IF EXISTS before_the_drill")


def test_a_database_in_use_is_dumped_and_the_others_copied_in_their_cluster(
        sandbox: Drtool, passed_drill):
    env = copy_inventory(sandbox, "sandbox-snapshot-in-use", {}, keep={"main"})
    # A session on the target's appdb (an application, a person's psql) through the snapshot:
    # the server will not copy a database another session uses.
    with pg(sandbox, "pg_target") as held:
        held.execute("SELECT 1")
        code, journal = sandbox.json("drill", "--env", env)

    assert code == 0, journal.get("failure")
    copied = {t["message"].split(":")[0]: t for t in tasks(journal, "snapshot", COPY)}
    assert set(copied) == {"appdb", "shop"}, copied
    assert copied["shop"]["status"] == "changed"
    assert copied["shop"]["message"].startswith("shop: copied within its cluster as shop_drtool_")
    assert copied["appdb"]["status"] == "ok"
    assert copied["appdb"]["message"].startswith(
        "appdb: no copy in its cluster (other sessions use the database, and a copy needs it "
        "to itself: source database \"appdb\" is being accessed by other users"), copied
    assert copied["appdb"]["message"].endswith("; dumped instead")
    dumped = tasks(journal, "snapshot", DUMP)
    assert [t["status"] for t in dumped] == ["changed", "skipped"], dumped  # appdb, shop
    # The cleanup dropped shop's copy.
    assert copies_on_target(sandbox) == []


def test_a_database_in_use_fails_a_snapshot_that_must_be_a_copy_before_anything_changes(
        sandbox: Drtool, passed_drill):
    env = copy_inventory_with_components(sandbox, "sandbox-snapshot-template", {
        "drtool_postgres_clusters[0].snapshot_method": "template"}, keep={"main"})
    with pg(sandbox, "pg_target", "postgres") as conn:
        before = dict(conn.execute("SELECT datname, oid FROM pg_database").fetchall())
    with pg(sandbox, "pg_target") as held:
        held.execute("SELECT 1")
        code, journal = sandbox.json("drill", "--env", env)

    assert code == 3, journal.get("failure")
    assert journal["failure"]["phase"] == "snapshot"
    assert 'source database "appdb" is being accessed by other users' in \
        journal["failure"]["reason"], journal["failure"]
    statuses = {p["name"]: p["status"] for p in journal["phases"]}
    assert statuses["disaster"] == statuses["restore"] == "skipped"
    with pg(sandbox, "pg_target", "postgres") as conn:
        after = dict(conn.execute("SELECT datname, oid FROM pg_database").fetchall())
    assert after == before  # the same databases, none recreated, no copy left


@pytest.mark.parametrize("method", ["template", "dump"])
def test_a_failed_drill_puts_each_database_back_from_its_snapshot(
        sandbox: Drtool, marked_target: int, method: str):
    # Verify fails (a team check no restore can meet), after the restore replaced appdb.
    env = copy_inventory_with_components(sandbox, f"sandbox-snapshot-rollback-{method}", {
        "drtool_postgres_clusters[0].snapshot_method": method,
        "drtool_checks[0].expect": {"at_least": 10 ** 9}}, keep={"main"})

    code, journal = sandbox.json("drill", "--env", env)

    assert code == 1, journal.get("failure")
    assert journal["failure"]["phase"] == "verify"
    assert journal["rollback"]["status"] == "passed", journal["rollback"]
    with pg(sandbox, "pg_target") as conn:
        assert conn.execute("SELECT count(*) FROM before_the_drill").fetchone()[0] == marked_target
    # The steps of the snapshot's method ran for appdb and shop, the other's were skipped
    # (the dump's restore is an include: skipped, it records no steps of its own).
    ran, skipped = ((PUT_BACK, INCLUDE_DUMP) if method == "template"
                    else (RESTORE_DUMP, PUT_BACK))
    assert [t["status"] for t in tasks(journal, "rollback", ran)] == ["changed", "changed"]
    assert [t["status"] for t in tasks(journal, "rollback", skipped)] == ["skipped", "skipped"]
    assert copies_on_target(sandbox) == []
