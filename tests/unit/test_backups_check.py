"""`drtool backups verify`'s judgement of drtool's store: physical backups against the labels
their repository still holds, and a check that stops when asked."""

from __future__ import annotations

from pathlib import Path

from drtool.core.manifest import Manifest, PhysicalPart
from drtool.drill.backups_check import LABEL_CHECK, store_checks
from drtool.store.local import LocalStore

OLDER, NEWER = "bk-20261201T030000Z-aaaaaa", "bk-20261202T030000Z-bbbbbb"


def physical(backup_id: str, label: str) -> Manifest:
    part = PhysicalPart("main", "pg1", "pgbackrest", "sandbox", "2.45", {"label": label},
                        {"type": "default", "target": ""}, "slot", "7440", "15.8")
    return Manifest(backup_id, "sandbox", "2026-12-01T03:00:00+00:00",
                    "2026-12-01T03:00:00+00:00", (), (), (), 0, physical=(part,))


def store_of(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path)
    store.write_manifest(physical(OLDER, "20261201-030000F"))
    store.write_manifest(physical(NEWER, "20261202-030000F"))
    return store


def test_the_newest_physical_backup_fails_when_its_label_has_left_the_repository(tmp_path):
    store = store_of(tmp_path)
    # Retention expired the older one: said, not failed; the newest is there.
    checks, warnings = store_checks(store, labels={"main": ["20261202-030000F"]})
    assert [(c.name, c.target, c.status) for c in checks] == [
        (LABEL_CHECK, f"{NEWER}/main", "passed")]
    assert warnings == [f"pgBackRest backup 20261201-030000F of main is no longer in stanza "
                        f"sandbox's repository (expired by its retention?): backup {OLDER} "
                        "cannot be restored"]
    # The newest gone: that is the backup a disaster would restore.
    checks, _ = store_checks(store, labels={"main": ["20261201-030000F"]})
    assert [(c.target, c.status) for c in checks] == [(f"{NEWER}/main", "failed"),
                                                      (f"{OLDER}/main", "passed")]
    # Asked for by id, an older one fails too.
    checks, _ = store_checks(store, OLDER, labels={"main": []})
    assert [(c.target, c.status) for c in checks] == [(f"{OLDER}/main", "failed")]
    # A component whose repository was not checked (no longer in the inventory): no verdict.
    assert store_checks(store, labels={}) == ([], [])


def test_the_store_check_stops_before_the_next_backup_when_told(tmp_path):
    store = store_of(tmp_path)
    answers = iter([None, "backups exceeded its time limit of 5 s"])
    checks, warnings = store_checks(store, labels={"main": ["20261202-030000F"]},
                                    stop=lambda: next(answers))
    assert [c.target for c in checks] == [f"{NEWER}/main"]
    assert warnings == [f"backups verify stopped before backup {OLDER} and the older ones: "
                        "backups exceeded its time limit of 5 s"]
