import dataclasses
import json

import pytest

from drtool.core.manifest import (
    FileEntry,
    ManifestError,
    build_manifest,
    files_problems,
    manifest_from_json,
    path_problem,
)
from drtool.errors import EXIT_FAILED
from drtool.store.base import ManifestInvalid
from drtool.store.local import LocalStore
from drtool.store.s3 import S3Store
from drtool.store.settings import S3Connection, S3StoreSettings

PG = {
    "database": "appdb", "consistent_at": "2026-11-22T05:00:02.000+00:00",
    "counts": {"public.a": 3, "public.b": 0}, "sequences": {"public.a_id_seq": 3},
    "sentinel": {"backup_id": "bk-1", "value": "s3cr"}, "heartbeat_at": "2026-11-22T05:00:01+00:00",
    "server_version": "15.8", "pg_dump_version": "pg_dump (PostgreSQL) 15.8", "size": 30,
    "files": [{"path": "postgres/toc.dat", "size": 10, "sha256": "a" * 64},
              {"path": "postgres/3.dat.gz", "size": 20, "sha256": "b" * 64}],
    "port": 5432,
}
REDIS = {
    "consistent_at": "2026-11-22T07:00:01+02:00", "counts": {"db0": 7},
    "sentinel": {"key": "drtool:sentinel:bk-1", "value": "s3cr"}, "heartbeat_at": None,
    "redis_version": "7.0.15", "size": 5,
    "files": [{"path": "redis/dump.rdb", "size": 5, "sha256": "c" * 64}], "port": 6379,
}


def make():
    return build_manifest("bk-1", "sandbox", "2026-11-22T05:00:03+00:00",
                          {"main": {"appdb": PG}}, {"cache": REDIS},
                          {"main": "pg-host", "cache": "redis-host"}, drill_id="d-1")


def test_manifest_merges_both_stores_files_sorted_with_total_size():
    manifest = make()
    assert [f.path for f in manifest.files] == ["postgres/3.dat.gz", "postgres/toc.dat",
                                                "redis/dump.rdb"]
    assert manifest.size == 35 and manifest.manifest_version == 2
    (pg,), (rd,) = manifest.postgres, manifest.redis
    assert (pg.host, pg.component, pg.database, pg.key) == ("pg-host", "main", "appdb",
                                                             "main/appdb")
    assert (rd.host, rd.key) == ("redis-host", "cache")
    assert manifest.postgres_part("main/appdb") == pg and manifest.redis_part("cache") == rd


def test_consistency_time_is_the_earlier_store_in_utc():
    # Redis saved at 05:00:01 UTC (written as +02:00), PostgreSQL at 05:00:02 UTC.
    assert make().consistent_at == "2026-11-22T05:00:01.000+00:00"


def test_manifest_round_trips_through_json():
    manifest = make()
    assert manifest_from_json(manifest.to_json()) == manifest


def test_every_database_of_every_cluster_and_every_instance_is_a_part():
    shop = dict(PG, database="shop", files=[{"path": "postgres/main/shop/toc.dat", "size": 1,
                                             "sha256": "d" * 64}])
    manifest = build_manifest("bk-1", "e", "2026-11-22T05:00:03+00:00",
                              {"main": {"appdb": PG, "shop": shop}}, {},
                              {"main": "pg-host"})
    assert [p.key for p in manifest.postgres] == ["main/appdb", "main/shop"]
    assert manifest.redis == () and len(manifest.files) == 3
    with pytest.raises(ValueError, match="no component reported a backup"):
        build_manifest("bk-1", "e", "t", {}, {}, {})


def test_a_version_1_manifest_still_reads_as_one_part_of_each():
    data = json.loads(make().to_json())
    data.update(manifest_version=1, postgres=data["postgres"][0], redis=data["redis"][0])
    for part in (data["postgres"], data["redis"]):
        del part["component"]
    old = manifest_from_json(json.dumps(data))
    assert old.manifest_version == 1
    assert [p.key for p in old.postgres] == ["postgres/appdb"]
    assert [r.key for r in old.redis] == ["redis"]


# -- file paths: relative, normalised, inside a component's folder, printable UTF-8 ----------

