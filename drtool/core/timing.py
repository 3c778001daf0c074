"""RTO and RPO arithmetic: pure functions of timestamps."""

from __future__ import annotations

import datetime as dt

from drtool.core.clock import seconds_between


def rto_seconds(declared_at: dt.datetime | None, verified_at: dt.datetime | None) -> float | None:
    """Recovery time: from the disaster being declared to the restore being verified.

    None when either moment is missing (no disaster, or the restore was never verified).
    """
    if declared_at is None or verified_at is None:
        return None
    return seconds_between(declared_at, verified_at)


def rpo_backup_age(
    declared_at: dt.datetime | None, consistent_at: dt.datetime | None
) -> float | None:
    """Data-loss window implied by the backup: disaster time minus its consistency time."""
    if declared_at is None or consistent_at is None:
        return None
    return seconds_between(consistent_at, declared_at)


def rpo_measured(
    declared_at: dt.datetime | None, newest_heartbeats: dict[str, dt.datetime | None]
) -> float | None:
    """Data loss measured from the data: disaster time minus the newest heartbeat found in
    the restored data.

    Given the newest heartbeat each restored store holds; the store that lost most decides
    (the oldest of them). None when no store held a heartbeat.
    """
    found = [beat for beat in newest_heartbeats.values() if beat is not None]
    if declared_at is None or not found:
        return None
    return seconds_between(min(found), declared_at)
