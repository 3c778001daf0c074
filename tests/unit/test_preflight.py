from drtool.components import postgres
from drtool.core.preflight import (
    Answer,
    commands_for,
    judge,
    major_version,
    pg_restore_check,
    physical_checks,
    redis_file_checks,
    refusal,
    room_check,
)

TARGET = {"groups": ["pg_restore_target"], "postgres_bin_dir": "/pg/bin",
          "postgres_host": "10.0.0.2", "postgres_port": 5432, "backup_path": "/w/backups/ID"}
RESTORED = (postgres.from_sides("main", ("s", {}), ("t", {"host": "10.0.0.2", "port": 5432,
                                                          "databases": ["appdb"]})),)


def test_versions_are_read_from_what_the_tools_print():
    assert major_version("pg_restore (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)") == 15
    assert major_version("16.4 (Ubuntu 16.4-1)") == 16
    assert major_version("9.6.24") == 9
    assert major_version("") is None


def test_pg_restore_must_be_at_least_the_source_servers_major_version():
    assert pg_restore_check("t", "pg_restore (PostgreSQL) 15.2", "s", "15.8").passed
    old = pg_restore_check("t", "pg_restore (PostgreSQL) 14.9", "s", "15.8 (Debian)")
    assert not old.passed
    assert old.describe() == ("preflight.pg_restore_version t: expected >= 15 (server on s), "
                              "actual 14")


def test_a_restore_target_is_asked_for_tools_service_version_and_disk():
    wanted = commands_for("t", TARGET, RESTORED)
    assert set(wanted) == {"tools.tar", "tools.postgres", "service.postgres.main",
                           "version.pg_restore", "disk.free_kib"}
    assert "/dev/tcp/10.0.0.2/5432" in wanted["service.postgres.main"]
    assert "sudo" not in " ".join(wanted.values())
    assert "become" in commands_for("t", dict(TARGET, become=True), RESTORED)


def test_every_failure_of_every_host_is_listed_not_just_the_first():
    answers = {
        "a": Answer(False, "NoValidConnectionsError: port 22 refused"),
        "b": Answer(True, outputs={"tools.postgres": (1, ""), "service.postgres": (124, ""),
                                   "disk.free_kib": (0, "1000")},
                    clock_offset_s=0.0),
        "c": Answer(True, outputs={"tools.tar": (0, "/usr/bin/tar")}, clock_offset_s=3.5),
    }
    checks = judge(answers, backup_size=10_000_000)
    failed = [c.describe() for c in checks if not c.passed]
    assert failed == [
        "preflight.reachable a: expected reached over ssh with its user and key, "
        "actual NoValidConnectionsError: port 22 refused",
        "preflight.disk b: expected >= 15000000 bytes free, actual 1024000",
        "preflight.service.postgres b: expected exit 0, actual exit 124",
        "preflight.tools.postgres b: expected exit 0, actual exit 1",
        "preflight.clock_skew all hosts: expected < 2.0 s, actual 3.5 "
        "(between the hosts and this machine)",
    ]


def test_without_an_earlier_backup_disk_space_is_recorded_not_judged_against_a_guess():
    checks = judge({"t": Answer(True, outputs={"disk.free_kib": (0, "5")})}, backup_size=None)
    disk = next(c for c in checks if c.name == "preflight.disk")
    assert disk.passed and disk.actual == 5120 and "no earlier backup" in disk.detail


# What the Redis preflight publishes for a restore target (drtool_redis_preflight).
REDIS = {"appendonly": "no", "dir": "/var/lib/redis", "dbfilename": "dump.rdb",
         "rdb_path": "/var/lib/redis/dump.rdb"}


def test_a_redis_target_that_loads_the_inventorys_rdb_without_an_aof_passes():
    same = dict(REDIS, dir="/var/lib/redis/", rdb_path="/var/lib/redis/./dump.rdb")
    checks = redis_file_checks({"t": REDIS, "u": same, "primary": {}}, ["u", "t"])
    assert [(c.target, c.passed) for c in checks] == [("t", True), ("u", True)]
    assert checks[0].actual == "appendonly no, loads /var/lib/redis/dump.rdb"
    assert refusal(checks) is None


def test_a_redis_target_with_an_aof_is_refused_with_the_reason_and_what_to_do():
    checks = redis_file_checks({"t": dict(REDIS, appendonly="yes")}, ["t"])
    assert not checks[0].passed
    assert refusal(checks) == (
        "t: Redis has appendonly yes: an RDB restore would be ignored on restart; turn AOF off "
        "on the drill target (appendonly no in its configuration) or name another restore "
        "target for it in drtool_redis_instances")


def test_a_redis_target_that_loads_another_file_than_the_inventory_says_is_refused():
    checks = redis_file_checks({"t": dict(REDIS, dbfilename="other.rdb")}, ["t"])
    assert refusal(checks) == (
        "t: Redis loads /var/lib/redis/other.rdb at start but the target's rdb_path "
        "(drtool_redis_rdb_path) is /var/lib/redis/dump.rdb: a restore would replace a file "
        "the server does not read; set the target's rdb_path to /var/lib/redis/other.rdb")


