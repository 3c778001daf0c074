"""Rendering for people: live progress on stderr, the summary on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from drtool.config import Environment
from drtool.core.model import FAILED, PASSED, Journal, PhaseRecord

STYLE = {"passed": "green", "failed": "red", "aborted": "red", "skipped": "dim",
         "running": "yellow", "pending": "dim"}


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


class ConsoleProgress:
    """Phase-by-phase progress on stderr; on a terminal, the running task is shown too."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.status: Status | None = None
        self._label = ""

    def phase_started(self, name: str, index: int, total: int) -> None:
        label = f"[{index}/{total}] {name}" if total else name
        if self.console.is_terminal:
            status = self.console.status(f"{label} ...")
            status.start()
            self.status = status
        else:
            self.console.print(f"{label} ...")
        self._label = label

    def task_started(self, phase: str, task: str, host: str | None) -> None:
        if self.status is not None:
            self.status.update(f"{self._label}: {task}")

    def phase_ended(self, record: PhaseRecord) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        colour = STYLE.get(record.status, "")
        line = f"{self._label:<16} [{colour}]{record.status}[/] {seconds(record.duration_s)}"
        if record.error:
            line += f"  {record.error}"
        self.console.print(line)


def render_summary(journal: Journal, path: Path, console: Console | None = None,
                   anchor: dict[str, Any] | None = None, anchor_problem: str | None = None
                   ) -> None:
    """The end-of-drill summary: phases, RTO and RPO against objectives, checks, verdict;
    then where the evidence went (copies, the history's anchor, notifications)."""
    out = console or Console(highlight=False)
    table = Table(title=f"{journal.operation} {journal.drill_id} on {journal.env}")
    table.add_column("phase")
    table.add_column("duration", justify="right")
    table.add_column("status")
    for record in journal.phases:
        table.add_row(record.name, seconds(record.duration_s),
                      f"[{STYLE.get(record.status, '')}]{record.status}[/]")
    if journal.rollback is not None:
        table.add_row("rollback", seconds(journal.rollback.duration_s),
                      f"[{STYLE.get(journal.rollback.status, '')}]{journal.rollback.status}[/]")
    out.print(table)
    if journal.backup is not None:
        out.print(f"Backup    {journal.backup.id}  consistent at {journal.backup.consistent_at}"
                  f"  {journal.backup.size or 0:,} bytes"
                  + (f"  ({journal.backup.chosen})" if journal.backup.chosen else ""))
    if journal.undoes:
        out.print(f"Undoes    recovery {journal.undoes}"
                  + (": its targets put back as its safety snapshot found them"
                     if journal.status == PASSED else ""), soft_wrap=True)
    objectives = journal.objectives
    if journal.operation == "drill" and objectives is not None:
        out.print(f"RTO       {seconds(journal.rto_s)}  (objective {objectives.rto_s:g} s)"
                  f"  {_verdict(journal, 'objective.rto')}")
        out.print(f"RPO       measured {seconds(journal.rpo_measured_s)}, backup age "
                  f"{seconds(journal.rpo_backup_age_s)}  (objective {objectives.rpo_s:g} s)"
                  f"  {_verdict(journal, 'objective.rpo')}")
    if journal.operation == "recover":
        objective = f"  (objective {objectives.rto_s:g} s)" if objectives else ""
        out.print(f"Recovery  {seconds(journal.rto_s)} from its start to the verified restore"
                  f"{objective}")
        out.print(f"Data lost measured {seconds(journal.rpo_measured_s)}, backup age "
                  f"{seconds(journal.rpo_backup_age_s)}"
                  + (f"  (objective {objectives.rpo_s:g} s)" if objectives else ""))
    if journal.checks:
        # Every check, as a restore-drill log: what was expected, what was found.
        out.print("Checks")
        for check in journal.checks:
            mark = "[green]PASSED[/]" if check.status == PASSED else "[red]FAILED[/]"
            detail = f"  ({check.detail})" if check.detail else ""
            line = (f"{check.name:<26} {check.target}: expected {check.expected}, "
                    f"actual {check.actual}{detail}")
            out.print(f"  {mark} {escape(line)}", soft_wrap=True)  # data, not markup
        failed = [c for c in journal.checks if c.status == FAILED]
        out.print(f"Checks    {len(journal.checks) - len(failed)} passed, {len(failed)} failed")
    # The lines below hold paths, URLs and errors: never folded, so that a log read by a
    # program (cron's, a CI job's) keeps each on its line whatever the terminal's width.
    for found in journal.recovered:
        why = f": {found['error']}" if found.get("error") else ""
        out.print(f"Recovered killed drill {found['drill_id']}: rollback {found['rollback']}"
                  f"{escape(why)}", soft_wrap=True)
    if journal.rollback is not None and journal.rollback.error:
        out.print(f"Rollback: {escape(journal.rollback.error)}", soft_wrap=True)
    if journal.failure is not None:
        where = f" at {journal.failure.phase}" if journal.failure.phase else ""
        out.print(f"Failure{where}: {escape(journal.failure.reason)}", soft_wrap=True)
    if journal.operation == "recover" and any(p.name == "snapshot" and p.status == PASSED
                                              for p in journal.phases):
        tight = any(w.startswith("no safety snapshot on ") for w in journal.warnings)
        out.print(f"Snapshot  what the targets held before is kept (nothing is rolled back "
                  f"unasked): on each target's host, in its drtool_snapshot_path for "
                  f"{journal.drill_id}"
                  + (", but not where a warning below says there was no room" if tight else "")
                  + f"; `drtool recover --env {journal.env} --undo {journal.drill_id}` puts "
                    "it back", soft_wrap=True)
    colour = STYLE.get(journal.status, "")
    out.print(f"Verdict   [bold {colour}]{journal.status.upper()}[/]")
    for copy in journal.evidence_copies:
        out.print(f"Evidence  {escape(copy['url'])} version {copy['version_id']} "
                  f"({copy['mode']} until {copy['retain_until']})", soft_wrap=True)
    if anchor is not None:
        out.print(f"Anchored  history head at {escape(anchor['url'])} version "
                  f"{anchor['version_id']}", soft_wrap=True)
    for warning in [*journal.warnings, *([anchor_problem] if anchor_problem else [])]:
        out.print(f"[yellow]Warning[/]   {escape(warning)}", soft_wrap=True)
    for sent in journal.notifications:
        how = f" ({sent.format})" if sent.format else ""
        outcome = ("[green]delivered[/]" if sent.status == "delivered" else
                   f"[red]not delivered[/] after {sent.attempts} attempts: "
                   f"{escape(sent.error or '')}")
        out.print(f"Notified  {sent.event}: {sent.kind}{how} {escape(sent.target)}: {outcome}",
                  soft_wrap=True)
    out.print(f"Journal   {escape(str(path))}", soft_wrap=True)


