"""Reading what a report is built from: an environment's history records, their journals,
and the state of its evidence chain."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from drtool.report.model import Recorded, chain_state
from drtool.store.history import History


def read_journal(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recorded(history: History, env: str) -> list[Recorded]:
    """Every record of `env`, oldest first, each with its journal as it is on disk now."""
    return [Recorded(link.seq, link.record, link.hash, link.journal_sha256, str(path),
                     read_journal(path)) for link, path in history.links(env)]


def chain(history: History, env: str, now: dt.datetime) -> dict[str, Any]:
    """The chain's state, recomputed now, its newest hash and its newest anchor."""
    checked, broken = history.verify(env)
    links = history.links(env)
    anchors = history.anchors(env)
    newest = next(({"drill_id": entry.drill_id, "seq": entry.seq, **anchors[entry.drill_id]}
                   for entry, _path in reversed(links) if entry.drill_id in anchors), None)
    return chain_state(checked, broken.describe() if broken else None,
                       links[-1][0].hash if links else None, now, newest)


def find_drill(history: History, drill_id: str) -> str | None:
    """The environment a drill id was recorded under, or None."""
    row = history.db.execute("SELECT env FROM drills WHERE drill_id = ?", (drill_id,)).fetchone()
    return row[0] if row else None
