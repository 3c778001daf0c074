"""`drtool recover`'s pure parts: the recovery's view of the components, its refusals (the
inventory's, the identities', live data), its journals' rollback rules, its backup pick,
and the filters that send the roles to the recovery sides."""

from __future__ import annotations

import click
import pytest

from drtool.cli.recover import check_operator, confirm, operator_of
from drtool.components import RECOVERY, Component, Place, from_described
from drtool.config import recovery_problems
from drtool.core import preflight, rollback
from drtool.core.identity import recovery_checks
from drtool.core.model import FAILED, PASSED, RUNNING, SKIPPED, Journal, PhaseRecord
from drtool.core.preflight import occupancy_checks
from drtool.errors import ConfigError
from drtool.store import choose
from drtool.store.base import BackupSummary
from tests.unit.test_components import filters as load_filters

filters = load_filters()

MACHINE = "5f1a" * 16

# One cluster, one Redis and a service, each recovered onto its own source's host, as
# playbooks/describe.yml publishes them.
LISTS = {
    "drtool_postgres_clusters": [{"name": "main", "databases": ["appdb"],
                                  "source": {"host": "pg1"}, "target": {"host": "pg2"},
                                  "recovery": {"host": "pg1"}}],
    "drtool_redis_instances": [{"name": "cache", "source": {"host": "r1"},
                                "target": {"host": "r2"}}],
    "drtool_services": [{"name": "api", "host": "app", "recovery": {"start_command": ["b"]}}],
}


def described() -> dict:
    def side(name, kind, where, port, **more):
        return {"name": name, "kind": kind, "side": where,
                "values": {"host": "127.0.0.1", "port": port, "databases": ["appdb"], **more}}
    hosts = {
        "pg1": [side("main", "postgres", "source", 5432),
                side("main", "postgres", "recovery", 5432)],
        "pg2": [side("main", "postgres", "target", 5433)],
        "r1": [side("cache", "redis", "source", 6379, rdb_path="/srv/r1/dump.rdb")],
        "r2": [side("cache", "redis", "target", 6380, rdb_path="/srv/r2/dump.rdb")],
        "app": [{"name": "api", "kind": "service", "side": "target", "values": {}},
                {"name": "api", "kind": "service", "side": "recovery", "values": {}}],
    }
    return {h: {"components": found, "component_lists": LISTS, "connection": "ssh",
                "address": f"10.0.0.{i}"} for i, (h, found) in enumerate(sorted(hosts.items()))}


def test_a_recovery_restores_each_component_onto_its_recovery_side_and_leaves_out_the_rest():
    drilled = {c.name: c for c in from_described(described())}
    recovered = {c.name: c for c in from_described(described(), RECOVERY)}
    assert drilled["main"].target.host == "pg2" and drilled["api"].target.host == "app"
    assert recovered["main"].target == Place("pg1", "127.0.0.1", 5432, None)
    assert recovered["main"].source.host == "pg1" and recovered["api"].target.host == "app"
    assert "cache" not in recovered  # it declares no recovery side


def test_a_recovery_target_may_be_its_own_source_but_not_another_components():
    recovered = from_described(described(), RECOVERY)
    drilled = from_described(described())
    assert recovery_problems(recovered, drilled, described()) == []
    # A second cluster read from pg1's server: recovering main there would overwrite it.
    other = Component("billing", "postgres", Place("pg1", "127.0.0.1", 5432), None)
    problems = recovery_problems(recovered, (*drilled, other), described())
    assert [p.message for p in problems] == [
        "refused as a recovery target of main: its postgres endpoint 10.0.0.1:5432 is the "
        "backup source of billing on pg1"]
    assert "declares a `recovery` side" in recovery_problems((), drilled, described())[0].message


def facts(system_identifier=None, run_id=None, rdb_dir=None):
    return {"system_identifier": system_identifier, "run_id": run_id, "dir": rdb_dir,
            "dbfilename": "dump.rdb" if rdb_dir else None, "machine_id_sha256": MACHINE}


RECOVERED = [Component("main", "postgres", Place("pg1"), Place("pg9")),
             Component("cache", "redis", Place("r1"), Place("r9"))]