def render_plan(env: Environment, plan: list[dict[str, Any]],
                console: Console | None = None, operation: str = "drill",
                backup: str | None = None, to_stderr: bool = False) -> None:
    """The ordered plan of a drill (or a recovery, from `backup`): each phase, its hosts,
    and what is destroyed where."""
    out = console or Console(highlight=False, stderr=to_stderr)
    if operation == "recover":
        out.print(f"Plan to recover {env.name} from backup {escape(backup or '-')} onto its "
                  "recovery targets; nothing has been changed.")
        if env.unrecovered:
            out.print(f"[yellow]Not recovered (no recovery side declared): "
                      f"{escape(', '.join(env.unrecovered))}[/]")
    else:
        out.print(f"Plan for a drill on {env.name} (tier {env.tier}); nothing has been "
                  "changed.")
    for index, phase in enumerate(plan, start=1):
        out.print(f"[bold]{index}. {phase['phase']}[/]")
        for step in phase["steps"]:
            colour = "red" if step["destroys"] else ""
            action = f"{step['component']}: {step['action']}" if step.get("component") \
                else step["action"]
            out.print(f"   {step['host']:<22} {step['address']:<15} "
                      + (f"[{colour}]{escape(action)}[/]" if colour else escape(action)))


def _verdict(journal: Journal, name: str) -> str:
    for check in journal.checks:
        if check.name == name:
            return "[green]met[/]" if check.status == PASSED else "[red]missed[/]"
    return "[dim]not judged[/]"
