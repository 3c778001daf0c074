import json
import os

import pytest

from drtool.core.model import Check, Journal, PhaseRecord, TaskRecord, journal_from_dict
from drtool.drill.journal_writer import JournalWriter, load_journals
from drtool.errors import ConfigError
from drtool.store.local import LocalStore
from drtool.util.files import atomic_write


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "deep" / "file.json"
    atomic_write(target, "one")
    atomic_write(target, "two")
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["file.json"]


def test_journal_round_trips_and_is_saved_as_json(tmp_path):
    journal = Journal("d-1", "sandbox", "drill", "2026-11-22T05:00:00+00:00",
                      phases=[PhaseRecord("backup", tasks=[TaskRecord("h", "t", "a", "ok",
                                                                      None, None, 0.1)])],
                      checks=[Check("c", "t", 1, 1, "passed")])
    writer = JournalWriter(tmp_path / "d-1", journal)
    writer.save()
    data = json.loads(writer.path.read_text())
    assert data["schema_version"] == 10 and data["phases"][0]["tasks"][0]["host"] == "h"
    assert journal_from_dict(data) == journal
    assert [j.drill_id for _p, j in load_journals(tmp_path)] == ["d-1"]


def test_unreadable_journals_are_skipped_not_fatal(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "journal.json").write_text("{not json")
    assert load_journals(tmp_path) == []


def test_the_store_refuses_unknown_and_malformed_backup_ids(tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(ConfigError, match="no backup 'bk-x'"):
        store.read_manifest("bk-x")
    with pytest.raises(ConfigError, match="not a backup id"):
        store.backup_path("../../etc")


def test_a_backup_without_manifest_is_listed_as_incomplete(tmp_path):
    (tmp_path / "bk-2").mkdir()
    (tmp_path / "bk-1").mkdir()
    summaries = LocalStore(tmp_path).catalog()
    assert [(s.id, s.complete) for s in summaries] == [("bk-2", False), ("bk-1", False)]
