from drtool.core import verdict
from drtool.core.manifest import build_manifest
from drtool.core.model import Objectives

from .test_manifest import PG, REDIS

MANIFEST = build_manifest("bk-1", "sandbox", "2026-11-22T05:00:03+00:00",
                          {"main": {"appdb": PG}}, {"cache": REDIS},
                          {"main": "pg", "cache": "rd"})
DB, INSTANCE = MANIFEST.postgres[0], MANIFEST.redis[0]
GOOD_PG = {
    "exists": True, "counts": {"public.a": 3, "public.b": 0},
    "sequences": {"public.a_id_seq": 3}, "sentinel_value": "s3cr",
    "write_check": {"written": "w-1", "read_back": "w-1"},
}


def failed_lines(checks):
    return [c.describe() for c in checks if not c.passed]


def test_a_faithful_restore_passes_every_postgres_check():
    checks = verdict.postgres_checks(DB, "target/appdb", GOOD_PG)
    assert failed_lines(checks) == []
    assert {c.name for c in checks} == {"postgres.database", "postgres.row_count",
                                        "postgres.sequence", "postgres.sentinel", "postgres.write"}


def test_a_missing_row_fails_naming_the_table_and_both_counts():
    facts = dict(GOOD_PG, counts={"public.a": 2, "public.b": 0})
    assert failed_lines(verdict.postgres_checks(DB, "target/appdb", facts)) == [
        "postgres.row_count target/appdb:public.a: expected 3, actual 2"]


def test_an_extra_or_missing_table_fails():
    facts = dict(GOOD_PG, counts={"public.a": 3, "public.c": 1})
    lines = failed_lines(verdict.postgres_checks(DB, "target/appdb", facts))
    assert "postgres.row_count target/appdb:public.b: expected 0, actual None" in lines
    assert "postgres.row_count target/appdb:public.c: expected None, actual 1" in lines


def test_growing_tables_may_hold_more_rows_but_not_fewer():
    more = dict(GOOD_PG, counts={"public.a": 9, "public.b": 0})
    assert failed_lines(verdict.postgres_checks(DB, "t/appdb", more, ["public.a"])) == []
    fewer = dict(GOOD_PG, counts={"public.a": 2, "public.b": 0})
    assert len(failed_lines(verdict.postgres_checks(DB, "t/appdb", fewer, ["public.a"]))) == 1


def test_a_sequence_that_went_backwards_fails():
    facts = dict(GOOD_PG, sequences={"public.a_id_seq": 2})
    assert failed_lines(verdict.postgres_checks(DB, "t/appdb", facts)) == [
        "postgres.sequence t/appdb:public.a_id_seq: expected >= 3, actual 2"]


def test_a_wrong_sentinel_means_another_backup_was_restored():
    facts = dict(GOOD_PG, sentinel_value="other")
    assert failed_lines(verdict.postgres_checks(DB, "t/appdb", facts)) == [
        "postgres.sentinel t/appdb:drtool.sentinel: expected s3cr, actual other"]


def test_a_write_that_did_not_read_back_fails():
    facts = dict(GOOD_PG, write_check={"written": "w-1", "read_back": None})
    assert len(failed_lines(verdict.postgres_checks(DB, "t/appdb", facts))) == 1


def test_a_missing_database_fails_once_and_stops_there():
    checks = verdict.postgres_checks(DB, "t/appdb", {"exists": False})
    assert [c.describe() for c in checks] == [
        "postgres.database t/appdb: expected exists, actual missing"]
    assert not checks[0].passed


def test_redis_key_counts_sentinel_and_ping():
    good = {"ping": True, "counts": {"db0": 7}, "sentinel_value": "s3cr"}
    assert failed_lines(verdict.redis_checks(INSTANCE, "r", good)) == []
    bad = {"ping": True, "counts": {"db0": 6, "db1": 1}, "sentinel_value": None}
    assert failed_lines(verdict.redis_checks(INSTANCE, "r", bad)) == [
        "redis.key_count r:db0: expected 7, actual 6",
        "redis.key_count r:db1: expected None, actual 1",
        "redis.sentinel r:drtool:sentinel:bk-1: expected s3cr, actual None",
    ]


def test_the_restored_heartbeat_must_be_the_backups():
    same = {"postgres": {"main/appdb": {"heartbeat_at": PG["heartbeat_at"]}}}
    assert failed_lines(verdict.heartbeat_checks(MANIFEST, same)) == []
    older = {"postgres": {"main/appdb": {"heartbeat_at": "2026-11-22T04:00:00+00:00"}}}
    assert len(failed_lines(verdict.heartbeat_checks(MANIFEST, older))) == 1


def test_a_database_the_backup_lacks_fails_rather_than_passing_unjudged():
    checks = verdict.postgres_checks(None, "t/main/other", GOOD_PG)
    assert failed_lines(checks) == [
        "postgres.database t/main/other: expected in the backup, actual not in the backup "
        "(the backup holds no part for this database)"]


def test_service_health_needs_200():
    assert failed_lines(verdict.service_checks({"api": {"status": 200, "url": "u"}})) == []
    assert failed_lines(verdict.service_checks({"api": {"status": 503, "url": "u"}})) == [
        "service.health api u: expected 200, actual 503"]


def test_objectives_judge_rto_and_the_measured_rpo():
    objectives = Objectives(rto_s=60, rpo_s=30)
    assert failed_lines(verdict.objective_checks(objectives, 59.9, 29.0, 10.0)) == []
    lines = failed_lines(verdict.objective_checks(objectives, 61.0, 31.0, 10.0))
    assert lines == ["objective.rto drill: expected <= 60, actual 61.0",
                     "objective.rpo drill: expected <= 30, actual 31.0 (measured)"]


def test_a_negative_rto_or_rpo_never_passes_its_objective():
    # An RTO read off a wall clock set back an hour, and a heartbeat stamped after the
    # disaster by a clock ahead of this machine's: neither measures anything.
    rto, rpo = verdict.objective_checks(Objectives(rto_s=300, rpo_s=120), -3536.75, -5.0, 10.0)
    assert not rto.passed and not rpo.passed
    assert rto.describe() == ("objective.rto drill: expected <= 300, actual -3536.75 (negative: "
                              "the clocks it was read from disagree, so it proves nothing)")
    assert rpo.detail.startswith("measured; negative")
    _rto, age = verdict.objective_checks(Objectives(300, 120), 10.0, None, -1.0)
    assert not age.passed and age.detail.startswith("backup age; negative")


def test_rpo_falls_back_to_backup_age_and_an_unverified_restore_misses_rto():
    checks = verdict.objective_checks(Objectives(60, 30), None, None, 12.0)
    rto, rpo = checks
    assert not rto.passed and rto.detail == "the restore was not verified"
    assert rpo.passed and rpo.actual == 12.0 and rpo.detail == "backup age"
