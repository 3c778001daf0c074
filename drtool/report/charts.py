"""Trend charts of RTO and RPO against their objectives, drawn as SVG text.

Two small line charts do not need a plotting library: this module turns (time, value)
points into an SVG that is embedded in the HTML report, works offline and prints sharply.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape
from typing import Any

from drtool.report.model import axis_ceiling, human_seconds

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 52, 42
LEFT_WIDE = 90  # room for a phase's name
COLOURS = {"work": "#0969da", "met": "#1a7f37", "missed": "#cf222e", "unjudged": "#57606a",
           "objective": "#cf222e", "line": "#8c959f", "grid": "#d0d7de", "text": "#24292f"}


@dataclass(frozen=True)
class Point:
    at: dt.datetime
    value: float | None  # None: the drill ended before this figure was measured
    met: bool | None
    label: str  # the tooltip: drill id, figure, verdict


def trend_chart(title: str, points: list[Point], objectives: list[tuple[dt.datetime, float]],
                start: dt.datetime, end: dt.datetime) -> str:
    """An SVG line chart of `points` over [start, end) with the objective as a dashed step
    line (it may change during the period)."""
    ceiling = axis_ceiling([p.value for p in points], max((v for _t, v in objectives),
                                                          default=None))
    minutes = ceiling >= 600
    unit, scale = ("min", 60.0) if minutes else ("s", 1.0)
    span = (end - start).total_seconds() or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: dt.datetime) -> float:
        return LEFT + plot_w * min(max((moment - start).total_seconds() / span, 0.0), 1.0)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(value / ceiling, 1.0))

    measured = [p for p in points if p.value is not None]
    summary = (f"{title}: {len(measured)} measured drills, "
               f"{sum(1 for p in measured if p.met)} within objective")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="100%" role="img" aria-label="{escape(summary)}" class="chart">',
           f"<title>{escape(summary)}</title>",
           f'<text x="{LEFT}" y="20" font-size="14" font-weight="600" '
           f'fill="{COLOURS["text"]}">{escape(title)}</text>']
    for i in range(6):  # y grid and labels
        value = ceiling * i / 5
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" '
                   f'y2="{y(value):.1f}" stroke="{COLOURS["grid"]}" stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" font-size="11" '
                   f'text-anchor="end" fill="{COLOURS["text"]}">{value / scale:g} {unit}</text>')
    for tick in month_ticks(start, end):  # x axis labels
        out.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{TOP}" '
                   f'y2="{TOP + plot_h}" stroke="{COLOURS["grid"]}" stroke-dasharray="2 3"/>')
        out.append(f'<text x="{x(tick) + 3:.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="11" '
                   f'fill="{COLOURS["text"]}">{tick.strftime("%d %b %Y")}</text>')
    if objectives:  # the objective as a step line from the period's start
        ordered = sorted(objectives)
        path = f"M {LEFT} {y(ordered[0][1]):.1f}"
        for moment, value in ordered[1:]:
            path += f" H {x(moment):.1f} V {y(value):.1f}"
        path += f" H {WIDTH - RIGHT}"
        out.append(f'<path d="{path}" fill="none" stroke="{COLOURS["objective"]}" '
                   f'stroke-width="1.5" stroke-dasharray="6 4" class="objective"/>')
    if len(measured) > 1:
        line = " ".join(f"{x(p.at):.1f},{y(p.value or 0):.1f}" for p in measured)
        out.append(f'<polyline points="{line}" fill="none" stroke="{COLOURS["line"]}" '
                   'stroke-width="1.2"/>')
    for p in points:
        if p.value is None:  # not measured: a cross on the time axis
            cx, cy = x(p.at), TOP + plot_h
            out.append(f'<g class="point not-measured"><title>{escape(p.label)}</title>'
                       f'<path d="M {cx - 4:.1f} {cy - 4:.1f} L {cx + 4:.1f} {cy + 4:.1f} '
                       f'M {cx - 4:.1f} {cy + 4:.1f} L {cx + 4:.1f} {cy - 4:.1f}" '
                       f'stroke="{COLOURS["unjudged"]}" stroke-width="2"/></g>')
            continue
        state = "unjudged" if p.met is None else ("met" if p.met else "missed")
        out.append(f'<circle class="point {state}" cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" '
                   f'r="4.5" fill="{COLOURS[state]}"><title>{escape(p.label)}</title></circle>')
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
               f'stroke="{COLOURS["text"]}"/>')
    legend = [("met", "within objective"), ("missed", "objective missed")]
    lx = LEFT + 6  # the legend, on its own line under the title
    for state, text in legend:
        out.append(f'<circle cx="{lx}" cy="34" r="4.5" fill="{COLOURS[state]}"/>'
                   f'<text x="{lx + 8}" y="38" font-size="11" fill="{COLOURS["text"]}">'
                   f"{text}</text>")
        lx += 125
    out.append(f'<path d="M {lx - 4} 30 L {lx + 4} 38 M {lx - 4} 38 L {lx + 4} 30" '
               f'stroke="{COLOURS["unjudged"]}" stroke-width="2"/><text x="{lx + 8}" y="38" '
               f'font-size="11" fill="{COLOURS["text"]}">ended before it was measured</text>')
    lx += 190
    out.append(f'<line x1="{lx - 6}" x2="{lx + 10}" y1="34" y2="34" '
               f'stroke="{COLOURS["objective"]}" stroke-dasharray="6 4" stroke-width="1.5"/>'
               f'<text x="{lx + 14}" y="38" font-size="11" fill="{COLOURS["text"]}">'
               "objective</text>")
    out.append("</svg>")
    return "\n".join(out)


def month_ticks(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The first of every month in [start, end)."""
    ticks, cursor = [], start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while cursor < end:
        if cursor >= start:
            ticks.append(cursor)
        cursor = (cursor.replace(year=cursor.year + 1, month=1) if cursor.month == 12
                  else cursor.replace(month=cursor.month + 1))
    return ticks


