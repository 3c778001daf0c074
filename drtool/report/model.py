"""What a DR evidence report says, as plain data: built from history records and journals,
independent of HTML, Markdown or PDF. Pure: no files, no clock (the caller passes `now`).

The history record is authoritative for a drill's status (a killed drill's journal still says
"running"; its record says "aborted"); the journal supplies the detail: phases, checks, scope.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drtool.core.clock import iso, parse_iso
from drtool.core.phases import OPERATIONS
from drtool.report import recovery_time
from drtool.report.frameworks import FRAMEWORKS

REPORT_SCHEMA = "drtool.report/1"
DRILL_PHASES = OPERATIONS["drill"]
SIGN_OFF_ROLES = ("Prepared by (DR drill owner)", "Reviewed by (service owner)",
                  "Approved by (risk or compliance)")
QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)


@dataclass(frozen=True)
class Quarter:
    label: str
    start: dt.datetime  # inclusive, UTC
    end: dt.datetime  # exclusive, UTC

    def holds(self, moment: dt.datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end


def parse_quarter(text: str) -> Quarter:
    """'2026-Q4' (or 2026Q4, 2026-q4) as a UTC quarter; ValueError otherwise."""
    found = QUARTER.match(text.strip())
    if not found:
        raise ValueError(f"not a quarter: {text!r} (expected YEAR-Qn, such as 2026-Q4)")
    year, number = int(found.group(1)), int(found.group(2))
    if year < 1970:
        raise ValueError(f"not a quarter: {text!r} (year before 1970)")
    start = dt.datetime(year, 3 * number - 2, 1, tzinfo=dt.UTC)
    end = (dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC) if number == 4
           else dt.datetime(year, 3 * number + 1, 1, tzinfo=dt.UTC))
    return Quarter(f"{year}-Q{number}", start, end)


def quarter_of(moment: dt.datetime) -> Quarter:
    moment = moment.astimezone(dt.UTC)
    return parse_quarter(f"{moment.year}-Q{(moment.month - 1) // 3 + 1}")


@dataclass(frozen=True)
class Recorded:
    """One history record with what the report needs beside it."""

    seq: int
    record: dict[str, Any]
    hash: str
    journal_sha256: str
    journal_path: str
    journal: dict[str, Any] | None  # None when the file is gone or unreadable


def met(value: float | None, objective: float | None) -> bool | None:
    """Whether a figure met its objective; None when either is unknown."""
    if value is None or objective is None:
        return None
    return value <= objective


INCIDENTS = ("recover", "undo-recover")


def drill_entry(item: Recorded, remediation: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One drill as the reports show it."""
    record, journal = item.record, item.journal or {}
    objectives = record.get("objectives") or {}
    phases = {p["name"]: p for p in journal.get("phases", []) if isinstance(p, dict)}
    checks = [c for c in journal.get("checks", []) if isinstance(c, dict)]
    failure = record.get("failure")
    return {
        "seq": item.seq, "drill_id": record["drill_id"], "operation": record.get("operation"),
        "status": record.get("status"), "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"), "note": journal.get("note"),
        "operator": journal.get("operator"), "undoes": journal.get("undoes"),
        "rto_s": record.get("rto_s"), "rpo_measured_s": record.get("rpo_measured_s"),
        "rpo_backup_age_s": record.get("rpo_backup_age_s"),
        "objectives": objectives or None,
        "rto_met": met(record.get("rto_s"), objectives.get("rto_s")),
        "rpo_met": met(record.get("rpo_measured_s"), objectives.get("rpo_s")),
        "phases": [{"name": name, "status": p.get("status"), "duration_s": p.get("duration_s"),
                    "tasks": len(p.get("tasks") or []), "error": p.get("error")}
                   for name, p in phases.items()],
        "phase_durations": {name: p.get("duration_s") for name, p in phases.items()},
        "restores": component_restores(phases.get("restore") or {}),
        "recovery": recovery_time.breakdown(journal),
        "checks": [{k: c.get(k) for k in ("name", "target", "expected", "actual", "status",
                                          "detail")} for c in checks],
        "checks_passed": record.get("checks_passed", 0),
        "checks_failed": record.get("checks_failed", 0),
        "failure": failure,
        "remediation": (remediation or {}).get(record["drill_id"], ""),
        "rollback": ({"status": journal["rollback"].get("status"),
                      "duration_s": journal["rollback"].get("duration_s")}
                     if isinstance(journal.get("rollback"), dict) else None),
        "backup": journal.get("backup"), "tool_versions": journal.get("tool_versions") or {},
        "backup_origin": backup_origin(journal.get("backup")),
        "backup_kind": backup_kind(journal.get("backup")),
        "rpo_by_store": [e for e in journal.get("rpo_by_store") or [] if isinstance(e, dict)],
        "scope": journal.get("scope"),
        "evidence": {"record_hash": item.hash, "journal_sha256": item.journal_sha256,
                     "journal": item.journal_path, "journal_readable": item.journal is not None},
    }