def test_a_redis_target_whose_config_cannot_be_read_or_that_was_not_asked_is_refused():
    hidden = dict(REDIS, appendonly=None, dir=None, dbfilename=None)
    checks = redis_file_checks({"t": hidden}, ["t", "v"])
    assert [c.passed for c in checks] == [False, False]
    assert "cannot tell which file it loads" in checks[0].detail
    assert checks[0].actual == "appendonly None, loads an unknown file"
    assert checks[1].detail == "the Redis preflight did not report this server"


def test_every_failed_preflight_check_is_in_the_refusal():
    old = pg_restore_check("p", "pg_restore (PostgreSQL) 14.9", "s", "15.8")
    both = [old, *redis_file_checks({"t": dict(REDIS, appendonly="yes", dir="/x")}, ["t"])]
    reason = refusal(both) or ""
    assert reason.startswith("preflight.pg_restore_version p: expected >= 15")
    assert "; t: Redis has appendonly yes" in reason
    assert "; Redis loads /x/dump.rdb at start" in reason


def test_a_physical_restore_needs_the_same_major_and_the_same_pgbackrest_on_both_sides():
    source = {"server_version": "15.18 (Debian 15.18-0+deb12u1)", "pgbackrest_version": "2.45"}
    same = physical_checks("pg2/main", "pg1", source,
                                     {"server_version": "15.8", "pgbackrest_version": "2.45"})
    assert [(c.name, c.status) for c in same] == [
        ("preflight.postgres_major", "passed"), ("preflight.pgbackrest_version", "passed")]
    other = physical_checks("pg2/main", "pg1", source,
                                      {"server_version": "16.4", "pgbackrest_version": "2.54.2"})
    assert [c.status for c in other] == ["failed", "failed"]
    assert refusal(other) == (
        "preflight.postgres_major pg2/main: expected 15 (server on pg1), actual 16; "
        "preflight.pgbackrest_version pg2/main: expected 2.45 (as on pg1), actual 2.54.2")
    # A side that said nothing cannot be judged the same.
    assert [c.status for c in physical_checks("pg2/main", "pg1", source, {})] == [
        "failed", "failed"]


def test_a_physical_target_needs_room_for_the_backups_cluster_once_emptied():
    gib = 2**30

    def room(**values: object) -> dict[str, object]:
        return {"room": {"label": "20261206-060844F", "snapshot_same_filesystem": False,
                         "snapshot_free_bytes": 100 * gib, **values}}

    [fits] = room_check("pg2/main", room(backup_size=10 * gib, free_bytes=4 * gib,
                                         data_dir_bytes=6 * gib))
    assert fits.status == "passed" and fits.actual == 10 * gib  # the disaster frees 6 GiB
    [short] = room_check("pg2/main", room(backup_size=10 * gib, free_bytes=3 * gib,
                                          data_dir_bytes=6 * gib))
    assert short.status == "failed" and short.name == "preflight.room"
    assert short.detail.startswith("the restore needs 10.0 GiB and the data directory's "
                                   "file system would have 9.0 GiB (3.0 GiB free, 6.0 GiB")
    [unmeasured] = room_check("pg2/main", room(backup_size=gib, free_bytes=None,
                                               data_dir_bytes=5, error="Permission denied"))
    assert unmeasured.status == "failed"
    assert unmeasured.detail == "the target's free space could not be measured: Permission denied"
    # A fresh drill that takes its own backup: no size to hold the target to yet.
    assert room_check("pg2/main", room(backup_size=None, free_bytes=1, data_dir_bytes=1)) == []
    assert room_check("pg2/main", {}) == []


def test_the_safety_snapshots_copy_counts_against_the_room_it_shares():
    gib = 2**30
    shared = {"room": {"label": "L", "backup_size": 10 * gib, "free_bytes": 14 * gib,
                       "data_dir_bytes": 6 * gib, "snapshot_same_filesystem": True,
                       "snapshot_free_bytes": 14 * gib}}
    # The copy takes 6 GiB of the 14 free; the emptied data directory gives them back to the
    # restore, but the copy stays: 8 GiB for a 10 GiB cluster.
    [short] = room_check("pg2/main", shared)
    assert short.status == "failed" and short.actual == 8 * gib
    assert "less 6.0 GiB for the safety snapshot's copy" in short.detail
    # Without a snapshot (an operation that takes none), the same file system has room.
    [fits] = room_check("pg2/main", shared, snapshot=False)
    assert fits.status == "passed" and fits.actual == 20 * gib
    # Elsewhere, the copy needs its own room: 6 GiB where 2 are free.
    apart = {"room": {**shared["room"], "snapshot_same_filesystem": False,
                      "snapshot_free_bytes": 2 * gib}}
    [copy_short] = room_check("pg2/main", apart)
    assert copy_short.status == "failed"
    assert copy_short.detail.startswith("the safety snapshot's copy needs 6.0 GiB and its "
                                        "file system has 2.0 GiB free")