def recovery_chart(where: dict[str, Any]) -> str:
    """Where the recovery time went (drtool.report.recovery_time.breakdown): one row per
    phase of the RTO, its span in grey and the spans its steps did work in coloured, on an
    axis of seconds from the disaster's declaration."""
    rto = float(where["rto_s"]) or 1.0
    rows = where["phases"]
    row_h, top = 30, TOP
    height = top + row_h * len(rows) + BOTTOM
    plot_w = WIDTH - LEFT_WIDE - RIGHT

    def x(seconds: float) -> float:
        return LEFT_WIDE + plot_w * min(max(seconds / rto, 0.0), 1.0)

    summary = (f"Where the recovery time went: {human_seconds(rto)} in all, of which "
               f"{human_seconds(where['work_s'])} steps acting on hosts and "
               f"{human_seconds(where['orchestration_s'])} Ansible and drtool around them")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
           f'width="100%" role="img" aria-label="{escape(summary)}" class="chart">',
           f"<title>{escape(summary)}</title>",
           f'<text x="{LEFT_WIDE}" y="20" font-size="14" font-weight="600" '
           f'fill="{COLOURS["text"]}">Where the recovery time went</text>',
           f'<rect x="{LEFT_WIDE}" y="29" width="12" height="10" fill="{COLOURS["work"]}"/>'
           f'<text x="{LEFT_WIDE + 16}" y="38" font-size="11" fill="{COLOURS["text"]}">'
           "steps acting on hosts (restore, stop, start, count)</text>"
           f'<rect x="{LEFT_WIDE + 300}" y="29" width="12" height="10" '
           f'fill="{COLOURS["grid"]}"/><text x="{LEFT_WIDE + 316}" y="38" font-size="11" '
           f'fill="{COLOURS["text"]}">Ansible and drtool around them</text>']
    for i in range(6):  # the seconds axis
        at = rto * i / 5
        out.append(f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{top}" '
                   f'y2="{top + row_h * len(rows)}" stroke="{COLOURS["grid"]}" '
                   'stroke-dasharray="2 3"/>')
        out.append(f'<text x="{x(at):.1f}" y="{top + row_h * len(rows) + 16}" font-size="11" '
                   f'text-anchor="middle" fill="{COLOURS["text"]}">{human_seconds(at)}</text>')
    for index, phase in enumerate(rows):
        y = top + row_h * index + 6
        begins, ends = x(phase["started_s"]), x(phase["started_s"] + phase["duration_s"])
        label = (f"{phase['name']}: {human_seconds(phase['duration_s'])}, "
                 f"{human_seconds(phase['work_s'])} of it steps acting on hosts")
        out.append(f'<g class="phase"><title>{escape(label)}</title>'
                   f'<text x="{LEFT_WIDE - 8}" y="{y + 13}" font-size="12" text-anchor="end" '
                   f'fill="{COLOURS["text"]}">{escape(phase["name"])}</text>'
                   f'<rect x="{begins:.1f}" y="{y}" height="18" '
                   f'width="{max(ends - begins, 1):.1f}" '
                   f'fill="{COLOURS["grid"]}"/></g>')
        for start, end in phase["spans"]:
            out.append(f'<rect class="work" x="{x(start):.1f}" y="{y}" height="18" '
                       f'width="{max(x(end) - x(start), 1):.1f}" fill="{COLOURS["work"]}">'
                       f"<title>{escape(phase['name'])}: work from {human_seconds(start)} to "
                       f"{human_seconds(end)}</title></rect>")
    out.append("</svg>")
    return "\n".join(out)