def component_restores(phase: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each component's restore when they ran side by side, slowest first; the slowest is
    marked: it set the restore's share of the RTO."""
    rows = [dict(c) for c in phase.get("components") or [] if isinstance(c, dict)]
    rows.sort(key=lambda c: -(c.get("duration_s") or 0.0))
    for index, row in enumerate(rows):
        row["slowest"] = index == 0 and len(rows) > 1
    return rows


def figures(values: Iterable[float | None], objective_met: Iterable[bool | None]
            ) -> dict[str, Any]:
    """min, median and max of the known values, and how many met their objective."""
    known = [v for v in values if v is not None]
    judged = [m for m in objective_met if m is not None]
    return {"count": len(known), "min": min(known) if known else None,
            "median": statistics.median(known) if known else None,
            "max": max(known) if known else None,
            "met": sum(judged), "judged": len(judged)}


def cadence_compliance(cadence_days: float | None, start: dt.datetime, as_of: dt.datetime,
                       drills: list[dict[str, Any]], last_pass_before: dt.datetime | None
                       ) -> dict[str, Any]:
    """Drills the schedule called for against drills that ran.

    The window [start, as_of) is cut into cadence-long periods from `start`; each period that
    has ended is due and met when a drill passed in it. A last, unfinished period is "open"
    unless a drill already passed in it. The longest stretch without a passed drill counts
    from the last pass before the window, when there was one.
    """
    if cadence_days is None:
        return {"assessed": False, "cadence_days": None, "periods": [],
                "reason": "no drill cadence is set (drtool_drill_cadence_days)"}
    step = dt.timedelta(days=cadence_days)
    periods, cursor = [], start
    passes = sorted(t for t in (parse_iso(d["started_at"]) for d in drills
                                if d["status"] == "passed") if t is not None)
    while cursor < as_of:
        end = cursor + step
        ran = [d for d in drills if cursor <= (parse_iso(d["started_at"]) or start) < end]
        passed = [d for d in ran if d["status"] == "passed"]
        if passed:
            state = "met"
        elif end > as_of:
            state = "open"
        else:
            state = "missed" if not ran else "no drill passed"
        periods.append({"start": iso(cursor), "end": iso(min(end, as_of)),
                        "drills": len(ran), "passed": len(passed), "state": state,
                        "drill_ids": [d["drill_id"] for d in ran]})
        cursor = end
    due = [p for p in periods if p["state"] != "open"]
    met_count = sum(1 for p in due if p["state"] == "met")
    marks = ([last_pass_before] if last_pass_before else [start]) + passes + [as_of]
    longest = max((b - a for a, b in zip(marks, marks[1:], strict=False)),
                  default=dt.timedelta(0))
    return {"assessed": True, "cadence_days": cadence_days, "periods": periods,
            "due": len(due), "met": met_count, "compliant": met_count == len(due),
            "drills_run": len(drills), "drills_passed": len(passes),
            "longest_gap_days": round(longest.total_seconds() / 86400, 2),
            "longest_gap_within_cadence": longest <= step}


def headline(report: dict[str, Any]) -> list[str]:
    """The report's findings in plain sentences, for a reader who reads nothing else."""
    s, lines = report["summary"], []
    quarter, env = report["quarter"]["label"], report["env"]
    if not report["chain"]["intact"]:
        lines.append("The evidence chain is BROKEN: the records below cannot be relied on "
                     f"({report['chain']['first_break']}).")
    if not s["drills"]:
        lines.append(f"No recovery drill of {env} was recorded in {quarter}.")
    else:
        lines.append(f"{plural(s['drills'], 'recovery drill')} of {env} ran in {quarter}: "
                     f"{s['passed']} passed, {s['failed']} failed, {s['aborted']} aborted.")
    for key, label in (("rto", "recovery time (RTO)"), ("rpo", "data loss (RPO)")):
        figure = s[key]
        if figure["judged"]:
            lines.append(f"{figure['met']} of {plural(figure['judged'], 'measured drill')} met the "
                         f"{label} objective; worst {human_seconds(figure['max'])}.")
    scheduled = s["rpo_scheduled"]
    if scheduled["count"]:
        lines.append(f"{plural(scheduled['count'], 'drill')} restored a backup the schedule "
                     f"had made: their data loss, worst {human_seconds(scheduled['max'])}, is "
                     "what a real disaster would have cost"
                     + (f" ({scheduled['met']} of {scheduled['judged']} within the objective)."
                        if scheduled["judged"] else "."))
    elif report["drills"] and all(d["backup_kind"] == FRESH for d in report["drills"]):
        lines.append("Every drill restored a backup it made itself, seconds before its "
                     "disaster: their data loss measures the drill, not what a real disaster "
                     "would lose. Drills of the scheduled backups (drtool drill --backup "
                     "latest) measure that.")
    cadence = report["cadence"]
    if cadence["assessed"]:
        lines.append(f"Drills are due every {cadence['cadence_days']:g} days: {cadence['met']} "
                     f"of {cadence['due']} due periods had a passed drill"
                     + ("." if cadence["compliant"] else " (NOT compliant)."))
    else:
        lines.append("Drill cadence was not assessed: " + cadence["reason"] + ".")
    if report["chain"]["intact"]:
        lines.append(f"The evidence chain of {plural(report['chain']['records'], 'record')} "
                     "is intact.")
    return lines


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def human_seconds(value: float | None) -> str:
    """'42.1 s', '3 min 5 s', '2 h 10 min', '3.5 days': for people, not machines."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        minutes, rest = divmod(round(value), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    if value < 2 * 86400:
        hours, rest = divmod(round(value / 60), 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{value / 86400:.1f} days"


def chain_state(records: int, first_break: str | None, head: str | None,
                checked_at: dt.datetime, anchor: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """The chain as the report quotes it. `anchor` is where the newest anchored record was
    put in the Object Lock bucket (its drill id, url, version id), as the history notes it;
    `drtool evidence verify --anchors` reads it back."""
    return {"intact": first_break is None, "records": records, "first_break": first_break,
            "head_hash": head, "checked_at": iso(checked_at), "anchor": anchor}


def quarterly_report(env: str, quarter: Quarter, history: list[Recorded],
                     chain: dict[str, Any], now: dt.datetime, generated_by: dict[str, str],
                     remediation: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The quarterly DR evidence report of one environment, from all of its records."""
    as_of = min(quarter.end, now)
    in_quarter = [r for r in history if quarter.holds(parse_iso(r.record.get("started_at")))]
    entries = sorted((drill_entry(r, remediation) for r in in_quarter
                      if r.record.get("operation") == "drill"),
                     key=lambda e: e["started_at"] or "")
    # Real recoveries (`drtool recover`) and their undoing (`--undo`): incidents, shown apart
    # from the drills.
    incidents = sorted((drill_entry(r, remediation) for r in in_quarter
                        if r.record.get("operation") in INCIDENTS),
                       key=lambda e: e["started_at"] or "")
    others: dict[str, int] = {}
    for r in in_quarter:
        operation = r.record.get("operation", "?")
        if operation != "drill" and operation not in INCIDENTS:
            others[operation] = others.get(operation, 0) + 1
    # Scope and objectives as the newest drill saw them (else the newest record of any kind).
    newest = entries[-1] if entries else None
    scoped = [r for r in sorted(history, key=lambda r: r.record.get("started_at") or "")
              if (r.journal or {}).get("scope")
              and (parse_iso(r.record.get("started_at")) or now) < quarter.end]
    scope = (newest["scope"] if newest and newest["scope"]
             else (scoped[-1].journal or {}).get("scope") if scoped else None)
    objective_sets = []
    for entry in entries:
        if entry["objectives"] and entry["objectives"] not in objective_sets:
            objective_sets.append(entry["objectives"])
    versions = []
    for entry in entries:
        version = ((entry["scope"] or {}).get("inventory_version") or {})
        if version.get("commit") and version not in versions:
            versions.append(version)
    before = [parse_iso(r.record.get("started_at")) for r in history
              if r.record.get("operation") == "drill" and r.record.get("status") == "passed"]
    last_pass_before = max((t for t in before if t is not None and t < quarter.start),
                           default=None)
    cadence_days = (scope or {}).get("cadence_days")
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA, "kind": "quarterly", "env": env,
        "quarter": {"label": quarter.label, "start": iso(quarter.start),
                    "end": iso(quarter.end), "as_of": iso(as_of),
                    "complete": now >= quarter.end},
        "generated_at": iso(now), "generated_by": generated_by,
        "scope": scope, "inventory_versions": versions,
        "objectives": objective_sets[-1] if objective_sets else None,
        "objective_changes": objective_sets if len(objective_sets) > 1 else [],
        "summary": {
            "drills": len(entries),
            "passed": sum(e["status"] == "passed" for e in entries),
            "failed": sum(e["status"] == "failed" for e in entries),
            "aborted": sum(e["status"] == "aborted" for e in entries),
            "other_operations": others,
            "rto": figures((e["rto_s"] for e in entries), (e["rto_met"] for e in entries)),
            "rpo": figures((e["rpo_measured_s"] for e in entries),
                           (e["rpo_met"] for e in entries)),
            # Apart: a drill of a backup the schedule made measures what a disaster would
            # lose; one of its own fresh backup measures the drill's timing.
            **{f"rpo_{kind}": figures(
                (e["rpo_measured_s"] for e in entries if e["backup_kind"] == kind),
                (e["rpo_met"] for e in entries if e["backup_kind"] == kind))
               for kind in (SCHEDULED, FRESH)},
        },
        "drills": entries,
        "incidents": incidents,
        "runbook": runbook_proof(entries, env),
        "exceptions": [e for e in entries if e["status"] != "passed"],
        "cadence": cadence_compliance(cadence_days, quarter.start, as_of, entries,
                                      last_pass_before),
        "chain": chain,
        "frameworks": FRAMEWORKS,
        "sign_off": sign_off(),
    }
    report["headline"] = headline(report)
    return report


