"""The production guard's identity rule: a restore target that *is* a source, whatever it is
called, is refused (drtool.core.identity), and the refusal exits 2."""

from __future__ import annotations

import copy

import pytest

from drtool.cli.common import exit_code
from drtool.components import Component, Place
from drtool.core.identity import identity_checks, side_facts
from drtool.core.model import FAILED, PASSED, Failure, Journal
from drtool.errors import EXIT_USAGE

COMPONENTS = [Component("main", "postgres", Place("pg1"), Place("pg2")),
              Component("cache", "redis", Place("r1"), Place("r2")),
              Component("app", "service", None, Place("app1"))]
# Which component side each host of the facts below is.
SIDES = {"pg1": ("main", "source"), "pg2": ("main", "target"), "r1": ("cache", "source"),
         "r2": ("cache", "target"), "pg3": ("reporting", "target"),
         "pg4": ("reporting", "source")}
MACHINE_A = "5f1a" * 16  # sha256 of two machines' /etc/machine-id
MACHINE_B = "9c3e" * 16
# What the preflight roles publish (drtool_postgres_preflight, drtool_redis_preflight), in
# the shape and with the kind of values a real sandbox gives: two clusters initdb'd apart,
# two Redis servers with their own folders, all on one machine.
POSTGRES = {
    "pg1": {"server_version": "15.8", "database_exists": True,
            "system_identifier": "7391552387212345678", "machine_id_sha256": MACHINE_A},
    "pg2": {"server_version": "15.8", "database_exists": True,
            "system_identifier": "7391552391887654321", "machine_id_sha256": MACHINE_A},
}
REDIS = {
    "r1": {"redis_version": "7.0.15", "run_id": "8c1d5e0f0a3b4c1e2d9f7a6b5c4d3e2f1a0b9c8d",
           "dir": "/srv/sandbox/redis-primary", "dbfilename": "dump.rdb",
           "machine_id_sha256": MACHINE_A},
    "r2": {"redis_version": "7.0.15", "run_id": "1f2e3d4c5b6a79880716253443526170f9e8d7c6",
           "dir": "/srv/sandbox/redis-target", "dbfilename": "dump.rdb",
           "machine_id_sha256": MACHINE_A},
}


def by_side(found):
    """{host: facts} as the preflight roles publish them: {component: {side: facts}}."""
    out = {}
    for host, facts in found.items():
        name, side = SIDES[host]
        out.setdefault(name, {})[side] = facts
    return out


def judged(postgres=None, redis=None, components=None, production=()):
    checks = identity_checks(side_facts(by_side(postgres or POSTGRES), by_side(redis or REDIS)),
                             components or COMPONENTS, production)
    return {c.target.split("/")[0]: c for c in checks}


def test_distinct_servers_on_one_machine_pass_with_their_identities_recorded():
    checks = judged()
    assert sorted(checks) == ["pg2", "r2"]  # one per data-store target; the app holds none
    assert [c.target for c in checks.values()] == ["pg2/main", "r2/cache"]
    assert all(c.name == "guard.identity" and c.status == PASSED for c in checks.values())
    assert checks["pg2"].detail == "system_identifier 7391552391887654321"
    assert checks["r2"].detail == ("run_id 1f2e3d4c5b6a79880716253443526170f9e8d7c6, RDB "
                                   "/srv/sandbox/redis-target/dump.rdb")


def test_a_target_that_is_the_primary_cluster_is_refused_naming_both_and_the_identifier():
    postgres = copy.deepcopy(POSTGRES)
    postgres["pg2"]["system_identifier"] = postgres["pg1"]["system_identifier"]
    check = judged(postgres=postgres)["pg2"]
    assert check.status == FAILED
    assert check.detail == ("pg2 is backup source pg1 (main): same PostgreSQL system_identifier "
                            "7391552387212345678")
    assert check.describe().startswith("guard.identity pg2/main: expected an identity of its "
                                       "own")
    assert judged(postgres=postgres)["r2"].status == PASSED