def seen(env, component, family, identity, own):
    return {"env": env, "component": component, "family": family, "host": f"{component}-src",
            "identity": identity, "own": own}


def test_a_new_server_and_a_components_own_source_pass_the_identity_rule():
    found = {("main", "target"): facts("111"),
             ("cache", "target"): facts(run_id="r-new", rdb_dir="/srv/new")}
    known = [seen("prod", "main", "postgres", facts("111"), True),  # its own source
             seen("prod", "cache", "redis", facts(run_id="r-old", rdb_dir="/srv/old"), True),
             # another environment reads the same server: it is still main's own source
             seen("mirror", "main", "postgres", facts("111"), False)]
    checks = {c.target: c for c in recovery_checks(found, RECOVERED, known)}
    assert checks["pg9/main"].status == PASSED
    assert "its own backup source" in checks["pg9/main"].detail
    assert checks["r9/cache"].status == PASSED and checks["r9/cache"].actual == "distinct"


def test_a_recovery_target_that_is_another_environments_or_components_source_is_refused():
    found = {("main", "target"): facts("222"),
             ("cache", "target"): facts(run_id="r-x", rdb_dir="/srv/shared")}
    known = [seen("prod", "main", "postgres", facts("111"), True),
             seen("billing", "ledger", "postgres", facts("222"), False),
             seen("prod", "sessions", "redis", facts(run_id="r-y", rdb_dir="/srv/shared"), True)]
    checks = {c.target: c for c in recovery_checks(found, RECOVERED, known)}
    assert checks["pg9/main"].status == FAILED
    assert checks["pg9/main"].detail == ("pg9 is backup source ledger-src (ledger of environment "
                                         "billing): same PostgreSQL system_identifier 222")
    assert checks["r9/cache"].status == FAILED
    assert "uses backup source sessions-src (sessions)'s RDB file" in checks["r9/cache"].detail


def test_a_physical_recovery_target_must_run_from_its_declared_data_directory():
    physical = Component("main", "postgres", None,
                         Place("pg9", port=5432, path="/srv/pg/data"),
                         settings={"method": "pgbackrest"})
    running = {("main", "target"): {"system_identifier": "9", MACHINE_KEY: MACHINE,
                                    "data_directory": "/srv/pg/data", "data_dir_port": 5432}}
    assert recovery_checks(running, [physical], [])[0].status == PASSED
    elsewhere = {("main", "target"): {**running[("main", "target")],
                                      "data_directory": "/srv/other", "data_dir_port": None}}
    [check] = recovery_checks(elsewhere, [physical], [])
    assert check.status == FAILED
    assert "pg9: no server runs from its data_dir /srv/pg/data" in check.detail


def test_an_identity_nobody_recorded_cannot_be_compared_and_does_not_refuse():
    checks = recovery_checks({("main", "target"): facts()}, RECOVERED[:1],
                             [seen("x", "other", "postgres", facts("1"), False)])
    assert [c.status for c in checks] == [PASSED]


TARGETS = [Component("main", "postgres", Place("pg1"), Place("pg1"), databases=("appdb",)),
           Component("cache", "redis", Place("r1"), Place("r1")),
           Component("uploads", "files", Place("f1", path="/srv/up"), Place("f1", path="/srv/up")),
           Component("api", "service", None, Place("app"))]


def occupancy(postgres=None, redis=None, files=None, replace=False):
    found = occupancy_checks(
        {"main": {"target": postgres}} if postgres is not None else {},
        {"cache": {"target": redis}} if redis is not None else {},
        TARGETS, replace, {"uploads": {"target": files}} if files is not None else {})
    return {c.target: c for c in found}


