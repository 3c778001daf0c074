import datetime as dt

from drtool.core import timing

T0 = dt.datetime(2026, 11, 22, 5, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_rto_runs_from_declaration_to_verification():
    assert timing.rto_seconds(at(10), at(73.25)) == 63.25


def test_rto_is_unknown_when_the_restore_was_never_verified():
    assert timing.rto_seconds(at(10), None) is None
    assert timing.rto_seconds(None, at(10)) is None


def test_rpo_backup_age_is_disaster_minus_consistency_time():
    assert timing.rpo_backup_age(at(100), at(40.5)) == 59.5


def test_rpo_measured_takes_the_store_that_lost_most():
    beats = {"postgres:a": at(90), "redis:b": at(95)}
    assert timing.rpo_measured(at(100), beats) == 10.0


def test_rpo_measured_ignores_stores_without_a_heartbeat_and_is_none_without_any():
    assert timing.rpo_measured(at(100), {"postgres:a": None, "redis:b": at(97)}) == 3.0
    assert timing.rpo_measured(at(100), {"postgres:a": None}) is None
    assert timing.rpo_measured(None, {"postgres:a": at(1)}) is None


def test_timestamps_in_other_zones_are_compared_as_instants():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert timing.rto_seconds(at(0), at(30).astimezone(plus_two)) == 30.0