def test_a_target_that_is_the_primary_redis_server_is_refused():
    redis = copy.deepcopy(REDIS)
    redis["r2"] = dict(redis["r1"])  # same run_id, same file: the same server
    check = judged(redis=redis)["r2"]
    assert check.status == FAILED
    assert check.detail == (
        "r2 is backup source r1 (cache): same Redis run_id "
        "8c1d5e0f0a3b4c1e2d9f7a6b5c4d3e2f1a0b9c8d; "
        "r2 uses backup source r1 (cache)'s RDB file: /srv/sandbox/redis-primary/dump.rdb on the "
        "same machine (machine-id sha256 5f1a5f1a5f1a5f1a...)")


def test_another_redis_process_on_the_primarys_rdb_file_is_refused():
    # A second server started on the primary's folder: its own run_id, the primary's data.
    redis = copy.deepcopy(REDIS)
    redis["r2"].update(dir="/srv/sandbox/redis-primary/")
    check = judged(redis=redis)["r2"]
    assert check.status == FAILED
    assert "r2 uses backup source r1 (cache)'s RDB file: /srv/sandbox/redis-primary/dump.rdb" in (
        check.detail)
    # The same path on another machine is another file.
    redis["r2"]["machine_id_sha256"] = MACHINE_B
    assert judged(redis=redis)["r2"].status == PASSED


def test_an_identity_nobody_could_read_refuses_rather_than_guesses():
    postgres = copy.deepcopy(POSTGRES)
    postgres["pg1"]["system_identifier"] = None
    assert judged(postgres=postgres)["pg2"].detail == (
        "backup source pg1 (main)'s PostgreSQL system_identifier is unknown: pg2 cannot be "
        "told from it")
    redis = copy.deepcopy(REDIS)
    del redis["r2"]
    assert judged(redis=redis)["r2"].detail == (
        "r2's Redis run_id is unknown: it cannot be told from backup source r1 (cache)")
    # CONFIG refused (managed Redis): the file rule cannot apply, the run_id rule still does.
    redis = copy.deepcopy(REDIS)
    for host in ("r1", "r2"):
        redis[host].update(dir=None, dbfilename=None)
    assert judged(redis=redis)["r2"].status == PASSED


def test_a_production_tier_host_is_compared_like_a_source():
    # pg3 holds another component's side; its tier is production (the name guard refuses it
    # as a target; this rule protects it from pg2 too). It is no source here.
    components = [*COMPONENTS, Component("reporting", "postgres", Place("pg4"), Place("pg3"))]
    postgres = copy.deepcopy(POSTGRES)
    postgres["pg3"] = dict(postgres["pg2"], system_identifier="7391552300000000001")
    postgres["pg4"] = dict(postgres["pg2"], system_identifier="7391552300000000004")
    checks = judged(postgres=postgres, components=components, production={"pg3"})
    assert checks["pg2"].status == PASSED
    postgres["pg3"]["system_identifier"] = postgres["pg2"]["system_identifier"]
    check = judged(postgres=postgres, components=components, production={"pg3"})["pg2"]
    assert check.detail == ("pg2 is production-tier host pg3 (reporting): same PostgreSQL "
                            "system_identifier 7391552391887654321")
    # Not production and not a source: nothing to protect there.
    assert judged(postgres=postgres, components=components)["pg2"].status == PASSED


def test_side_facts_keep_each_sides_identity_and_machine():
    facts = side_facts({"main": {"source": POSTGRES["pg1"]}},
                       {"cache": {"target": dict(REDIS["r1"], machine_id_sha256=None)}})
    assert facts == {
        ("main", "source"): {"system_identifier": "7391552387212345678",
                             "data_directory": None, "data_dir_port": None,
                             "machine_id_sha256": MACHINE_A},
        ("cache", "target"): {"run_id": "8c1d5e0f0a3b4c1e2d9f7a6b5c4d3e2f1a0b9c8d",
                              "dir": "/srv/sandbox/redis-primary", "dbfilename": "dump.rdb",
                              "machine_id_sha256": None}}


@pytest.mark.parametrize(("kind", "code"), [("guard", EXIT_USAGE), ("orchestration", 3),
                                            ("preflight", 3), ("check", 1)])
