"""Time: one injectable clock and the ISO-8601 helpers every record uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The default clock: an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


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
    """Seconds from `start` to `end`, rounded to milliseconds."""
    return round((end - start).total_seconds(), 3)
