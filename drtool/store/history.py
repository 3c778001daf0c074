"""The drill history: an embedded SQLite database under DRTOOL_HOME, one chained record per
drill (see drtool.core.chain). Records are only ever appended."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from drtool.core import chain
from drtool.core.model import Journal

SCHEMA = """
CREATE TABLE IF NOT EXISTS drills (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  env TEXT NOT NULL,
  drill_id TEXT NOT NULL UNIQUE,
  record TEXT NOT NULL,           -- the canonical JSON the hash covers
  journal_path TEXT NOT NULL,
  journal_sha256 TEXT NOT NULL,
  previous_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drills_env ON drills (env, seq);
-- Where a record was anchored off-site (drtool.store.anchor). Not part of the chain: the
-- anchor itself, read back from the bucket, is the evidence; this says where to look.
CREATE TABLE IF NOT EXISTS anchors (
  drill_id TEXT PRIMARY KEY REFERENCES drills (drill_id),
  url TEXT NOT NULL,
  version_id TEXT NOT NULL,
  retain_until TEXT NOT NULL
);
"""


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def record_of(journal: Journal) -> dict[str, Any]:
    """What a history record keeps of a journal: identity, times, figures, verdict."""
    return {
        "env": journal.env, "drill_id": journal.drill_id, "operation": journal.operation,
        "status": journal.status, "started_at": journal.started_at,
        "ended_at": journal.ended_at, "rto_s": journal.rto_s,
        "rpo_backup_age_s": journal.rpo_backup_age_s, "rpo_measured_s": journal.rpo_measured_s,
        "objectives": vars(journal.objectives) if journal.objectives else None,
        "failure": vars(journal.failure) if journal.failure else None,
        "backup_id": journal.backup.id if journal.backup else None,
        "checks_failed": sum(1 for c in journal.checks if not c.passed),
        "checks_passed": sum(1 for c in journal.checks if c.passed),
    }


class History:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def knows(self, drill_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM drills WHERE drill_id = ?",
                               (drill_id,)).fetchone() is not None

    def append(self, record: dict[str, Any], journal_path: Path) -> chain.Link:
        """Chain `record` after its environment's newest one; the journal must exist."""
        digest = file_sha256(journal_path)
        if digest is None:
            raise FileNotFoundError(journal_path)
        self.db.execute("BEGIN IMMEDIATE")  # one writer at a time: the chain stays linear
        try:
            row = self.db.execute("SELECT hash FROM drills WHERE env = ? ORDER BY seq DESC "
                                  "LIMIT 1", (record["env"],)).fetchone()
            previous = row[0] if row else chain.GENESIS
            text = chain.canonical(record)
            digest_chain = chain.link(previous, json.loads(text), digest)
            cursor = self.db.execute(
                "INSERT INTO drills (env, drill_id, record, journal_path, journal_sha256, "
                "previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record["env"], record["drill_id"], text, str(journal_path), digest, previous,
                 digest_chain))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return chain.Link(int(cursor.lastrowid or 0), record["drill_id"], json.loads(text),
                          digest, previous, digest_chain)

    def note_anchor(self, drill_id: str, anchor: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO anchors (drill_id, url, version_id, "
                        "retain_until) VALUES (?, ?, ?, ?)",
                        (drill_id, anchor["url"], anchor["version_id"], anchor["retain_until"]))

    def anchors(self, env: str) -> dict[str, dict[str, Any]]:
        """drill id -> where its record was anchored, for the records of `env` that were."""
        rows = self.db.execute(
            "SELECT a.drill_id, a.url, a.version_id, a.retain_until FROM anchors a "
            "JOIN drills d ON d.drill_id = a.drill_id WHERE d.env = ? ORDER BY d.seq", (env,))
        return {drill_id: {"url": url, "version_id": version, "retain_until": until}
                for drill_id, url, version, until in rows}

    def envs(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT DISTINCT env FROM drills ORDER BY 1")]

    def links(self, env: str) -> list[tuple[chain.Link, Path]]:
        """One environment's records in order, each with its journal's path."""
        rows = self.db.execute(
            "SELECT seq, drill_id, record, journal_sha256, previous_hash, hash, journal_path "
            "FROM drills WHERE env = ? ORDER BY seq", (env,)).fetchall()
        return [(chain.Link(seq, drill_id, json.loads(record), sha, previous, digest),
                 Path(path)) for seq, drill_id, record, sha, previous, digest, path in rows]

    def verify(self, env: str) -> tuple[int, chain.Break | None]:
        """(records checked, the first break or None) for one environment."""
        entries = self.links(env)
        now = {link.drill_id: file_sha256(path) for link, path in entries}
        return len(entries), chain.first_break([link for link, _path in entries], now)