@pytest.mark.parametrize("path", ["postgres/toc.dat", "postgres/3.dat.gz", "redis/dump.rdb",
                                  "postgres/sub/dir/file", "redis/é.rdb", "postgres/..dat",
                                  "postgres/a..b", "postgres/.hidden"])
def test_a_relative_normalised_path_inside_a_component_is_a_file_path(path):
    assert path_problem(path) is None


@pytest.mark.parametrize(("path", "problem"), [
    ("../../x", "file path '../../x' is not normalised"),
    ("/tmp/x", "file path '/tmp/x' is absolute"),
    ("//tmp/x", "file path '//tmp/x' is absolute"),
    ("postgres/../../x", "file path 'postgres/../../x' is not normalised"),
    ("postgres/..", "is not normalised"),
    ("postgres//toc.dat", "is not normalised"),
    ("postgres/./toc.dat", "is not normalised"),
    ("./postgres/toc.dat", "is not normalised"),
    ("postgres/", "is not normalised"),
    ("postgres\\..\\..\\x", "holds a backslash"),
    ("postgres/..\\x", "holds a backslash"),
    ("C:\\x", "holds a backslash"),
    ("x", "file path 'x' is not inside a component's folder (postgres/, redis/, files/)"),
    ("postgres", "is not inside a component's folder"),
    ("etc/passwd", "is not inside a component's folder"),
    ("Postgres/toc.dat", "is not inside a component's folder"),
    ("postgres/a\x1b[2Jb", r"file path 'postgres/a\x1b[2Jb' holds a control character"),
    ("postgres/a\nb", r"file path 'postgres/a\nb' holds a control character"),
    ("postgres/a\x00b", r"file path 'postgres/a\x00b' holds a control character"),
    ("postgres/a\x7fb", r"'postgres/a\x7fb' holds a control character"),
    ("postgres/a\u202eb", r"'postgres/a\u202eb' holds a control character"),
    ("postgres/a\u2028b", r"'postgres/a\u2028b' holds a control character"),
    ("postgres/\udcff.dat", r"file path 'postgres/\udcff.dat' is not valid UTF-8"),
    ("", "a file path is empty"),
    (None, "a file path is not a string: None"),
    (["postgres", "x"], "is not a string"),
])
def test_a_path_that_could_leave_the_backup_folder_is_refused_by_name(path, problem):
    found = path_problem(path)
    assert found is not None and problem in found
    assert all(ch.isprintable() for ch in found)  # one line, escaped as Python writes it


def test_every_problem_of_the_files_list_is_named():
    sha = "d" * 64
    files = [{"path": "postgres/a", "size": 1, "sha256": sha},
             {"path": "postgres/a", "size": 1, "sha256": sha},
             {"path": "postgres/a/b", "size": 1, "sha256": sha},
             {"path": "redis/dump.rdb", "size": -1, "sha256": sha},
             {"path": "redis/x", "size": True, "sha256": sha.upper()},
             {"path": "redis/y", "size": 1},
             "postgres/z"]
    assert files_problems(files) == [
        "file path 'postgres/a' is listed twice",
        "file 'redis/dump.rdb': size -1 is not a number of bytes",
        "file 'redis/x': size True is not a number of bytes",
        f"file 'redis/x': sha256 '{sha.upper()}' is not a hex sha256",
        "files[5] is not an object with path, size and sha256",
        "files[6] is not an object with path, size and sha256",
        "file path 'postgres/a' is also the folder of another file",
    ]
    assert files_problems({"postgres/a": {}}) == ["'files' is not a list"]


def manifest_data(**changes):
    data = json.loads(make().to_json())
    data.update(changes)
    return data


def test_a_manifest_with_a_path_outside_its_folder_is_not_read():
    for path in ("../../x", "/tmp/x"):
        files = [*manifest_data()["files"], {"path": path, "size": 1, "sha256": "e" * 64}]
        with pytest.raises(ManifestError, match=f"file path '{path}' is "):
            manifest_from_json(json.dumps(manifest_data(files=files)))


