"""Which backups a prune removes. Pure: given the catalog, the rules and the time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from drtool.core.clock import parse_iso
from drtool.store.base import BackupSummary


@dataclass(frozen=True)
class Decision:
    backup: BackupSummary
    keep: bool
    reason: str


def decide(catalog: list[BackupSummary], keep_last: int | None, keep_days: float | None,
           now: dt.datetime) -> list[Decision]:
    """Keep the newest `keep_last` complete backups, every backup younger than `keep_days`,
    and always the newest verified one (the last backup known to restore); prune the rest,
    incomplete ones included once they are past both rules. Newest first."""
    if keep_last is None and keep_days is None:
        raise ValueError("a prune needs --keep-last or --keep-days")
    ordered = sorted(catalog, key=lambda b: b.id, reverse=True)
    complete = [b for b in ordered if b.complete]
    newest_verified = next((b.id for b in complete if b.verified), None)
    kept_last = {b.id for b in complete[:keep_last or 0]}
    decisions = []
    for backup in ordered:
        when = parse_iso(backup.consistent_at or backup.created_at)
        age_days = (now - when).total_seconds() / 86400 if when else None
        if backup.id == newest_verified:
            decisions.append(Decision(backup, True, f"the newest verified backup "
                                                    f"(drill {backup.verified_by})"))
        elif backup.id in kept_last:
            decisions.append(Decision(backup, True, f"one of the newest {keep_last}"))
        elif keep_days is not None and (age_days is None or age_days < keep_days):
            why = "its age is unknown" if age_days is None else f"{age_days:.1f} days old"
            decisions.append(Decision(backup, True, f"younger than {keep_days:g} days ({why})"))
        else:
            what = "incomplete, " if not backup.complete else ""
            age = f"{age_days:.1f} days old" if age_days is not None else "age unknown"
            decisions.append(Decision(backup, False, f"{what}{age}"))
    return decisions
