"""Is an environment's drilling up to date, and how much data would a disaster now lose?
Pure: judged from its history records.

An environment is overdue when it has a cadence and no drill passed within the last cadence
(counted from the end of the newest passed drill), or when it never passed one. Its current
RPO exposure is now minus the consistency time of its newest *verified* backup (one a passed
drill restored): the data a disaster now would lose at best, since only a backup a drill has
restored is known to restore. Over the RPO objective, or with no verified backup at all, the
exposure is exceeded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from drtool.core.clock import iso, parse_iso

OK, OVERDUE, UNJUDGED = "ok", "overdue", "no cadence"
# RPO exposure states: within the objective, over it (or nothing verified), no objective,
# and an environment never drilled (backups only, a production tier): nothing to judge.
EXPOSURE_OK, EXCEEDED, NO_OBJECTIVE, NOT_DRILLED = (
    "ok", "exceeded", "no objective", "not drilled")


def env_status(env: str, records: Iterable[dict[str, Any]], cadence_days: float | None,
               now: dt.datetime) -> dict[str, Any]:
    drills = sorted((r for r in records if r.get("operation") == "drill"),
                    key=lambda r: r.get("started_at") or "")
    last = drills[-1] if drills else None
    passed = [r for r in drills if r.get("status") == "passed"]
    last_pass = passed[-1] if passed else None

    def age(record: dict[str, Any] | None) -> float | None:
        moment = parse_iso((record or {}).get("ended_at") or (record or {}).get("started_at"))
        return round((now - moment).total_seconds(), 1) if moment else None

    pass_age = age(last_pass)
    if cadence_days is None:
        state = UNJUDGED
    elif pass_age is None or pass_age > cadence_days * 86400:
        state = OVERDUE
    else:
        state = OK
    due = None
    if cadence_days is not None and last_pass is not None:
        ended = parse_iso(last_pass.get("ended_at") or last_pass.get("started_at"))
        due = iso(ended + dt.timedelta(days=cadence_days)) if ended else None
    return {
        "env": env, "state": state, "cadence_days": cadence_days,
        "last_drill": (last or {}).get("drill_id"), "last_status": (last or {}).get("status"),
        "last_started_at": (last or {}).get("started_at"), "last_age_s": age(last),
        "last_passed_drill": (last_pass or {}).get("drill_id"), "last_passed_age_s": pass_age,
        "next_due_at": due, "drills": len(drills),
    }


def rpo_exposure(verified: tuple[str, str] | None, objective_s: float | None,
                 now: dt.datetime, drilled: bool = True) -> dict[str, Any]:
    """The environment's current RPO exposure. `verified`: (backup id, consistent_at) of its
    newest verified backup, or None; `objective_s`: its RPO objective, if it has one;
    `drilled`: whether any drill of it was ever recorded."""
    at = parse_iso(verified[1]) if verified else None
    exposure = round((now - at).total_seconds(), 1) if at else None
    if objective_s is None:
        state = NO_OBJECTIVE
    elif not drilled:
        state = NOT_DRILLED
    elif exposure is None or exposure > objective_s:
        state = EXCEEDED
    else:
        state = EXPOSURE_OK
    return {"newest_verified_backup": verified[0] if verified else None,
            "newest_verified_backup_at": verified[1] if verified else None,
            "rpo_exposure_s": exposure, "rpo_objective_s": objective_s, "rpo_state": state}


def newest_verified(drills: Iterable[tuple[dict[str, Any], dict[str, Any] | None]]
                    ) -> tuple[str, str] | None:
    """(backup id, consistent_at) of the newest backup a passed drill restored, from
    (record, its journal's `backup` or None) pairs, newest record first. A backup is
    consistent before the drill that restores it starts, so the walk stops at the first
    drill that started before the best backup found."""
    best: tuple[str, dt.datetime] | None = None
    for record, backup in drills:
        started = parse_iso(record.get("started_at"))
        if best is not None and started is not None and started < best[1]:
            break
        if record.get("operation") != "drill" or record.get("status") != "passed":
            continue
        at = parse_iso((backup or {}).get("consistent_at"))
        if at is not None and (best is None or at > best[1]):
            best = (str((backup or {}).get("id")), at)
    return (best[0], iso(best[1]) or "") if best else None
