"""Bringing the history up to date: every journal gets its record, including drills that
were killed (their journal still says running, their process is gone)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from drtool import paths
from drtool.adapters.ansible import scrub_artifacts
from drtool.core.model import RUNNING, Journal, journal_from_dict
from drtool.core.rollback import awaits_rollback
from drtool.drill.journal_writer import JOURNAL, load_journals
from drtool.store.history import History, record_of
from drtool.store.lock import lock_held
from drtool.util.files import atomic_write


def record_unrecorded(env: str, history: History, skip: str | None = None,
                      locked: bool = False) -> list[str]:
    """Append a record for every journal of `env` the history lacks, oldest first; a drill
    still marked running whose process is gone is recorded as aborted. Returns their ids.

    Whether a drill is still running is judged by the environment's lock, never by the PID
    in its journal (a PID is reused, and means nothing in another PID namespace): with
    `locked` the caller holds the lock; otherwise a lock held by anyone means a drill may be
    under way, and running journals are left alone. A killed drill whose targets await their
    rollback is left unrecorded: the rollback will complete its journal (drill.rollback)."""
    added = []
    busy = not locked and lock_held(paths.drtool_home() / "locks", env)
    for path, journal in load_journals(paths.evidence_dir(env)):
        if journal.drill_id == skip or history.knows(journal.drill_id):
            continue
        record = record_of(journal)
        if journal.status == RUNNING:
            if busy:
                continue  # the lock is held: this may be that drill, still under way
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


DRILL_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")


def fallback_journals(env: str) -> list[tuple[Path, Path, Journal]]:
    """Journals written outside DRTOOL_HOME because the home was full (see JournalWriter),
    each with the place it belongs: [(fallback, journal path, journal)]. Only files whose
    name is the drill id they hold, in this user's private fallback folder, are taken."""
    try:
        folder = paths.fallback_dir(create=False) / "journals"
    except OSError:  # none was ever needed (or it is not this user's own)
        return []
    found = []
    for fallback in sorted(folder.glob("*.json")):
        try:
            journal = journal_from_dict(json.loads(fallback.read_text("utf-8")))
        except (OSError, ValueError, TypeError, KeyError, RecursionError):
            continue
        if journal.env == env and DRILL_ID.match(journal.drill_id) and (
                fallback.stem == journal.drill_id):
            found.append((fallback, paths.evidence_dir(env) / journal.drill_id / JOURNAL,
                          journal))
    return found


def adopt_fallback_journals(env: str) -> list[str]:
    """Put back into the evidence folder every journal of `env` that was written to the
    fallback folder while DRTOOL_HOME was full: once a save failed, every later save went
    there too, so it is the newest state. A journal in the home that already has a verdict
    is never replaced by one that says running. Called with the environment's lock held,
    before killed drills are looked for. Returns the drill ids put back."""
    adopted = []
    for fallback, path, journal in fallback_journals(env):
        try:
            here = journal_from_dict(json.loads(path.read_text("utf-8")))
        except (OSError, ValueError, TypeError, KeyError, RecursionError):
            here = None
        if here is not None and here.status != RUNNING and journal.status == RUNNING:
            fallback.unlink(missing_ok=True)  # older than the verdict it would hide
            continue
        try:
            atomic_write(path, fallback.read_text("utf-8"))
        except OSError:
            continue  # still no room: it stays where it is, and is tried again next time
        fallback.unlink(missing_ok=True)
        adopted.append(journal.drill_id)
    return adopted
