"""Where journals live and how they are written: atomically, after every change.

A journal that cannot be written (a full disk, a folder gone read-only) must not stop the
drill from rolling its targets back: `save` never raises. It keeps the first error in
`problem`, the engine fails the drill with "cannot write the journal: ...", and the last
state is written to a fallback file outside DRTOOL_HOME when that is possible."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from drtool import paths
from drtool.core.model import Journal, journal_from_dict
from drtool.util.files import atomic_write

JOURNAL = "journal.json"


class JournalWriter:
    """Keeps one drill's journal on disk in step with the Journal object."""

    def __init__(self, folder: Path, journal: Journal) -> None:
        self.folder = folder
        self.journal = journal
        self.path = folder / JOURNAL
        self.problem: OSError | None = None  # the first save that failed
        self.fallback: Path | None = None  # where the journal went instead, if anywhere

    def save(self) -> bool:
        """Write the journal; True when it is on disk at `path`. Never raises. Once a save
        has failed, every later one goes to the fallback as well: the fallback is then
        always the newest state, whichever of the two writes succeeds."""
        text = dumps(self.journal)
        try:
            atomic_write(self.path, text)
            saved = True
        except OSError as exc:
            if self.problem is None:
                self.problem = exc
            saved = False
        if self.problem is not None:
            self._save_fallback(text)
        return saved

    def lost(self, problem: OSError) -> None:
        """Something else under the journal's folder (Ansible's artifacts) could not be
        written: from now on the journal is treated as unwritable too."""
        if self.problem is None:
            self.problem = problem
        self._save_fallback(dumps(self.journal))

    def _save_fallback(self, text: str) -> None:
        # The system's temporary folder is usually another file system than DRTOOL_HOME:
        # what happened stays readable there until the home has room again.
        try:
            path = paths.fallback_dir() / "journals" / f"{self.journal.drill_id}.json"
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(path, text, mode=0o600)
            self.fallback = path
        except OSError:
            self.fallback = None

    def artifact_dir(self, phase: str) -> Path:
        if self.problem is not None:
            # Ansible's artifacts cannot go where the journal cannot: a rollback must run.
            try:
                return paths.fallback_dir() / "artifacts" / self.journal.drill_id / phase
            except OSError:
                pass  # no private folder there either: try the home all the same
        return self.folder / "artifacts" / phase

    def room_for_artifacts(self) -> bool:
        """Whether Ansible's artifacts still fit in the journal's folder (a small probe
        written and removed); when not, the journal is treated as unwritable too."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.folder) as probe:
                probe.write(b"\0" * (1 << 20))
                probe.flush()
                os.fsync(probe.fileno())
            return True
        except OSError as exc:
            self.lost(exc)
            return False

    def relative(self, path: Path) -> str:
        """How the journal names a folder: relative to its own folder when inside it."""
        return str(path.relative_to(self.folder)) if path.is_relative_to(self.folder) else str(path)


def dumps(journal: Journal) -> str:
    return json.dumps(journal.to_dict(), indent=2, default=str) + "\n"


def load_journals(evidence: Path) -> list[tuple[Path, Journal]]:
    """Every readable journal under an environment's evidence folder, oldest first."""
    found = []
    if evidence.is_dir():
        for path in sorted(evidence.glob(f"*/{JOURNAL}")):
            try:
                found.append((path, journal_from_dict(json.loads(path.read_text("utf-8")))))
            except (OSError, ValueError, TypeError, KeyError):
                continue
    return sorted(found, key=lambda item: item[1].started_at)
