"""The tamper-evident chain over drill records. Pure: hashing and checking.

Each record's hash is sha256 over the previous record's hash, the record's canonical JSON and
its journal's sha256. Changing a journal, a record, the order or removing a record in the
middle breaks the chain at a record that can be named.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(record: Mapping[str, Any]) -> str:
    """The one JSON text of a record that its hash covers: sorted keys, no spaces."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def link(previous_hash: str, record: Mapping[str, Any], journal_sha256: str) -> str:
    """The hash of a record chained after `previous_hash`."""
    text = f"{previous_hash}\n{canonical(record)}\n{journal_sha256}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Link:
    """One stored record as the chain sees it."""

    seq: int
    drill_id: str
    record: dict[str, Any]
    journal_sha256: str
    previous_hash: str
    hash: str


@dataclass(frozen=True)
class Break:
    """Where a chain stops holding, and why."""

    seq: int
    drill_id: str
    reason: str

    def describe(self) -> str:
        return f"record {self.seq} (drill {self.drill_id}): {self.reason}"


def first_break(links: Iterable[Link], journal_now: Mapping[str, str | None]) -> Break | None:
    """Walk one environment's records in order; return the first that does not hold.

    `journal_now` maps each drill id to the sha256 of its journal as it is on disk now (None
    when the file is gone).
    """
    expected_previous = GENESIS
    for entry in links:
        if entry.previous_hash != expected_previous:
            return Break(entry.seq, entry.drill_id, "does not follow the record before it "
                         "(a record was removed, inserted or moved)")
        if link(entry.previous_hash, entry.record, entry.journal_sha256) != entry.hash:
            return Break(entry.seq, entry.drill_id, "its contents do not match its hash")
        now = journal_now.get(entry.drill_id)
        if now is None:
            return Break(entry.seq, entry.drill_id, "its journal is missing")
        if now != entry.journal_sha256:
            return Break(entry.seq, entry.drill_id,
                         f"its journal changed (recorded sha256 {entry.journal_sha256}, "
                         f"now {now})")
        expected_previous = entry.hash
    return None


def first_anchor_break(links: Sequence[Link], anchors: Iterable[Mapping[str, Any]]
                       ) -> Break | None:
    """Check one environment's records against the anchors read back from the evidence
    bucket (see drtool.store.anchor): every anchored record must still be in the history
    with the hash it was anchored with. This is what shows the newest records cut off."""
    held = {entry.drill_id: entry for entry in links}
    for anchor in sorted(anchors, key=lambda a: (a["seq"], a["url"])):
        where = f"{anchor['url']} (version {anchor['version_id']})"
        if "invalid" in anchor:
            return Break(anchor["seq"], anchor["drill_id"],
                         f"{where} is not an anchor drtool wrote: {anchor['invalid']}")
        entry = held.get(anchor["drill_id"])
        if entry is None:
            return Break(anchor["seq"], anchor["drill_id"],
                         f"it is anchored at {where} but missing from the history "
                         "(records were cut off or removed)")
        if entry.hash != anchor["hash"]:
            return Break(entry.seq, entry.drill_id,
                         f"its hash differs from the one anchored at {where}")
    return None
