import datetime as dt
from collections.abc import Iterator

import pytest

from drtool.core import timing
from drtool.core.clock import Moment, clock_jump, elapsed, jump_warning, moment

T0 = dt.datetime(2026, 11, 22, 5, 0, 0, tzinfo=dt.UTC)
HOUR = 3600.0


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def steady(seconds: float) -> Moment:
    """A moment on clocks that agree: the monotonic clock counts from T0."""
    return Moment(at(seconds), seconds)


class Clocks:
    """A wall clock and a monotonic clock a test advances and steps, as `date -s` or an NTP
    step would: the wall clock moves by `step`, the monotonic one does not."""

    def __init__(self) -> None:
        self.mono, self.offset = 1000.0, 0.0

    def wall(self) -> dt.datetime:
        return at(self.mono - 1000.0 + self.offset)

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.mono += seconds

    def step(self, seconds: float) -> None:
        self.offset += seconds

    def now(self) -> Moment:
        return moment(self.wall, self.monotonic)


@pytest.fixture
def clocks() -> Iterator[Clocks]:
    yield Clocks()


def test_rto_runs_from_declaration_to_verification():
    assert timing.rto_seconds(steady(10), steady(73.25)) == 63.25


def test_rto_is_unknown_when_the_restore_was_never_verified():
    assert timing.rto_seconds(steady(10), None) is None
    assert timing.rto_seconds(None, steady(10)) is None


def test_a_wall_clock_set_back_mid_restore_does_not_shorten_the_rto(clocks: Clocks):
    declared = clocks.now()
    clocks.advance(40)
    clocks.step(-HOUR)  # the clock is set back an hour during the restore
    clocks.advance(23.25)
    verified = clocks.now()

    # On the wall clock this drill "recovered" in -3536.75 s, and passed a 300 s objective.
    assert timing.rto_seconds(declared, verified) == 63.25
    assert elapsed(declared, verified) == 63.25
    assert verified.wall < declared.wall  # the timestamps stay what the clock said


def test_a_wall_clock_set_forward_does_not_lengthen_the_rto(clocks: Clocks):
    declared = clocks.now()
    clocks.advance(10)
    clocks.step(HOUR)
    clocks.advance(5)
    assert timing.rto_seconds(declared, clocks.now()) == 15.0


def test_a_step_of_the_clock_is_warned_of_naming_the_phase(clocks: Clocks):
    started = clocks.now()
    clocks.advance(30)
    clocks.step(-HOUR)
    ended = clocks.now()

    assert clock_jump(started, ended) == -HOUR
    assert jump_warning(clock_jump(started, ended), "restore") == (
        "the system clock jumped by -3600.0 s during restore; durations use a monotonic clock")


def test_drift_within_a_second_is_no_jump(clocks: Clocks):
    started = clocks.now()
    clocks.advance(600)
    clocks.step(0.9)  # NTP slewing, or a small correction
    assert jump_warning(clock_jump(started, clocks.now()), "backup") is None
    assert jump_warning(1.04, "backup") is None
    assert jump_warning(-1.2, "backup") is not None


def test_rpo_backup_age_is_disaster_minus_consistency_time():
    assert timing.rpo_backup_age(steady(100), at(40.5)) == 59.5
    assert timing.rpo_backup_age(None, at(40.5)) is None
    assert timing.rpo_backup_age(steady(100), None) is None


def test_rpo_backup_age_measures_the_drill_s_own_part_on_the_monotonic_clock(clocks: Clocks):
    consistent_at = clocks.wall()  # the database server's clock, when pg_dump's snapshot began
    clocks.advance(4)
    recorded = clocks.now()  # the backup phase ended: drtool knows consistent_at
    clocks.advance(20)
    clocks.step(-HOUR)  # set back between the backup and the disaster
    clocks.advance(6)
    declared = clocks.now()

    assert timing.rpo_backup_age(declared, consistent_at, recorded) == 30.0
    # Compared on the wall clock alone, the backup would be younger than the disaster.
    assert timing.rpo_backup_age(declared, consistent_at) == 30.0 - HOUR