def test_a_guard_refusal_exits_2(kind, code):
    journal = Journal("d", "e", "drill", "2026-01-01T00:00:00Z", status=FAILED,
                      failure=Failure("preflight", "refused", kind))
    assert exit_code(journal) == code


def physical(target_dir="/srv/pg/physical"):
    """The cluster through pgBackRest: its restore writes the target's declared data_dir."""
    return [Component("main", "postgres", Place("pg1", port=5432, path="/srv/pg/primary"),
                      Place("pg2", port=5433, path=target_dir),
                      settings={"method": "pgbackrest"})]


def physical_facts(target_dir, target_machine=MACHINE_A, source_dir="/srv/pg/primary"):
    """The primary and a target that a physical drill already made a copy of it."""
    facts = copy.deepcopy(POSTGRES)
    facts["pg2"]["system_identifier"] = facts["pg1"]["system_identifier"]
    facts["pg1"]["data_directory"] = source_dir
    facts["pg2"].update(data_directory=target_dir, machine_id_sha256=target_machine,
                        data_dir_port=5433)
    return facts


def test_a_physical_copy_of_its_own_source_elsewhere_is_not_the_source():
    # A physical restore keeps the source's system_identifier: the copy it made last time
    # runs from another data directory (or on another machine), so it is not the source.
    for target_dir, machine in (("/srv/pg/physical", MACHINE_A), ("/srv/pg/primary", MACHINE_B)):
        check = judged(physical_facts(target_dir, machine), components=physical(target_dir))["pg2"]
        assert check.status == PASSED, check.detail


def test_a_physical_target_running_from_the_sources_data_directory_is_the_source():
    check = judged(physical_facts("/srv/pg/primary/"),
                   components=physical("/srv/pg/primary"))["pg2"]
    assert check.status == FAILED
    assert "pg2 is backup source pg1 (main): same PostgreSQL system_identifier" in check.detail
    assert "pg2's data_dir /srv/pg/primary is the data directory of backup source pg1" in (
        check.detail)


def test_a_physical_restore_into_a_directory_its_server_does_not_run_from_is_refused():
    # The inventory names the source's data directory for a target whose server (its own
    # cluster, another identifier) runs elsewhere: restoring there would destroy the source.
    facts = copy.deepcopy(POSTGRES)
    facts["pg1"]["data_directory"] = "/srv/pg/primary"
    facts["pg2"].update(data_directory="/srv/pg/physical", data_dir_port=5432)
    check = judged(facts, components=physical("/srv/pg/primary"))["pg2"]
    assert check.status == FAILED
    assert check.detail == (
        "pg2's data_dir /srv/pg/primary is the data directory of backup source pg1 (main); "
        "pg2: the server running from /srv/pg/primary listens on port 5432, not on its port "
        "5433; pg2's server runs from /srv/pg/physical, not from its data_dir "
        "/srv/pg/primary: a physical restore there would not restore it")


def test_a_physical_target_reached_at_another_server_than_its_data_directorys_is_refused():
    # Connection settings that lead elsewhere (another host, a forwarded port): the server
    # that answers says the right data directory, but the one in data_dir listens on
    # another port, or none runs from it at all.
    for port, why in ((6543, "listens on port 6543, not on its port 5433"),
                      (None, "no server runs from its data_dir /srv/pg/physical")):
        facts = physical_facts("/srv/pg/physical")
        facts["pg2"]["data_dir_port"] = port
        check = judged(facts, components=physical())["pg2"]
        assert check.status == FAILED and why in check.detail, check.detail


def test_a_physical_copy_whose_data_directory_is_unknown_cannot_be_told_from_its_source():
    check = judged(physical_facts(None), components=physical())["pg2"]
    assert check.status == FAILED and "same PostgreSQL system_identifier" in check.detail
    assert "pg2's server does not say its data directory" in check.detail


def test_a_logical_target_with_its_sources_identifier_is_refused_wherever_it_runs():
    # Only a physical method makes copies: a dump's target sharing the source's identifier
    # is refused whatever its data directory.
    check = judged(physical_facts("/srv/pg/physical"))["pg2"]
    assert check.status == FAILED