def test_empty_recovery_targets_pass_and_live_data_is_refused_saying_what_is_there():
    empty = occupancy({"occupancy": {}}, {"counts": {}}, {"path": "/srv/up", "entries": 0})
    assert [c.status for c in empty.values()] == [PASSED] * 3 and "app/api" not in empty
    full = occupancy({"occupancy": {"appdb": {"size_bytes": 3 * 2**20, "tables": 4,
                                              "has_rows": True,
                                              "heartbeat_at": "2026-12-07T03:00:00+00:00"}}},
                     {"counts": {"db0": 12, "db1": 0}, "heartbeat_at": "2026-12-07T03:00:01"},
                     {"path": "/srv/up", "entries": 3})
    assert {c.status for c in full.values()} == {FAILED}
    assert full["pg1/main"].detail == (
        "it holds live data; give --replace-existing to replace it: database appdb (3.0 MiB, "
        "4 tables, newest heartbeat 2026-12-07T03:00:00+00:00)")
    assert "12 keys in db0, newest heartbeat" in full["r1/cache"].detail
    assert "holds 3 entries at its top" in full["f1/uploads"].detail


def test_replace_existing_lets_live_data_be_replaced_and_says_so():
    replaced = occupancy({"occupancy": {"appdb": {"size_bytes": 1, "tables": 1,
                                                  "has_rows": True}}},
                         {"counts": {"db0": 1}}, {"path": "/srv/up", "entries": 1}, replace=True)
    assert {c.status for c in replaced.values()} == {PASSED}
    assert all(c.detail.startswith("replaced (--replace-existing)") for c in replaced.values())


def test_a_database_without_rows_is_not_live_data_and_an_unmeasured_target_is_refused():
    checks = occupancy({"occupancy": {"appdb": {"size_bytes": 1, "tables": 2,
                                                "has_rows": False}}}, {}, {"path": "/x"})
    assert checks["pg1/main"].status == PASSED
    assert checks["r1/cache"].status == FAILED and checks["r1/cache"].actual == "unknown"
    assert checks["f1/uploads"].status == FAILED


def journal(operation, *statuses):
    names = ("preflight", "snapshot", "restore", "restart", "verify")
    return Journal("d1", "prod", operation, "2026-12-07T03:00:00Z", status=RUNNING,
                   phases=[PhaseRecord(n, s) for n, s in zip(names, statuses, strict=False)])


def test_a_killed_recovery_is_never_rolled_back_but_gives_its_leases_back():
    killed = journal("recover", PASSED, PASSED, RUNNING)
    assert not rollback.awaits_rollback(killed) and rollback.holds_leases(killed)
    drill = journal("drill", PASSED, PASSED, RUNNING)
    assert rollback.awaits_rollback(drill) and not rollback.holds_leases(drill)
    before = journal("recover", PASSED, RUNNING, SKIPPED)
    assert rollback.holds_leases(before) and not rollback.awaits_rollback(before)


def run(drill_id, operation, status, *phases, at="03", undoes=None):
    names = ("preflight", "snapshot", "restore", "restart", "verify")
    return Journal(drill_id, "prod", operation, f"2026-12-07T{at}:00:00Z", status=status,
                   undoes=undoes,
                   phases=[PhaseRecord(n, s) for n, s in zip(names, phases, strict=False)])


