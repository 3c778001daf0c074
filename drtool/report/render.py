"""Reports as files: HTML and Markdown from Jinja2 templates, JSON from the report's data,
PDF printed from the HTML by headless Chromium."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from drtool.adapters import chromium
from drtool.core.clock import parse_iso
from drtool.report.charts import Point, recovery_chart, trend_chart
from drtool.report.model import DRILL_PHASES, human_seconds
from drtool.util.files import atomic_write

FORMATS = ("html", "md", "json", "pdf")
TEMPLATES = Path(__file__).parent / "templates"
# What a scope's data store is, as a person reads it.
STORE_KINDS = {"postgresql": "PostgreSQL", "redis": "Redis", "files": "File tree"}
ROLES = {"pg_primary": "PostgreSQL source", "pg_restore_target": "PostgreSQL restore target",
         "redis_primary": "Redis source", "redis_restore_target": "Redis restore target",
         "app": "application"}


def _when(value: str | None) -> str:
    moment = parse_iso(value) if isinstance(value, str) else None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _day(value: str | None, shift: int = 0) -> str:
    moment = parse_iso(value) if isinstance(value, str) else None
    if moment is None:
        return "-"
    return (moment.astimezone(dt.UTC) + dt.timedelta(days=shift)).strftime("%Y-%m-%d")


def _day_before(value: str | None) -> str:
    """The last day of a period given its exclusive end (a partial last day counts)."""
    moment = parse_iso(value) if isinstance(value, str) else None
    if moment is None:
        return "-"
    at_midnight = moment.hour == moment.minute == moment.second == moment.microsecond == 0
    return _day(value, -1 if at_midnight else 0)


def _version(value: dict[str, Any] | None) -> str:
    if not value or not value.get("commit"):
        return "not under git"
    state = {True: " (with uncommitted changes)", False: "", None: ""}[value.get("dirty")]
    return f"git {value['commit'][:12]}{state}"


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} bytes"


def _cell(value: Any) -> str:
    """A value safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _judged(value: bool | None) -> str:
    return "not measured" if value is None else ("met" if value else "MISSED")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False),
        trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True)
    env.filters.update(secs=human_seconds, when=_when, day=_day, day_before=_day_before,
                       version=_version, size=_size, cell=_cell, judged=_judged,
                       role=lambda group: ROLES.get(group, group),
                       store_kind=lambda kind: STORE_KINDS.get(kind, str(kind)),
                       number=lambda value: f"{float(value):g}")
    return env


def charts(report: dict[str, Any]) -> dict[str, str]:
    """The quarterly report's RTO and RPO trend charts, as SVG."""
    start = dt.datetime.fromisoformat(report["quarter"]["start"])
    end = dt.datetime.fromisoformat(report["quarter"]["end"])
    out = {}
    for key, field, met_key, label in (("rto", "rto_s", "rto_met", "Recovery time (RTO)"),
                                       ("rpo", "rpo_measured_s", "rpo_met", "Data loss (RPO)")):
        points, objectives = [], []
        for d in report["drills"]:
            at = parse_iso(d["started_at"])
            if at is None:
                continue
            value = d[field]
            objective = (d["objectives"] or {}).get(f"{key}_s")
            verdict = {None: "not judged", True: "within objective", False: "objective missed"}
            text = (f"{d['drill_id']} ({d['status']}): {label} {human_seconds(value)}, "
                    f"{verdict[d[met_key]]}" if value is not None else
                    f"{d['drill_id']} ({d['status']}): not measured")
            points.append(Point(at, value, d[met_key], text))
            if objective is not None:
                objectives.append((at, float(objective)))
        if report.get("objectives") and not objectives:
            objectives.append((start, float(report["objectives"][f"{key}_s"])))
        out[key] = trend_chart(f"{label} per drill, against its objective", points, objectives,
                               start, end)
    return out


# Each kind of report's templates: quarterly, drill, runbook.
TEMPLATE_OF = {"quarterly": "quarterly", "drill": "drill", "runbook": "runbook"}


def render_html(report: dict[str, Any]) -> str:
    template = f"{TEMPLATE_OF[report['kind']]}.html.j2"
    if report["kind"] == "runbook":
        extra: dict[str, Any] = {}
    elif report["kind"] == "quarterly":
        extra = {"charts": charts(report)}
    else:
        where = report["drill"].get("recovery")
        extra = {"charts": {"recovery": recovery_chart(where)} if where else {}}
    return environment().get_template(template).render(r=report, phases=DRILL_PHASES, **extra)


def render_markdown(report: dict[str, Any]) -> str:
    template = f"{TEMPLATE_OF[report['kind']]}.md.j2"
    return environment().get_template(template).render(r=report, phases=DRILL_PHASES)


def write(report: dict[str, Any], formats: list[str], out_dir: Path, basename: str
          ) -> list[Path]:
    """Write the report in every format asked for; each file appears whole or not at all.
    PDF comes last, printed from the HTML (a temporary copy when HTML was not asked for)."""
    written = []
    html = render_html(report) if "html" in formats or "pdf" in formats else None
    for fmt in formats:
        path = out_dir / f"{basename}.{fmt}"
        if fmt == "html" and html is not None:
            atomic_write(path, html)
        elif fmt == "md":
            atomic_write(path, render_markdown(report))
        elif fmt == "json":
            atomic_write(path, json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
        else:
            continue
        written.append(path)
    if "pdf" in formats and html is not None:
        pdf = out_dir / f"{basename}.pdf"
        if "html" in formats:
            chromium.print_to_pdf(out_dir / f"{basename}.html", pdf)
        else:
            with tempfile.TemporaryDirectory(prefix="drtool-report-") as scratch:
                source = Path(scratch) / f"{basename}.html"
                source.write_text(html, encoding="utf-8")
                chromium.print_to_pdf(source, pdf)
        written.append(pdf)
    return written