def runbook_proof(entries: list[dict[str, Any]], env: str) -> dict[str, Any] | None:
    """What the quarter's last passed drill proves of the recovery procedure (`drtool
    runbook`): its id, and how long each of its steps took, as the runbook shows them."""
    passed = [e for e in entries if e["status"] == "passed"]
    if not passed:
        return None
    last = passed[-1]
    steps = [{"step": name, "duration_s": last["phase_durations"].get(name)}
             for name in ("snapshot", "restore", "restart", "verify")
             if name in last["phase_durations"]]
    steps[1:1] = [{"step": f"restore of {r['component']}", "duration_s": r["duration_s"]}
                  for r in last["restores"]] if steps else []
    return {"drill_id": last["drill_id"], "ended_at": last["ended_at"], "steps": steps,
            "command": f"drtool runbook --env {env}", "file": None}


def sign_off() -> list[dict[str, str]]:
    """The blank sign-off block every report ends with, one row per role."""
    return [{"role": role, "name": "", "date": "", "signature": ""} for role in SIGN_OFF_ROLES]


def drill_report(item: Recorded, chain: dict[str, Any], now: dt.datetime,
                 generated_by: dict[str, str], remediation: Mapping[str, str] | None = None
                 ) -> dict[str, Any]:
    """The report of one drill (or backup, restore, verify run)."""
    entry = drill_entry(item, remediation)
    return {
        "schema": REPORT_SCHEMA, "kind": "drill", "env": item.record.get("env"),
        "generated_at": iso(now), "generated_by": generated_by, "drill": entry,
        "scope": entry["scope"], "chain": chain, "frameworks": FRAMEWORKS,
        "sign_off": sign_off(),
    }


