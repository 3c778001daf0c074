"""RTO and RPO arithmetic, and how long a phase may run: pure functions of moments.

What drtool measures itself (the RTO, the part of the backup's age that passed during the
drill) comes from the monotonic clock of a Moment; what it compares with timestamps written
elsewhere (a heartbeat the application wrote, the backup's consistency time on the database
server) can only be a wall-clock comparison.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from drtool.core.clock import Moment, elapsed, parse_iso, seconds_between

# A phase's time limit, unless the environment sets one (drtool_phase_timeout_s): three times
# the RTO objective, and never under five minutes. No single phase should take longer than
# the whole recovery is allowed to, so three times that is a phase that hangs rather than one
# that is slow: a slow drill still runs to its end, and the RTO check says by how much it
# missed. The floor keeps a tight objective (60 s) from cutting Ansible's start-up short.
PHASE_LIMIT_RTO_FACTOR = 3
PHASE_LIMIT_FLOOR_S = 300.0


def rto_seconds(declared: Moment | None, verified: Moment | None) -> float | None:
    """Recovery time on the monotonic clock: from the disaster being declared to the restore
    being verified. None when either moment is missing (no disaster, or the restore was
    never verified)."""
    if declared is None or verified is None:
        return None
    return elapsed(declared, verified)


def rpo_backup_age(declared: Moment | None, consistent_at: dt.datetime | None,
                   recorded: Moment | None = None) -> float | None:
    """Data-loss window implied by the backup: disaster time minus its consistency time.

    `recorded`: the moment this process received the backup's consistency time, when the
    backup was made during this run. The age is then the consistency time to `recorded` on
    the wall clock (a few seconds, between the database server's clock and this machine's),
    plus `recorded` to the disaster on the monotonic clock. Without it, a wall-clock
    comparison. None when a moment is missing."""
    if declared is None or consistent_at is None:
        return None
    if recorded is None:
        return seconds_between(consistent_at, declared.wall)
    return round(seconds_between(consistent_at, recorded.wall) + elapsed(recorded, declared), 3)


def rpo_measured(
    declared_at: dt.datetime | None, newest_heartbeats: dict[str, dt.datetime | None]
) -> float | None:
    """Data loss measured from the data: disaster time minus the newest heartbeat found in
    the restored data. A wall-clock comparison by nature (the application stamped the
    heartbeats); a negative value means the clocks disagree, and fails its objective.

    Given the newest heartbeat each restored store holds; the store that lost most decides
    (the oldest of them). None when no store held a heartbeat.
    """
    found = [beat for beat in newest_heartbeats.values() if beat is not None]
    if declared_at is None or not found:
        return None
    return seconds_between(min(found), declared_at)


def rpo_by_store(declared_at: dt.datetime | None, heartbeats: Mapping[str, str | None],
                 parts: Mapping[str, tuple[str, str, str]], backup_id: str | None
                 ) -> list[dict[str, Any]]:
    """Per restored store, what a disaster at `declared_at` would have lost: its newest
    heartbeat in the restored data (`heartbeats`: {"postgres:main/appdb": iso or None}), and
    the backup it came from and how old that part of it was (`parts`: {store: (component,
    consistent_at, kind)} from the manifest). `data_loss_s` is None where the store holds no
    heartbeat: then its backup's age is the bound."""
    out = []
    for store, (component, consistent_at, kind) in sorted(parts.items()):
        beat = parse_iso(heartbeats.get(store))
        made = parse_iso(consistent_at)
        out.append({
            "store": store, "component": component, "kind": kind, "backup_id": backup_id,
            "backup_consistent_at": consistent_at,
            "backup_age_s": seconds_between(made, declared_at)
            if made and declared_at else None,
            "newest_heartbeat_at": heartbeats.get(store),
            "data_loss_s": seconds_between(beat, declared_at) if beat and declared_at else None,
        })
    return out


# -- how long a phase may run -------------------------------------------------------------------

def default_phase_limit(rto_objective_s: float) -> float:
    """A phase's time limit when the environment sets none (see PHASE_LIMIT_RTO_FACTOR)."""
    return max(PHASE_LIMIT_FLOOR_S, PHASE_LIMIT_RTO_FACTOR * rto_objective_s)


def phase_limit(phase: str, limits: Mapping[str, float], rto_objective_s: float) -> float:
    """The seconds `phase` may run: the environment's limit for it, else the default."""
    return limits.get(phase) or default_phase_limit(rto_objective_s)


def parse_phase_limits(value: Any, phases: Iterable[str]
                       ) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """Read a `drtool_phase_timeout_s` setting: a number of seconds for every phase, or a
    mapping of phase name to seconds (the phases it leaves out keep the default). Returns
    the limits it sets and its problems as (key, message); unset (None or "") sets none."""
    known = tuple(phases)
    key = "drtool_phase_timeout_s"
    if value is None or value == "":
        return {}, []
    if not isinstance(value, Mapping):
        seconds = _seconds(value)
        if seconds is None:
            return {}, [(key, f"must be a positive number of seconds, or a mapping of phase "
                              f"to seconds, got {value!r}")]
        return dict.fromkeys(known, seconds), []
    limits, problems = {}, []
    for phase, given in value.items():
        if phase not in known:
            problems.append((f"{key}.{phase}", f"not a phase: one of {', '.join(known)}"))
            continue
        seconds = _seconds(given)
        if seconds is None:
            problems.append((f"{key}.{phase}",
                             f"must be a positive number of seconds, got {given!r}"))
        else:
            limits[str(phase)] = seconds
    return limits, problems


def _seconds(value: Any) -> float | None:
    """A positive, finite number of seconds (a number or its text), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < float("inf") else None
