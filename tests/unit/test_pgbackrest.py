"""Reading pgBackRest (info --output=json, its version line) and PostgreSQL's recovery log,
and the restore command drtool builds. The fixtures are real: `pgbackrest info` of the
sandbox's stanza (pgBackRest 2.45) and the log of a recovery to an LSN (PostgreSQL 15)."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests import module_utils

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "pgbackrest"


pgb = module_utils.load("pgbackrest")
INFO = json.loads((FIXTURES / "info.json").read_text())
LOG = (FIXTURES / "recovery.log").read_text()


def info_with(change: Any) -> str:
    data = copy.deepcopy(INFO)
    change(data[0])
    return json.dumps(data)


def test_the_newest_backup_is_read_with_what_the_manifest_keeps():
    backup = pgb.newest_backup(json.dumps(INFO), "sandbox")
    assert backup["label"] == "20261206-032853F" and backup["type"] == "full"
    assert (backup["lsn_start"], backup["lsn_stop"]) == ("0/7000028", "0/8000050")
    assert (backup["wal_start"], backup["wal_stop"]) == (
        "000000010000000000000007", "000000010000000000000008")
    assert backup["stopped_at_epoch"] - backup["started_at_epoch"] == 3
    assert backup["size"] == 75987768 and backup["repository_size"] == 27177370
    assert backup["repository"] == {"key": 1, "cipher": "none"}
    assert (backup["archive_min"], backup["archive_max"]) == (
        "000000010000000000000001", "000000010000000000000008")


def test_of_several_backups_the_newest_by_stop_time_or_the_one_labelled():
    def two(stanza: dict) -> None:
        older = copy.deepcopy(stanza["backup"][0])
        newer = copy.deepcopy(older)
        newer.update(label="20261206-040000F_20261206-050000I", type="incr")
        newer["timestamp"] = {"start": 1796530000, "stop": 1796530010}
        stanza["backup"] = [newer, older]  # not in time order

    text = info_with(two)
    assert pgb.newest_backup(text, "sandbox")["label"] == "20261206-040000F_20261206-050000I"
    assert pgb.newest_backup(text, "sandbox", "20261206-032853F")["type"] == "full"
    with pytest.raises(pgb.PgBackRestError, match="stanza sandbox has no backup 2026-x"):
        pgb.newest_backup(text, "sandbox", "2026-x")


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.update(backup=[]), "stanza sandbox has no backup yet"),
    (lambda s: s["backup"][0].update(error=True),
     "backup 20261206-032853F of stanza sandbox is marked in error"),
    (lambda s: s.update(status={"code": 3, "message": "missing stanza data"}),
     r"stanza sandbox: missing stanza data \(pgbackrest status code 3\)"),
    (lambda s: s.update(name="other"), "stanza sandbox is not in the repository "
                                       r"\(pgbackrest info lists other\)"),
])
def test_a_stanza_that_cannot_be_restored_from_says_why(change, message):
    with pytest.raises(pgb.PgBackRestError, match=message):
        pgb.newest_backup(info_with(change), "sandbox")


def test_output_that_is_not_info_is_refused():
    with pytest.raises(pgb.PgBackRestError, match="did not print JSON"):
        pgb.newest_backup("ERROR: [055]: unable to load info file", "sandbox")
    with pytest.raises(pgb.PgBackRestError, match="not a list of stanzas"):
        pgb.newest_backup("{}", "sandbox")


def test_the_version_line():
    assert pgb.version_of("pgBackRest 2.45\n") == "2.45"
    assert pgb.version_of("pgBackRest 2.54.2") == "2.54.2"
    with pytest.raises(pgb.PgBackRestError, match="not 'pgBackRest N.N'"):
        pgb.version_of("command not found")


def test_a_restore_never_archives_and_promotes_at_its_target():
    argv = pgb.restore_argv("pgbackrest", "main", "/srv/pg/data", "lsn", "0/80000408",
                            exclusive=True, config="/etc/pgbackrest/pgbackrest.conf",
                            backup_set="20261206-032853F")
    assert argv == ["pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=main",
                    "--pg1-path=/srv/pg/data", "--archive-mode=off", "--no-link-all", "--delta",
                    "--set=20261206-032853F", "--type=lsn", "--target=0/80000408",
                    "--target-exclusive", "--target-action=promote", "restore"]
    # The end of the archive: no type, no target; still never archiving.
    assert pgb.restore_argv("pgbackrest", "main", "/d") == [
        "pgbackrest", "--stanza=main", "--pg1-path=/d", "--archive-mode=off", "--no-link-all",
        "--delta", "restore"]
    # A time as pgBackRest reads it to choose the backup: a space, not a T; in UTC.
    timed = pgb.restore_argv("pgbackrest", "main", "/d", "time", "2026-12-06T04:38:00.5+01:00")
    assert timed[-4:] == ["--type=time", "--target=2026-12-06 03:38:00.500000+00",
                          "--target-action=promote", "restore"]
    immediate = pgb.restore_argv("pgbackrest", "m", "/d", "immediate")
    assert "--type=immediate" in immediate
    assert not [arg for arg in immediate if arg.startswith("--target=")]


@pytest.mark.parametrize(("kind", "target", "message"), [
    ("lsn", "80000408", "is not an LSN"),
    ("time", "2026-12-06 03:38", "has no time zone"),
    ("time", "yesterday", "is not an ISO-8601 time"),
    ("time", None, "needs a target"),
    ("latest", "x", "is not one of"),
])
def test_a_target_drtool_cannot_pass_is_refused(kind, target, message):
    with pytest.raises(pgb.PgBackRestError, match=message):
        pgb.restore_argv("pgbackrest", "main", "/d", kind, target)


def test_the_log_says_where_the_newest_recovery_stopped():
    outcome = pgb.recovery_outcome(LOG)
    assert outcome["started"] is True
    assert outcome["stopping"] == 'after WAL location (LSN) "0/80000408"'
    assert outcome["redo_done_lsn"] == "0/80000408"
    assert outcome["consistent_lsn"] == "0/8000050"
    assert outcome["timeline"] == 2
    assert outcome["archive_recovery_complete"] and outcome["ready"]


def test_the_promotion_is_timed_from_the_newest_recoverys_end_to_the_primary_being_ready():
    # Two recoveries in one log: the newest stopped at .493 and was ready at .817.
    assert pgb.promotion_seconds(LOG) == 0.324
    # Read before the postmaster's line came: recovery ended, promotion not yet timed.
    assert pgb.promotion_seconds(LOG[:LOG.rindex("database system is ready")]) is None
    assert pgb.promotion_seconds("LOG:  database system is ready to accept connections\n") is None


def test_the_log_is_read_again_until_it_says_the_promotion_ended():
    behind = LOG[:LOG.rindex("database system is ready")]
    reads = iter([behind, behind, LOG])
    text = pgb.settled_log(lambda: next(reads), until=time.monotonic() + 5, pause=0.01)
    assert text == LOG and pgb.promotion_seconds(text) == 0.324


def test_a_log_that_never_says_it_is_read_until_the_deadline_and_no_longer():
    behind = LOG[:LOG.rindex("database system is ready")]
    reads: list[str] = []

    def read() -> str:
        reads.append(behind)
        return behind

    began = time.monotonic()
    assert pgb.settled_log(read, until=began + 0.3, pause=0.05) == behind
    assert 0.3 <= time.monotonic() - began < 2 and len(reads) > 2
    # A log that says no recovery ended is not waited for at all.
    reads.clear()
    assert pgb.settled_log(lambda: reads.append("none") or "LOG:  started\n",
                           until=began + 60) == "LOG:  started\n"
    assert reads == ["none"]


def test_a_log_of_a_recovery_that_ended_short_of_its_target_says_so():
    cut = LOG[:LOG.rindex("recovery stopping")]
    cut += ("2026-12-06 03:38:52.493 UTC [29590] FATAL:  recovery ended before configured "
            "recovery target was reached\n")
    outcome = pgb.recovery_outcome(cut)
    assert outcome["started"] and outcome["stopping"] is None
    assert not outcome["archive_recovery_complete"]


def test_a_log_without_a_recovery_says_none_started():
    assert pgb.recovery_outcome("LOG:  database system is ready to accept connections\n")[
        "started"] is False


def test_a_recovery_short_of_its_target_says_which_wal_it_lacked():
    log = "\n".join([
        '2026-12-06 03:41:51.232 UTC [3777] LOG:  restored log file "000000010000000000000012" '
        "from archive",
        "2026-12-06 03:41:51.240 UTC [3777] LOG:  P00  ERROR: [045]: WAL file "
        "'000000010000000000000013' ... checksum mismatch",
        "2026-12-06 03:41:51.253 UTC [3777] LOG:  redo done at 0/120003C0 system usage: ...",
        "2026-12-06 03:41:51.253 UTC [3777] FATAL:  recovery ended before configured recovery "
        "target was reached"])
    outcome = pgb.recovery_outcome("LOG:  starting point-in-time recovery to ...\n" + log)
    assert pgb.short_of_target(outcome) == (
        "replay stopped at 0/120003C0; after WAL segment 000000010000000000000012: the next "
        "one is missing from the archive or unreadable; pgbackrest: ERROR: [045]: WAL file "
        "'000000010000000000000013' ... checksum mismatch")


def test_a_recovery_to_the_end_must_restore_the_archives_newest_segment():
    assert pgb.archive_end(json.dumps(INFO), "sandbox") == "000000010000000000000008"
    assert pgb.archive_end(info_with(lambda s: s.update(archive=[])), "sandbox") is None
    reached = {"last_restored_wal": "000000010000000000000008", "archive_errors": []}
    assert pgb.short_of_end(reached, "000000010000000000000008") is None
    # A later timeline is further on, whatever the segment number.
    assert pgb.short_of_end({"last_restored_wal": "000000020000000000000003"},
                            "000000010000000000000008") is None
    short = {"last_restored_wal": "000000010000000000000006",
             "archive_errors": ["ERROR: [045]: WAL file ... checksum mismatch"]}
    assert pgb.short_of_end(short, "000000010000000000000008") == (
        "recovery to the end of the archive stopped after WAL 000000010000000000000006; the "
        "archive's newest segment is 000000010000000000000008; pgbackrest: ERROR: [045]: "
        "WAL file ... checksum mismatch")
    assert pgb.short_of_end({"last_restored_wal": None}, "000000010000000000000008").startswith(
        "recovery to the end of the archive stopped after WAL (none restored)")


def test_a_time_target_takes_the_newest_backup_that_ended_before_it():
    stop = INFO[0]["backup"][0]["timestamp"]["stop"]
    assert pgb.newest_backup(json.dumps(INFO), "sandbox", before=stop + 1)["label"] == (
        "20261206-032853F")
    with pytest.raises(pgb.PgBackRestError, match="no backup that ended before"):
        pgb.newest_backup(json.dumps(INFO), "sandbox", before=stop)


VERIFY_ERROR = (FIXTURES / "verify-error.txt").read_text()
VERIFY_OK = """stanza: sandbox
status: ok
  archiveId: 15-1, total WAL checked: 57, total valid WAL: 57
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261206-060844F, status: valid, total files checked: 1612, total valid files: 1612
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
"""


def test_verify_names_each_file_it_found_wrong_and_counts_what_it_checked_once():
    # pgBackRest 2.45 exits 0 here: the summary is the verdict. With the console at info,
    # the summary comes twice; it is counted once.
    status, problems, checked = pgb.verify_findings(VERIFY_ERROR)
    assert status == "error"
    assert problems == ["invalid checksum '20261206-060844F/pg_data/base/5/2838.lz4'",
                        "20261206-060844F: checksum invalid 1",
                        "backup 20261206-060844F: status invalid"]
    assert checked == {"files": 1612, "wal": 54}


def test_a_backup_without_its_manifest_a_missing_file_or_no_backup_at_all_fails():
    # As pgBackRest prints them (src/command/verify/verify.c): a backup's status inline, a
    # missing backup file on an INFO line, an empty repository as "backup: none found".
    text = "\n".join([
        "2026-12-06 07:00:30.020 P01   INFO: file missing '20261206-070000F/pg_data/PG_VERSION'",
        "2026-12-06 07:00:30.021 P01   WARN: file missing '15-1/0000000100000000/x.lz4'",
        "stanza: sandbox", "status: error",
        "  backup: 20261206-060844F, status: manifest missing, total files checked: 0, "
        "total valid files: 0",
        "  backup: 20261206-070000F, status: invalid, total files checked: 3, "
        "total valid files: 2",
        "    missing: 1, checksum invalid: 0, size invalid: 0, other: 0",
        "  backup: 20261206-080000F, status: in-progress, total files checked: 0, "
        "total valid files: 0"])
    status, problems, _checked = pgb.verify_findings(text)
    assert status == "error"
    # A WAL segment verify misses is only a warning there (expire removes them): drtool's
    # gap finder judges the archive; the backup in progress is the schedule's, not wrong.
    assert problems == ["file missing '20261206-070000F/pg_data/PG_VERSION'",
                        "20261206-070000F: missing 1",
                        "backup 20261206-060844F: status manifest missing",
                        "backup 20261206-070000F: status invalid"]
    empty = "stanza: sandbox\nstatus: ok\n  archiveId: none found\n  backup: none found"
    assert pgb.verify_findings(empty)[1] == ["the repository holds no backup"]


def test_a_verify_that_found_nothing_wrong_and_one_that_printed_no_summary():
    assert pgb.verify_findings(VERIFY_OK) == ("ok", [], {"files": 1612, "wal": 57})
    assert pgb.verify_findings("INFO: verify command end: completed successfully") == (
        None, [], {"files": 0, "wal": 0})


def listing(*names: str) -> str:
    entries: dict[str, Any] = {".": {"type": "path"}, "archive.info": {"type": "file"}}
    for name in names:
        folder = name.split("/")[0]
        entries[folder] = {"type": "path"}
        entries[f"{folder}/{name.split('/')[1][:16]}"] = {"type": "path"}
        entries[name] = {"type": "file", "size": 1}
    return json.dumps(entries)


def segment(timeline: int, log: int, number: int, suffix: str = "-" + "a" * 40 + ".lz4") -> str:
    return f"15-1/{timeline:08X}{log:08X}/{timeline:08X}{log:08X}{number:08X}{suffix}"


def test_a_segment_missing_from_the_middle_of_the_archive_is_a_gap():
    gaps = pgb.wal_gaps((FIXTURES / "archive-ls.json").read_text())
    assert gaps == [{"archive_id": "15-1", "timeline": 1, "segments": 1,
                     "first_missing": "000000010000000000000013",
                     "last_missing": "000000010000000000000013"}]
    assert pgb.describe_gap(gaps[0]) == (
        "WAL 000000010000000000000013 missing from the archive (15-1, timeline 1): no "
        "recovery replays past it")


def test_a_hole_no_backup_needs_is_retention_not_a_broken_archive():
    # Two backups: the older one's WAL 03-04, the newer's 0A-0B. Retention expired 05-09
    # (only the older backup's own WAL kept): no restore needs them. A hole in the newer
    # backup's own WAL, or after its start, breaks every recovery from it.
    def two_backups(stanza: dict[str, Any]) -> None:
        older = copy.deepcopy(stanza["backup"][0])
        older["label"], older["archive"] = "20261205-030000F", {
            "start": "000000010000000000000003", "stop": "000000010000000000000004"}
        older["timestamp"] = {"start": 1, "stop": 2}
        stanza["backup"][0]["archive"] = {"start": "00000001000000000000000A",
                                          "stop": "00000001000000000000000B"}
        stanza["backup"].insert(0, older)

    info = info_with(two_backups)
    names = [segment(1, 0, n) for n in (3, 4, 0xA, 0xB, 0xC, 0xE)]
    gaps = pgb.wal_gaps(listing(*names))
    assert [(g["first_missing"][-2:], g["last_missing"][-2:]) for g in gaps] == [
        ("05", "09"), ("0D", "0D")]
    blocking, expired, labels = pgb.split_gaps(gaps, info, "sandbox")
    assert [g["first_missing"][-2:] for g in blocking] == ["0D"]  # after the newest's start
    assert [g["first_missing"][-2:] for g in expired] == ["05"]
    assert labels == ["20261205-030000F", "20261206-032853F"]
    assert pgb.describe_expired(expired[0]).startswith(
        "WAL 000000010000000000000005 to 000000010000000000000009 missing from the archive "
        "(15-1, timeline 1): no backup needs it")
    # A hole inside the older backup's own WAL: that backup cannot be restored at all.
    inside = pgb.wal_gaps(listing(*[segment(1, 0, n) for n in (3, 5, 0xA, 0xB)]))
    blocking, expired, _ = pgb.split_gaps(inside, info, "sandbox")
    assert [g["first_missing"][-2:] for g in blocking] == ["04"]
    assert [g["first_missing"][-2:] for g in expired] == ["06"]
    # A later timeline (a promotion after the newest backup): recovery to the end follows it.
    later = pgb.wal_gaps(listing(*[segment(2, 0, n) for n in (0xC, 0xE)]))
    assert pgb.split_gaps(later, info, "sandbox")[0] == later
    # No backup at all: every hole counts.
    none = info_with(lambda stanza: stanza.update(backup=[]))
    assert pgb.split_gaps(gaps, none, "sandbox")[0] == gaps


def test_gaps_across_log_files_count_the_segments_a_log_file_holds():
    # 16 MB segments: a log file holds 256 (00 to FF), as the archive's full one shows.
    names = [segment(1, 0, n) for n in range(0xFC, 0x100)] + [segment(1, 1, 2)]
    [gap] = pgb.wal_gaps(listing(*names))
    assert (gap["first_missing"], gap["last_missing"], gap["segments"]) == (
        "000000010000000100000000", "000000010000000100000001", 2)
    # 64 MB segments, told: 64 a log file, and 3F then 00 follow each other.
    names = [segment(1, 0, 0x3E), segment(1, 0, 0x3F), segment(1, 1, 0)]
    assert pgb.wal_gaps(listing(*names), segment_size=64 * 1024 * 1024) == []
    # Untold, and no full log file to count from: across log files nothing is judged.
    names = [segment(1, 0, 0x3D), segment(1, 1, 0)]
    assert pgb.wal_gaps(listing(*names)) == []


def test_a_new_timeline_a_partial_segment_and_history_files_are_no_gap():
    partial = ".partial-" + "b" * 40 + ".lz4"
    names = [segment(1, 0, n) for n in (3, 4)] + [
        segment(1, 0, 5, partial), segment(2, 0, 5), segment(2, 0, 6),
        segment(1, 0, 4, ".00000028.backup")]
    entries = json.loads(listing(*names))
    entries["15-1/00000002.history"] = {"type": "file", "size": 1}  # where pgBackRest keeps it
    assert pgb.wal_gaps(json.dumps(entries)) == []
    # A partial segment counts as the segment it is: the hole before it is seen.
    [gap] = pgb.wal_gaps(listing(segment(1, 0, 3), segment(1, 0, 5, partial)))
    assert (gap["first_missing"], gap["segments"]) == ("000000010000000000000004", 1)


def test_a_listing_that_is_not_json_is_refused():
    with pytest.raises(pgb.PgBackRestError, match="did not print JSON"):
        pgb.wal_gaps("ERROR: [055]: unable to list")