def test_only_an_ended_recovery_with_a_kept_snapshot_and_nothing_newer_is_undone():
    done = run("r1", "recover", FAILED, PASSED, PASSED, FAILED, SKIPPED, SKIPPED)
    assert rollback.undo_problem("r1", [done]) is None
    assert rollback.undo_problem("r9", [done]) == "no run r9 in the evidence"
    drill = run("d1", "drill", PASSED, PASSED, PASSED, PASSED)
    assert rollback.undo_problem("d1", [drill]).startswith("d1 is a drill, not a recovery")
    running = run("r1", "recover", RUNNING, PASSED, PASSED, RUNNING)
    running.pid = 4242
    assert rollback.undo_problem("r1", [running]) == (
        "recovery r1 is still running (process 4242)")
    # Killed (its process gone): the undo closes it first, then puts its targets back.
    assert rollback.undo_problem("r1", [running], killed=["r1"]) is None
    no_snapshot = run("r1", "recover", FAILED, PASSED, FAILED, SKIPPED)
    assert rollback.undo_problem("r1", [no_snapshot]) == (
        "recovery r1 kept no safety snapshot (its snapshot phase failed): there is nothing "
        "to put back")
    refused = run("r1", "recover", FAILED, FAILED, SKIPPED, SKIPPED)
    assert "its snapshot phase skipped" in rollback.undo_problem("r1", [refused])
    unchanged = run("r1", "recover", FAILED, PASSED, PASSED, SKIPPED)
    assert "changed nothing" in rollback.undo_problem("r1", [unchanged])
    # Undone once, it is not undone again; an undo that failed may be tried again.
    failed_undo = run("u1", "undo-recover", FAILED, at="04", undoes="r1")
    assert rollback.undo_problem("r1", [done, failed_undo]) is None
    undone = run("u2", "undo-recover", PASSED, at="05", undoes="r1")
    assert rollback.undo_problem("r1", [done, failed_undo, undone]) == (
        "recovery r1 was undone already, by u2")
    # A later recovery changed the same targets: it is undone first, then this one may be.
    later = run("r2", "recover", PASSED, PASSED, PASSED, PASSED, PASSED, PASSED, at="06")
    assert rollback.undo_problem("r1", [done, later]) == (
        "recovery r2 changed the same targets after it: undo that one first")
    later_undone = run("u3", "undo-recover", PASSED, at="07", undoes="r2")
    assert rollback.undo_problem("r1", [done, later, later_undone]) is None
    refused_later = run("r3", "recover", FAILED, FAILED, SKIPPED, at="08")
    assert rollback.undo_problem("r1", [done, refused_later]) is None


def summary(backup_id, verified):
    return BackupSummary(backup_id, "2026-12-07T03:00:00Z", 10, f"/store/{backup_id}", True,
                         "20261207T040000Z-abc123" if verified else None)


def test_a_recovery_takes_the_newest_verified_backup_unless_told():
    catalog = [summary("bk-3", False), summary("bk-2", True), summary("bk-1", True)]
    assert choose.choose(catalog, choose.LATEST_VERIFIED) == ("bk-2", choose.LATEST_VERIFIED)
    assert choose.choose(catalog, choose.LATEST) == ("bk-3", choose.LATEST)
    with pytest.raises(ConfigError, match="holds no verified backup.*--backup latest"):
        choose.choose([summary("bk-3", False)], choose.LATEST_VERIFIED, env="prod")


def test_a_recovery_is_confirmed_only_by_the_environments_name():
    assert confirm("prod", "prod") == "prod"
    with pytest.raises(ConfigError, match="--confirm names 'staging', not .*prod.*nothing"):
        confirm("prod", "staging")
    # Under pytest stdin is not a terminal: without --confirm, nothing can confirm it.
    with pytest.raises(ConfigError, match="on a terminal, or with --confirm prod"):
        confirm("prod", None)


def test_the_operator_is_one_line_and_defaults_to_the_user(monkeypatch):
    assert check_operator(" Ana ") == "Ana" and operator_of("Ana") == "Ana"
    monkeypatch.setenv("SUDO_USER", "ana")
    assert operator_of(None) == "ana"
    for bad in ("two\nlines", "", "x" * 101):
        with pytest.raises(click.BadParameter):
            check_operator(bad)


def test_the_filters_send_a_recoverys_targets_to_the_recovery_sides():
    host_vars = dict(LISTS)
    kinds = [{"kind": "postgres", "list": "drtool_postgres_clusters"},
             {"kind": "service", "list": "drtool_services"}]
    assert filters.components_of(kinds, host_vars, "pg1", "target", None, "recovery") == [
        {"kind": "postgres", "name": "main", "at": "recovery"}]
    assert filters.components_of(kinds, host_vars, "pg1", "target") == []
    assert filters.components_of(kinds, host_vars, "app", "target", None, "recovery") == [
        {"kind": "service", "name": "api", "at": "recovery"}]
    # A service's recovery keeps its host and takes what its recovery sets.
    api = filters.resolve(LISTS["drtool_services"], "api", "recovery", host_vars, {}, "p_")
    assert api["inventory_host"] == "app" and api["start_command"] == ["b"]
    assert filters.here(host_vars, "pg1", "target", None, "recovery") == ["main"]
    assert filters.here(host_vars, "pg2", "target", None, "recovery") == []
    checks = [{"name": "orders", "component": "main"}, {"name": "api-up", "service": "api"}]
    assert filters.checks_on(checks, "pg1", host_vars, "recovery") == ["orders"]
    assert filters.checks_on(checks, "pg2", host_vars) == ["orders"]


