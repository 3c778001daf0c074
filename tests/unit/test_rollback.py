"""Rollbacks judged: which journals await one, and whether one restored the snapshot."""

from __future__ import annotations

from drtool.core.model import Journal, PhaseRecord
from drtool.core.rollback import (
    awaits_rollback,
    changed_targets,
    cleanup_started,
    holds_leases,
    rollback_checks,
)

PHASES = ("preflight", "snapshot", "backup", "disaster", "restore", "restart", "verify",
          "cleanup")


def journal(*statuses: str, status: str = "running", rollback: str | None = None) -> Journal:
    phases = [PhaseRecord(name, status=s) for name, s in
              zip(PHASES, [*statuses, *["pending"] * (len(PHASES) - len(statuses))], strict=True)]
    return Journal("d1", "sandbox", "drill", "2026-12-04T00:00:00+00:00", status=status,
                   phases=phases, rollback=PhaseRecord("rollback", status=rollback)
                   if rollback else None)


def test_a_drill_killed_after_its_disaster_began_awaits_a_rollback():
    killed = journal("passed", "passed", "passed", "running")
    assert changed_targets(killed) and awaits_rollback(killed)


def test_nothing_awaits_before_the_targets_changed_or_once_rolled_back_or_finished():
    assert not awaits_rollback(journal("passed", "running"))  # killed during the snapshot
    assert not awaits_rollback(journal("passed", "passed", "running"))  # during the backup
    assert not awaits_rollback(journal("passed", "passed", "passed", "running",
                                       rollback="passed"))
    assert not awaits_rollback(journal("passed", "passed", "passed", "failed", status="failed"))
    # A rollback that was itself killed half-way, or failed, is run again.
    assert awaits_rollback(journal("passed", "passed", "passed", "running", rollback="running"))
    assert awaits_rollback(journal("passed", "passed", "passed", "running", rollback="failed"))


def test_a_rollback_that_restored_every_count_passes():
    checks = rollback_checks(
        {"pg": {"snapshot": True, "expected_exists": True, "actual_exists": True,
                "expected": {"public.orders": 3}, "actual": {"public.orders": 3}}},
        {"rd": {"snapshot": True, "expected": {"db0": 5}, "actual": {"db0": 5}}},
        cleanup_started=False)
    assert [(c.name, c.target, c.passed) for c in checks] == [
        ("rollback.postgres.database", "pg", True),
        ("rollback.postgres.row_count", "pg:public.orders", True),
        ("rollback.redis.key_count", "rd:db0", True)]


def test_a_difference_is_named_table_by_table():
    checks = rollback_checks(
        {"pg": {"snapshot": True, "expected_exists": True, "actual_exists": True,
                "expected": {"public.orders": 3, "public.gone": 1},
                "actual": {"public.orders": 4}}},
        {"rd": {"snapshot": True, "expected": {"db0": 5}, "actual": {"db0": 5, "db1": 1}}},
        cleanup_started=False)
    failed = [c.describe() for c in checks if not c.passed]
    assert failed == [
        "rollback.postgres.row_count pg:public.gone: expected 1, actual None",
        "rollback.postgres.row_count pg:public.orders: expected 3, actual 4",
        "rollback.redis.key_count rd:db1: expected None, actual 1"]


def test_a_database_that_should_be_gone_and_empty_redis_are_judged_too():
    checks = rollback_checks(
        {"pg": {"snapshot": True, "expected_exists": False, "actual_exists": True,
                "expected": {}, "actual": {"public.orders": 1}}},
        {"rd": {"snapshot": True, "expected": {}, "actual": {}}}, cleanup_started=False)
    assert [(c.name, c.passed) for c in checks] == [
        ("rollback.postgres.database", False), ("rollback.postgres.row_count", False),
        ("rollback.redis.key_count", True)]


def test_a_missing_snapshot_is_right_only_after_cleanup_removed_it():
    for cleanup, ok in ((True, True), (False, False)):
        [check] = rollback_checks({"pg": {"snapshot": False}}, {}, cleanup_started=cleanup)
        assert check.name == "rollback.postgres.snapshot" and check.passed is ok


def test_a_component_an_earlier_attempt_proved_is_not_judged_again():
    [check] = rollback_checks({}, {"rd": {"snapshot": True, "already": True}},
                              cleanup_started=False)
    assert check.passed and "earlier attempt" in check.detail


def test_cleanup_counts_as_started_once_it_ran_at_all():
    assert not cleanup_started(journal("passed", "passed", "passed", "passed", "passed",
                                       "passed", "passed"))
    assert cleanup_started(journal(*["passed"] * 7, "failed", status="failed"))
    assert not cleanup_started(journal("passed", "passed", "passed", "failed", "skipped",
                                       "skipped", "skipped", "skipped", status="failed"))


def test_a_drill_killed_in_its_snapshot_holds_leases_and_has_nothing_to_roll_back():
    killed = journal("passed", "running")
    assert holds_leases(killed) and not awaits_rollback(killed)
    assert holds_leases(journal("passed", "aborted"))
    # Killed in the backup that follows the snapshot: the same.
    in_backup = journal("passed", "passed", "running")
    assert holds_leases(in_backup) and not awaits_rollback(in_backup)
    assert not holds_leases(journal("running"))  # killed before it leased
    assert not holds_leases(journal("passed", "passed", "aborted", status="aborted"))  # ended
    changed = journal("passed", "passed", "passed", "running")
    assert not holds_leases(changed) and awaits_rollback(changed)  # its rollback releases
