import pytest

from drtool.core.manifest import build_manifest, manifest_from_json

PG = {
    "database": "appdb", "consistent_at": "2026-11-22T05:00:02.000+00:00",
    "counts": {"public.a": 3, "public.b": 0}, "sequences": {"public.a_id_seq": 3},
    "sentinel": {"backup_id": "bk-1", "value": "s3cr"}, "heartbeat_at": "2026-11-22T05:00:01+00:00",
    "server_version": "15.8", "pg_dump_version": "pg_dump (PostgreSQL) 15.8", "size": 30,
    "files": [{"path": "postgres/toc.dat", "size": 10, "sha256": "aa"},
              {"path": "postgres/3.dat.gz", "size": 20, "sha256": "bb"}],
    "port": 5432,
}
REDIS = {
    "consistent_at": "2026-11-22T07:00:01+02:00", "counts": {"db0": 7},
    "sentinel": {"key": "drtool:sentinel:bk-1", "value": "s3cr"}, "heartbeat_at": None,
    "redis_version": "7.0.15", "size": 5,
    "files": [{"path": "redis/dump.rdb", "size": 5, "sha256": "cc"}], "port": 6379,
}


def make():
    return build_manifest("bk-1", "sandbox", "2026-11-22T05:00:03+00:00",
                          {"pg-host": PG}, {"redis-host": REDIS}, drill_id="d-1")


def test_manifest_merges_both_stores_files_sorted_with_total_size():
    manifest = make()
    assert [f.path for f in manifest.files] == ["postgres/3.dat.gz", "postgres/toc.dat",
                                                "redis/dump.rdb"]
    assert manifest.size == 35
    assert manifest.postgres.host == "pg-host" and manifest.redis.host == "redis-host"


def test_consistency_time_is_the_earlier_store_in_utc():
    # Redis saved at 05:00:01 UTC (written as +02:00), PostgreSQL at 05:00:02 UTC.
    assert make().consistent_at == "2026-11-22T05:00:01.000+00:00"


def test_manifest_round_trips_through_json():
    manifest = make()
    assert manifest_from_json(manifest.to_json()) == manifest


def test_results_from_two_primaries_are_refused():
    with pytest.raises(ValueError, match="exactly one host"):
        build_manifest("bk-1", "e", "t", {"a": PG, "b": PG}, {"r": REDIS})
    with pytest.raises(ValueError, match="exactly one host"):
        build_manifest("bk-1", "e", "t", {"a": PG}, {})
