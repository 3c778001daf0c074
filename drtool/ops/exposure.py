"""An environment's current RPO exposure, read from its history (see core.status): the
figure `drtool status` judges and the metrics export."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from drtool.core.status import newest_verified, rpo_exposure
from drtool.report.gather import read_journal
from drtool.store.history import History


def env_exposure(history: History, env: str, now: dt.datetime) -> dict[str, Any]:
    """core.status.rpo_exposure of `env`: its newest backup a passed drill restored (the
    journals of passed drills are read, newest first, only as far as needed) against the RPO
    objective its newest record carries."""
    links = history.links(env)
    verified = newest_verified((link.record, _backup_of(link.record, path))
                               for link, path in reversed(links))
    records = [link.record for link, _p in links]
    return rpo_exposure(verified, _rpo_objective(records), now,
                        drilled=any(r.get("operation") == "drill" for r in records))


def _backup_of(record: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """The `backup` of a passed drill's journal (the journal is read only for those)."""
    if record.get("operation") != "drill" or record.get("status") != "passed":
        return None
    backup = (read_journal(path) or {}).get("backup")
    return backup if isinstance(backup, dict) else None


def _rpo_objective(records: list[dict[str, Any]]) -> float | None:
    """The RPO objective the newest record carries (its inventory's, then)."""
    for record in reversed(records):
        objectives = record.get("objectives")
        if isinstance(objectives, dict) and objectives.get("rpo_s") is not None:
            return float(objectives["rpo_s"])
    return None
