"""Bringing the history up to date: every journal gets its record, including drills that
were killed (their journal still says running, their process is gone)."""

from __future__ import annotations

from pathlib import Path

from drtool import paths
from drtool.adapters.ansible import scrub_artifacts
from drtool.core.model import RUNNING
from drtool.core.rollback import awaits_rollback
from drtool.drill.journal_writer import load_journals
from drtool.store.history import History, record_of


def process_running(pid: int | None) -> bool:
    """Whether `pid` is a live drtool process (a reused PID of another program is not)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and b"drtool" in cmdline


def record_unrecorded(env: str, history: History, skip: str | None = None,
                      locked: bool = False) -> list[str]:
    """Append a record for every journal of `env` the history lacks, oldest first; a drill
    still marked running whose process is gone is recorded as aborted. Returns their ids.

    With `locked` (the caller holds the environment's lock) no other drill of `env` can be
    running, whatever a journal's PID says. A killed drill whose targets await their rollback
    is left unrecorded: the rollback will complete its journal (drtool.drill.rollback)."""
    added = []
    for path, journal in load_journals(paths.evidence_dir(env)):
        if journal.drill_id == skip or history.knows(journal.drill_id):
            continue
        record = record_of(journal)
        if journal.status == RUNNING:
            if not locked and process_running(journal.pid):
                continue  # another drill, still under way
            if awaits_rollback(journal):
                continue
            phase = next((p.name for p in journal.phases if p.status == RUNNING), "")
            record.update(status="aborted", failure={
                "phase": phase, "kind": "interrupted", "hosts": [],
                "reason": f"found interrupted: its process {journal.pid} was gone"})
        history.append(record, path)
        added.append(journal.drill_id)
    return added


def scrub_killed(env: str, skip: str | None = None) -> None:
    """Scrub what killed runs left behind: ansible-runner writes the environment it was
    given into each `command` artifact, and a killed run never scrubbed its own (see
    drtool.adapters.ansible.scrub_artifacts). Killed drills' folders and the scratch runs."""
    scrub_artifacts(paths.runs_dir())
    for path, journal in load_journals(paths.evidence_dir(env)):
        if journal.status == RUNNING and journal.drill_id != skip:
            scrub_artifacts(path.parent)
