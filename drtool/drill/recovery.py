"""Bringing the history up to date: every journal gets its record, including drills that
were killed (their journal still says running, their process is gone)."""

from __future__ import annotations

from pathlib import Path

from drtool import paths
from drtool.core.model import RUNNING
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


def record_unrecorded(env: str, history: History, skip: str | None = None) -> list[str]:
    """Append a record for every journal of `env` the history lacks, oldest first; a drill
    still marked running whose process is gone is recorded as aborted. Returns their ids."""
    added = []
    for path, journal in load_journals(paths.evidence_dir(env)):
        if journal.drill_id == skip or history.knows(journal.drill_id):
            continue
        record = record_of(journal)
        if journal.status == RUNNING:
            if process_running(journal.pid):
                continue  # another drill, still under way
            phase = next((p.name for p in journal.phases if p.status == RUNNING), "")
            record.update(status="aborted", failure={
                "phase": phase, "kind": "interrupted", "hosts": [],
                "reason": f"found interrupted: its process {journal.pid} was gone"})
        history.append(record, path)
        added.append(journal.drill_id)
    return added
