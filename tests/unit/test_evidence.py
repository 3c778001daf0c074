"""The history's hash chain: intact history passes; a changed journal byte, a deleted record
and two swapped records each fail `drtool evidence verify` naming the record; a killed drill
is recorded as aborted."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3

import pytest

from drtool import paths
from drtool.cli.main import main
from drtool.core.chain import first_anchor_break
from drtool.core.model import Journal, PhaseRecord
from drtool.drill.journal_writer import JournalWriter
from drtool.store.anchor import anchor_body, named_by, parse_anchor
from drtool.store.history import History, record_of


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    return tmp_path


def drill(home, drill_id: str, status: str = "passed", pid: int | None = None) -> JournalWriter:
    journal = Journal(drill_id, "sandbox", "drill", f"2026-11-22T05:0{drill_id[-1]}:00+00:00",
                      status=status, pid=pid, rto_s=12.5,
                      phases=[PhaseRecord("backup", status="running" if status == "running"
                                          else "passed")])
    writer = JournalWriter(paths.evidence_dir("sandbox") / drill_id, journal)
    writer.save()
    return writer


def recorded(home, count: int = 3) -> list[JournalWriter]:
    writers = [drill(home, f"d-{i}") for i in range(1, count + 1)]
    with History(paths.history_db()) as history:
        for writer in writers:
            history.append(record_of(writer.journal), writer.path)
    return writers


def verify(capsys) -> tuple[int, str]:
    code = main(["evidence", "verify", "--env", "sandbox"])
    return code, capsys.readouterr().out


def test_an_untouched_history_verifies(home, capsys):
    recorded(home)
    assert verify(capsys) == (0, "sandbox: 3 records, chain intact\n")


def test_a_changed_byte_in_a_journal_names_its_record(home, capsys):
    writers = recorded(home)
    data = bytearray(writers[1].path.read_bytes())
    data[data.index(b"12.5")] = ord("9")  # rto 12.5 -> 92.5
    writers[1].path.write_bytes(bytes(data))
    code, out = verify(capsys)
    assert code == 1
    assert "BROKEN at record 2 (drill d-2): its journal changed" in out


def test_a_deleted_record_breaks_the_chain_at_the_next_one(home, capsys):
    recorded(home)
    with sqlite3.connect(paths.history_db()) as db:
        db.execute("DELETE FROM drills WHERE drill_id = 'd-2'")
    code, out = verify(capsys)
    assert code == 1
    assert "BROKEN at record 3 (drill d-3): does not follow the record before it" in out


def test_two_swapped_records_break_the_chain(home, capsys):
    recorded(home)
    columns = "drill_id, record, journal_path, journal_sha256, previous_hash, hash"
    with sqlite3.connect(paths.history_db()) as db:
        one = db.execute(f"SELECT {columns} FROM drills WHERE seq = 1").fetchone()
        two = db.execute(f"SELECT {columns} FROM drills WHERE seq = 2").fetchone()
        db.execute("UPDATE drills SET drill_id = 'swap' WHERE seq = 1")
        sets = ", ".join(f"{c.strip()} = ?" for c in columns.split(","))
        db.execute(f"UPDATE drills SET {sets} WHERE seq = 2", one)
        db.execute(f"UPDATE drills SET {sets} WHERE seq = 1", two)
    code, out = verify(capsys)
    assert code == 1
    assert "BROKEN at record 1 (drill d-2): does not follow the record before it" in out


def test_an_edited_record_is_caught_by_its_own_hash(home, capsys):
    recorded(home)
    with sqlite3.connect(paths.history_db()) as db:
        record = json.loads(db.execute("SELECT record FROM drills WHERE seq = 3").fetchone()[0])
        record["status"] = "passed" if record["status"] != "passed" else "failed"
        db.execute("UPDATE drills SET record = ? WHERE seq = 3", (json.dumps(record),))
    code, out = verify(capsys)
    assert code == 1 and "record 3 (drill d-3): its contents do not match its hash" in out


def test_a_killed_drill_is_recorded_as_aborted_with_what_its_journal_holds(home, capsys):
    recorded(home, 1)
    dead_pid = 2**22 + 7  # above the kernel's largest pid_max: never a live process
    drill(home, "d-2", status="running", pid=dead_pid)

    assert verify(capsys) == (0, "sandbox: 2 records, chain intact\n")

    with History(paths.history_db()) as history:
        (_link, _path), (last, path) = history.links("sandbox")
    assert last.drill_id == "d-2" and last.record["status"] == "aborted"
    assert last.record["failure"]["phase"] == "backup"
    assert "process 4194311 was gone" in last.record["failure"]["reason"]
    assert json.loads(path.read_text())["status"] == "running"  # the journal is untouched


# -- anchors: the chain's head copied to the Object Lock bucket ---------------------------

def anchors_of(links: list) -> list[dict]:
    """Anchors as read back from a bucket, one per record (drtool.store.anchor's body)."""
    return [{"url": f"s3://evidence/sandbox/chain/{e.seq:010d}-{e.drill_id}.json",
             "version_id": f"v{e.seq}",
             **parse_anchor(anchor_body("sandbox", e), "sandbox")} for e in links]


def chain_links(home, count: int = 3) -> list:
    recorded(home, count)
    with History(paths.history_db()) as history:
        return [entry for entry, _path in history.links("sandbox")]


def test_a_history_holding_every_anchored_record_passes(home):
    links = chain_links(home)
    assert first_anchor_break(links, anchors_of(links)) is None
    assert first_anchor_break(links, anchors_of(links)[:1]) is None  # newer not anchored yet


def test_the_newest_records_cut_off_are_named_by_their_anchor(home, capsys):
    links = chain_links(home)
    anchors = anchors_of(links)
    # Cut off the newest record and its journal: the local chain still holds ...
    shutil.rmtree(paths.evidence_dir("sandbox") / "d-3")
    db = sqlite3.connect(paths.history_db())
    db.execute("DELETE FROM drills WHERE drill_id = 'd-3'")
    db.commit()
    db.close()
    assert verify(capsys)[0] == 0
    with History(paths.history_db()) as history:
        left = [entry for entry, _path in history.links("sandbox")]
    # ... but its anchor names it.
    broken = first_anchor_break(left, anchors)
    assert broken is not None and (broken.seq, broken.drill_id) == (3, "d-3")
    assert "missing from the history (records were cut off or removed)" in broken.reason
    assert "(version v3)" in broken.reason


def test_a_rewritten_history_differs_from_its_anchor(home):
    links = chain_links(home)
    anchors = anchors_of(links)
    forged = [dataclasses.replace(links[0], hash="f" * 64), *links[1:]]
    broken = first_anchor_break(forged, anchors)
    assert broken is not None and broken.drill_id == "d-1"
    assert broken.reason.startswith("its hash differs from the one anchored at s3://evidence/")


@pytest.mark.parametrize("body, reason", [
    (b"not json", "not JSON"),
    (b'{"env": "sandbox"}', "not a chain anchor"),
    ("other", "an anchor of 'other', not of 'sandbox'"),
    ("edited", "its record does not match its hash"),
])
def test_an_object_drtool_did_not_write_is_a_finding(home, body, reason):
    links = chain_links(home, 1)
    if body in ("other", "edited"):
        anchor = json.loads(anchor_body("other" if body == "other" else "sandbox", links[0]))
        if body == "edited":
            anchor["record"]["status"] = "passed!"
        body = json.dumps(anchor).encode()
    found = {"url": "s3://evidence/sandbox/chain/0000000001-d-1.json", "version_id": "v9",
             **named_by("0000000001-d-1.json"), **parse_anchor(body, "sandbox")}
    broken = first_anchor_break(links, [found])
    assert broken is not None and (broken.seq, broken.drill_id) == (1, "d-1")
    assert broken.reason.endswith(f"is not an anchor drtool wrote: {reason}")
