"""Time: two injectable clocks and the ISO-8601 helpers every record uses.

Timestamps (when a phase started, when the disaster was declared) are UTC wall time, which a
person and another machine can read. Durations (a phase's, the RTO) are measured on the
monotonic clock, which nothing steps: an NTP correction or an operator's `date -s` in the
middle of a drill must not shorten a restore, or make it negative.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], dt.datetime]
Monotonic = Callable[[], float]  # seconds from an arbitrary start that never goes back

# A difference between the wall and the monotonic clock over one interval larger than this
# is a step of the system clock (NTP slews by far less than a second a minute): warned of.
CLOCK_JUMP_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class Moment:
    """One instant read on both clocks: `wall` for the record, `mono` for durations."""

    wall: dt.datetime
    mono: float


def utc_now() -> dt.datetime:
    """The default clock: an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def moment(clock: Clock = utc_now, monotonic: Monotonic = time.monotonic) -> Moment:
    """Read both clocks now."""
    return Moment(clock(), monotonic())


def iso(moment: dt.datetime | None) -> str | None:
    """Render an aware datetime as ISO-8601 in UTC (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str | None) -> dt.datetime | None:
    """Parse ISO-8601; a naive value is taken as UTC. None or "" gives None."""
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


def seconds_between(start: dt.datetime, end: dt.datetime) -> float:
    """Seconds from `start` to `end` by their timestamps, rounded to milliseconds. A wall-clock
    comparison: use `elapsed` for anything measured by this process."""
    return round((end - start).total_seconds(), 3)


def elapsed(start: Moment, end: Moment) -> float:
    """Seconds from `start` to `end` on the monotonic clock, rounded to milliseconds."""
    return round(end.mono - start.mono, 3)


def clock_jump(start: Moment, end: Moment) -> float:
    """How far the wall clock was stepped between `start` and `end`: the wall clock's
    interval minus the monotonic one (negative: set back), rounded to a tenth of a second."""
    return round(seconds_between(start.wall, end.wall) - (end.mono - start.mono), 1)


def jump_warning(jump: float, during: str) -> str | None:
    """The journal warning for a step of the wall clock (`jump` seconds, see clock_jump)
    larger than CLOCK_JUMP_TOLERANCE_S while `during` ran (e.g. "restore"); None for less."""
    jump = round(jump, 1)
    if abs(jump) <= CLOCK_JUMP_TOLERANCE_S:
        return None
    return (f"the system clock jumped by {jump:.1f} s during {during}; durations use a "
            "monotonic clock")