@pytest.mark.parametrize(("text", "problem"), [
    ("{not json", "not valid JSON: Expecting property name"),
    ("", "not valid JSON: Expecting value"),
    ("[]", "not a JSON object"),
    (json.dumps(manifest_data(files=None)), "'files' is not a list"),
    (json.dumps({k: v for k, v in manifest_data().items() if k != "postgres"}),
     "the field 'postgres' is missing"),
    (json.dumps(manifest_data(redis={"host": "r"})), "a field is malformed"),
    (json.dumps(manifest_data(extra=[])), "'extra' is not an object"),
])
def test_a_manifest_that_is_not_one_says_why(text, problem):
    with pytest.raises(ManifestError, match="^" + problem.replace("(", r"\(")):
        manifest_from_json(text)


def test_a_manifest_of_another_backup_is_refused_and_long_lists_are_cut():
    with pytest.raises(ManifestError, match="^it names backup 'bk-1', not 'bk-2'$"):
        manifest_from_json(make().to_json(), "bk-2")
    assert manifest_from_json(make().to_json(), "bk-1") == make()
    files = [{"path": f"../{n}", "size": 1, "sha256": "e" * 64} for n in range(5)]
    with pytest.raises(ManifestError, match=r"'\.\./2' is not normalised .*\(and 2 more\)$"):
        manifest_from_json(json.dumps(manifest_data(files=files)))


def test_the_local_store_reads_a_bad_manifest_as_a_failed_integrity_check(tmp_path):
    store = LocalStore(tmp_path)
    folder = tmp_path / "bk-1"
    folder.mkdir()
    manifest = folder / "manifest.json"
    for body, problem in ((b"{not json", "not valid JSON"),
                          (b'{"files": [{"path": "\xff"}]}', "not valid UTF-8"),
                          (make().to_json().replace("postgres/toc.dat", "../../x").encode(),
                           "file path '../../x' is not normalised")):
        manifest.write_bytes(body)
        with pytest.raises(ManifestInvalid) as caught:
            store.read_manifest("bk-1")
        assert caught.value.exit_code == EXIT_FAILED and caught.value.where == str(manifest)
        assert problem in caught.value.problem and "\n" not in caught.value.message
        assert [(s.id, s.complete) for s in store.catalog()] == [("bk-1", False)]
    manifest.write_text(make().to_json())
    assert store.read_manifest("bk-1") == make()


def test_s3_fetch_refuses_a_path_outside_the_staging_folder_before_any_download(tmp_path):
    # No S3 call is made: the paths are judged first (the client is never even created).
    settings = S3StoreSettings(S3Connection("bucket", "p/", "us-east-1",
                                            "http://127.0.0.1:9", None, "k", "s"))
    store = S3Store(settings, tmp_path / "spool")
    forged = dataclasses.replace(make(), files=(
        FileEntry("../../x", 1, "e" * 64), FileEntry(str(tmp_path / "abs"), 1, "e" * 64),
        FileEntry("redis/dump.rdb", 5, "c" * 64)))

    problems, transfer = store.fetch(forged)

    assert [p["path"] for p in problems] == ["../../x", str(tmp_path / "abs")]
    assert problems[0]["problem"] == ("manifest s3://bucket/p/bk-1/manifest.json: file path "
                                      "'../../x' is not normalised (an empty, '.' or '..' part)")
    assert "is absolute" in problems[1]["problem"]
    assert transfer.objects == 0 and store._s3 is None
    assert not (tmp_path / "spool" / "bk-1").exists() and not (tmp_path / "abs").exists()


@pytest.mark.parametrize(("field", "value"), [
    ("consistent_at", "garbage"), ("consistent_at", 5), ("created_at", None),
    ("size", "12"), ("size", -1), ("size", True)])
def test_a_manifest_with_a_time_or_size_drtool_cannot_compute_with_is_not_read(field, value):
    with pytest.raises(ManifestError, match=field):
        manifest_from_json(json.dumps(manifest_data(**{field: value})))


def test_a_manifest_nested_too_deeply_is_not_read_and_raises_no_recursion_error():
    with pytest.raises(ManifestError, match="nested too deeply"):
        manifest_from_json("[" * 100_000 + "]" * 100_000)