def test_rpo_measured_takes_the_store_that_lost_most():
    beats = {"postgres:a": at(90), "redis:b": at(95)}
    assert timing.rpo_measured(at(100), beats) == 10.0


def test_rpo_measured_ignores_stores_without_a_heartbeat_and_is_none_without_any():
    assert timing.rpo_measured(at(100), {"postgres:a": None, "redis:b": at(97)}) == 3.0
    assert timing.rpo_measured(at(100), {"postgres:a": None}) is None
    assert timing.rpo_measured(None, {"postgres:a": at(1)}) is None


def test_timestamps_in_other_zones_are_compared_as_instants():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert timing.rpo_measured(at(30).astimezone(plus_two), {"postgres:a": at(0)}) == 30.0
    assert timing.rpo_backup_age(steady(30), at(0).astimezone(plus_two)) == 30.0


# -- phase time limits ------------------------------------------------------------------------

PHASES = ("preflight", "snapshot", "backup", "disaster", "restore", "restart", "verify",
          "cleanup")


def test_a_phase_limit_defaults_to_three_times_the_rto_with_a_five_minute_floor():
    assert timing.default_phase_limit(900) == 2700
    assert timing.default_phase_limit(60) == 300
    assert timing.phase_limit("restore", {}, 900) == 2700


def test_one_number_limits_every_phase_and_a_mapping_the_phases_it_names():
    every, problems = timing.parse_phase_limits(600, PHASES)
    assert problems == [] and every == dict.fromkeys(PHASES, 600.0)
    assert timing.parse_phase_limits("45.5", PHASES)[0]["verify"] == 45.5
    some, problems = timing.parse_phase_limits({"restore": 20, "backup": "1200"}, PHASES)
    assert problems == [] and some == {"restore": 20.0, "backup": 1200.0}
    assert timing.phase_limit("restore", some, 900) == 20.0
    assert timing.phase_limit("verify", some, 900) == 2700  # left out: the default
    assert timing.parse_phase_limits(None, PHASES) == ({}, [])
    assert timing.parse_phase_limits("", PHASES) == ({}, [])


@pytest.mark.parametrize("value, key", [
    (0, "drtool_phase_timeout_s"), (-5, "drtool_phase_timeout_s"),
    (True, "drtool_phase_timeout_s"), ("soon", "drtool_phase_timeout_s"),
    ([30], "drtool_phase_timeout_s"), (float("inf"), "drtool_phase_timeout_s"),
    ({"restore": 0}, "drtool_phase_timeout_s.restore"),
    ({"restore": None}, "drtool_phase_timeout_s.restore"),
    ({"rollback": 60}, "drtool_phase_timeout_s.rollback"),
    ({"Restore": 60}, "drtool_phase_timeout_s.Restore"),
])
def test_a_bad_phase_limit_is_a_problem_naming_its_key(value, key):
    limits, problems = timing.parse_phase_limits(value, PHASES)
    assert [k for k, _message in problems] == [key]
    assert "restore" not in limits


def test_each_restored_store_says_its_data_loss_and_its_backup_parts_age():
    parts = {"postgres:main/appdb": ("main", at(-600).isoformat(), "postgres"),
             "redis:cache": ("cache", at(-300).isoformat(), "redis"),
             "files:uploads": ("uploads", at(-200).isoformat(), "files")}
    beats = {"postgres:main/appdb": at(-620).isoformat(), "redis:cache": None}
    found = {e["store"]: e for e in timing.rpo_by_store(at(0), beats, parts, "bk-1")}
    assert (found["postgres:main/appdb"]["data_loss_s"],
            found["postgres:main/appdb"]["backup_age_s"]) == (620.0, 600.0)
    assert (found["redis:cache"]["data_loss_s"], found["redis:cache"]["backup_age_s"]) == (
        None, 300.0)  # no heartbeat: the backup's age is the bound
    assert found["files:uploads"]["component"] == "uploads"
    assert {e["backup_id"] for e in found.values()} == {"bk-1"}
    assert timing.rpo_by_store(None, beats, parts, "bk-1")[0]["backup_age_s"] is None