def axis_ceiling(values: Iterable[float | None], objective: float | None) -> float:
    """A round top for a chart's y axis that shows every value and the objective."""
    top = max([v for v in values if v is not None] + [objective or 0, 1.0])
    exponent = 10 ** math.floor(math.log10(top * 1.15))
    for step in (1, 2, 2.5, 5, 10):
        if step * exponent >= top * 1.15:
            return step * exponent
    return 10 * exponent


# How a drill came by the backup it restored, for the people who read its RPO.
ORIGINS = {
    "fresh": "made by the drill itself, just before the disaster: its data loss measures the "
             "drill's own timing, not what a real disaster would lose",
    "latest": "the newest backup the store held (made earlier, by the schedule): its data "
              "loss is what a disaster at that moment would have cost",
    "random": "picked at random among the backups the store held: its data loss is what a "
              "disaster at that moment, recovered from that backup, would have cost",
    "random-verified": "picked at random among the verified backups the store held: its data "
                       "loss is what a disaster at that moment, recovered from it, would "
                       "have cost",
    "named": "a backup from the store, named by the operator",
}


SCHEDULED, FRESH = "scheduled", "fresh"


def backup_kind(backup: Any) -> str | None:
    """"fresh" when the drill made its own backup, "scheduled" when it restored one the store
    held (made earlier, by the schedule or an operator), None when the journal does not say
    (before schema 7)."""
    chosen = backup.get("chosen") if isinstance(backup, dict) else None
    if chosen == "fresh":
        return FRESH
    return SCHEDULED if chosen in ("latest", "random", "random-verified", "named") else None


def backup_origin(backup: Any) -> str | None:
    """A sentence on where a drill's backup came from (None for journals before schema 7)."""
    chosen = backup.get("chosen") if isinstance(backup, dict) else None
    return ORIGINS.get(chosen) if isinstance(chosen, str) else None
