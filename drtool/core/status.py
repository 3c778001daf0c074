"""Is an environment's drilling up to date? Pure: judged from its history records.

An environment is overdue when it has a cadence and no drill passed within the last cadence
(counted from the end of the newest passed drill), or when it never passed one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from drtool.core.clock import iso, parse_iso

OK, OVERDUE, UNJUDGED = "ok", "overdue", "no cadence"


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