def test_a_schedule_never_runs_a_recovery():
    from click.testing import CliRunner

    from drtool.cli.main import cli
    from drtool.ops import schedule

    assert "recover" not in schedule.JOBS
    shown = CliRunner().invoke(cli, ["schedule", "install", "--help"]).output
    assert "recover" not in shown and "--drill-cron" in shown


def test_a_safety_snapshot_is_taken_where_there_is_room_and_skipped_saying_why_elsewhere():
    pg1 = Component("main", "postgres", None, Place("pg1", port=5432, path="/srv/pg"))
    cache = Component("cache", "redis", None, Place("pg1", port=6379, path="/srv/dump.rdb"))
    tree = Component("uploads", "files", None, Place("files1", path="/srv/uploads"))
    api = Component("api", "service", None, Place("app"))
    components = [pg1, cache, tree, api]
    assert preflight.snapshot_room_paths(components) == {
        "pg1": ["/srv/dump.rdb"], "files1": ["/srv/uploads"]}
    postgres = {"main": {"target": {"occupancy": {
        "appdb": {"size_bytes": 300 * 2**20}, "shop": {"size_bytes": 100 * 2**20}}}}}
    room = {"pg1": {"at": "/var/lib/drtool", "free_bytes": 460 * 2**20, "filesystem": "m:1",
                    "sizes": {"/srv/dump.rdb": 50 * 2**20}},
            "files1": {"at": "/var/lib/drtool", "free_bytes": 10 * 2**20, "filesystem": "m2:1",
                       "sizes": {"/srv/uploads": 20 * 2**20}}}
    skip, warnings = preflight.snapshot_room(room, postgres, components)
    assert skip == ["files1"]
    assert warnings == [
        "no safety snapshot on files1: what its recovery targets hold (uploads) takes "
        "20.0 MiB and /var/lib/drtool has 10.0 MiB left: this recovery cannot be undone there "
        "(free space, or set drtool_snapshot_path to a larger file system)"]
    # Two hosts of one machine share a file system: the second gets what the first left
    # (460 MiB: 20 for files1, then 440 left where pg1 needs 450).
    shared = {**room, "files1": {**room["files1"], "filesystem": "m:1",
                                 "free_bytes": 460 * 2**20}}
    assert preflight.snapshot_room(shared, postgres, components)[0] == ["pg1"]
    # Empty targets always fit; an unmeasured host is snapshotted (a snapshot that runs out
    # of room fails before anything is changed).
    assert preflight.snapshot_room({"pg1": {"free_bytes": 0, "sizes": {}}}, {},
                                   [pg1, cache]) == ([], [])
    assert preflight.snapshot_room({}, postgres, components) == ([], [])

    # Without a machine id, a file system is the host's own.
    apart = {**shared, "pg1": {**shared["pg1"], "filesystem": ":1"},
             "files1": {**shared["files1"], "filesystem": ":1"}}
    assert preflight.snapshot_room(apart, postgres, components)[0] == []
    # A physical cluster needs its data directory; a Redis without an RDB file its memory.
    physical = {"main": {"target": {"room": {"data_dir_bytes": 500 * 2**20}}}}
    redis = {"cache": {"target": {"counts": {"db0": 3}, "used_memory": 2**20}}}
    bare = {"pg1": {**room["pg1"], "sizes": {"/srv/dump.rdb": None}}}
    skip, warnings = preflight.snapshot_room(bare, physical, [pg1, cache], redis)
    assert skip == ["pg1"] and "takes 501.0 MiB" in warnings[0]
    # A host whose room could not be measured is snapshotted, and the journal says why.
    failed = {"pg1": {"error": "cannot measure the free space at /x: Permission denied"}}
    assert preflight.snapshot_room(failed, postgres, components) == ([], [
        "the room for a safety snapshot on pg1 could not be measured (cannot measure the "
        "free space at /x: Permission denied): it is taken anyway"])


