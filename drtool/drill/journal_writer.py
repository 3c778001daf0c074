"""Where journals live and how they are written: atomically, after every change."""

from __future__ import annotations

import json
from pathlib import Path

from drtool.core.model import Journal, journal_from_dict
from drtool.store.local import atomic_write

JOURNAL = "journal.json"


class JournalWriter:
    """Keeps one drill's journal on disk in step with the Journal object."""

    def __init__(self, folder: Path, journal: Journal) -> None:
        self.folder = folder
        self.journal = journal
        self.path = folder / JOURNAL

    def save(self) -> None:
        atomic_write(self.path, dumps(self.journal))

    def artifact_dir(self, phase: str) -> Path:
        return self.folder / "artifacts" / phase


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
