"""Where the recovery time went: the RTO's phases (disaster declared -> restore verified),
split into the steps that did the work and the time around them, from a journal alone.

A step that does work is a task whose module acts on a host (a restore, a stop, a count);
Ansible's own bookkeeping (includes, facts, asserts) and the time between tasks is the
orchestration. Tasks of one phase run side by side on several hosts, so a phase's work is
the union of its steps' intervals, not their sum. Pure: the journal in, plain data out, for
the drill report's chart and table and for `bench/run.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from drtool.core.clock import parse_iso
from drtool.core.phases import DISASTER, RESTART, RESTORE, VERIFY

RTO_PHASES = (DISASTER, RESTORE, RESTART, VERIFY)
# Tasks that decide or record, never act on a host: orchestration, whatever they took.
BOOKKEEPING = frozenset({"include_role", "include_tasks", "import_role", "import_tasks",
                         "set_fact", "set_stats", "assert", "fail", "debug", "meta",
                         "add_host", "group_by", "include_vars"})
ACTED = frozenset({"ok", "changed", "failed"})
TOP_STEPS = 12


def is_work(task: Mapping[str, Any]) -> bool:
    """A task that acted on a host: not skipped, and not Ansible's bookkeeping."""
    action = str(task.get("action") or "").rsplit(".", 1)[-1]
    return task.get("status") in ACTED and action not in BOOKKEEPING


def merged(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching (start, end) spans as one."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _offset(text: Any, origin: dt.datetime) -> float | None:
    try:
        moment = parse_iso(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return None if moment is None else (moment - origin).total_seconds()


def breakdown(journal: Mapping[str, Any], top: int = TOP_STEPS) -> dict[str, Any] | None:
    """The RTO split by phase into work and orchestration, the work's spans as offsets from
    the disaster's declaration, and the longest steps; None when the journal has no RTO."""
    rto = journal.get("rto_s")
    try:
        origin = parse_iso(journal.get("disaster_declared_at"))
    except ValueError:
        origin = None
    if not isinstance(rto, int | float) or origin is None:
        return None
    records = {p.get("name"): p for p in journal.get("phases") or [] if isinstance(p, Mapping)}
    phases: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for name in RTO_PHASES:
        record = records.get(name)
        if record is None:
            continue
        began = _offset(record.get("started_at"), origin)
        duration = float(record.get("duration_s") or 0.0)
        spans: list[tuple[float, float]] = []
        for task in record.get("tasks") or []:
            if not isinstance(task, Mapping) or not is_work(task):
                continue
            start, end = _offset(task.get("started_at"), origin), _offset(task.get("ended_at"),
                                                                          origin)
            if start is None or end is None or end < start:
                continue
            spans.append((start, end))
            steps.append({"phase": name, "name": str(task.get("name") or "?"),
                          "host": task.get("host"), "action": task.get("action"),
                          "started_s": round(start, 3), "duration_s": round(end - start, 3)})
        work = merged(spans)
        work_s = sum(end - start for start, end in work)
        phases.append({"name": name, "started_s": round(began or 0.0, 3),
                       "duration_s": round(duration, 3), "work_s": round(work_s, 3),
                       "orchestration_s": round(max(0.0, duration - work_s), 3),
                       "spans": [(round(s, 3), round(e, 3)) for s, e in work]})
    work_s = sum(p["work_s"] for p in phases)
    steps.sort(key=lambda s: -s["duration_s"])
    for step in steps:
        step["share"] = round(step["duration_s"] / rto, 4) if rto else None
    return {"rto_s": rto, "phases": phases, "work_s": round(work_s, 3),
            "orchestration_s": round(max(0.0, rto - work_s), 3),
            "between_phases_s": round(max(0.0, rto - sum(p["duration_s"] for p in phases)), 3),
            "steps": steps[:top]}