def identities(**target):
    return {"name": "main", "kind": "postgres",
            "identity": {"target": {MACHINE_KEY: MACHINE, **target}}}


MACHINE_KEY = "machine_id_sha256"


def test_an_undo_puts_back_only_onto_the_servers_the_recovery_restored_onto():
    from drtool.core.identity import undo_checks

    main = Component("main", "postgres", None, Place("pg1", port=5432))
    recovery = Journal("r1", "prod", "recover", "2026-12-07T03:00:00Z",
                       scope={"components": [identities(system_identifier="7001")]})
    same = {("main", "target"): {MACHINE_KEY: MACHINE, "system_identifier": "7001"}}
    [check] = undo_checks(same, [main], recovery)
    assert (check.status, check.actual) == (PASSED, "the same")
    rebuilt = {("main", "target"): {MACHINE_KEY: MACHINE, "system_identifier": "7999"}}
    [check] = undo_checks(rebuilt, [main], recovery)
    assert check.status == FAILED and check.detail == (
        "pg1 is not the server recovery r1 restored main onto: its system_identifier is "
        "7999, was 7001")
    # A physical copy changes its system_identifier: its data directory is compared.
    copied = Journal("r2", "prod", "recover", "2026-12-07T03:00:00Z", scope={"components": [
        identities(system_identifier="7001", data_directory="/srv/pg")]})
    moved = {("main", "target"): {MACHINE_KEY: MACHINE, "system_identifier": "8000",
                                  "data_directory": "/srv/pg"}}
    assert undo_checks(moved, [main], copied)[0].status == PASSED
    unknown = Journal("r3", "prod", "recover", "2026-12-07T03:00:00Z", scope={})
    assert "recorded no identity" in undo_checks(same, [main], unknown)[0].detail
    # Redis: the same RDB file on the same machine (its run_id changes when it restarts).
    cache = Component("cache", "redis", None, Place("r1", port=6379))
    recorded = Journal("r4", "prod", "recover", "2026-12-07T03:00:00Z", scope={"components": [
        {"name": "cache", "identity": {"target": {
            MACHINE_KEY: MACHINE, "dir": "/srv", "dbfilename": "dump.rdb", "run_id": "a"}}}]})
    restarted = {("cache", "target"): {MACHINE_KEY: MACHINE, "dir": "/srv",
                                       "dbfilename": "dump.rdb", "run_id": "b"}}
    assert undo_checks(restarted, [cache], recorded)[0].status == PASSED


def test_an_undo_is_refused_when_the_recovery_targets_changed_since():
    def scope(*stores):
        return {"data_stores": [{"role": "restore target", "component": c, "host": h,
                                 "endpoint": e} for c, h, e in stores]
                + [{"role": "source", "component": "main", "host": "old", "endpoint": "x"}]}

    then = scope(("main", "pg1", "10.0.0.1:5432"), ("cache", "r1", "10.0.0.2:6379"))
    assert rollback.undo_drift(then, then) == []
    now = scope(("main", "pg1", "10.0.0.1:5433"))
    assert rollback.undo_drift(then, now) == [
        "cache: recovered onto r1 10.0.0.2:6379, declared now at no recovery side",
        "main: recovered onto pg1 10.0.0.1:5432, declared now at pg1 10.0.0.1:5433"]
    # A database left out of the list since; a cluster of `databases: all` is put back with
    # the databases the recovery recorded, whatever it lists now.
    listed = scope(("main", "pg1", "10.0.0.1:5432"))
    listed["data_stores"][0]["database"] = "appdb, shop"
    fewer = scope(("main", "pg1", "10.0.0.1:5432"))
    fewer["data_stores"][0]["database"] = "appdb"
    assert rollback.undo_drift(listed, fewer) == [
        "main: recovered onto pg1 10.0.0.1:5432 (appdb, shop), declared now at pg1 "
        "10.0.0.1:5432 (appdb)"]
    listed["components"] = [{"name": "main", "all_databases": True}]
    assert rollback.undo_drift(listed, fewer) == []
