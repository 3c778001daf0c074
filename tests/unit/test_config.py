from pathlib import Path

import pytest

from drtool.config import (
    THIS_MACHINE,
    Problem,
    check_environment,
    environment_from_description,
    find_inventory,
    locate,
    render,
)
from drtool.errors import EXIT_USAGE, ConfigError

ADDRESSES = {"pg1": "10.9.0.11", "pg2": "10.9.0.12", "r1": "10.9.0.13", "r2": "10.9.0.14",
             "app1": "10.9.0.15"}
GROUPS = {"pg1": "pg_primary", "pg2": "pg_restore_target", "r1": "redis_primary",
          "r2": "redis_restore_target", "app1": "app"}


def described(**overrides):
    hosts = {}
    for host, group in GROUPS.items():
        hosts[host] = {
            "groups": [group], "connection": "ssh", "address": ADDRESSES[host], "tier": "staging",
            "drill_target": group in ("pg_restore_target", "redis_restore_target", "app"),
            "postgres_host": "127.0.0.1", "postgres_port": 5432, "redis_host": "127.0.0.1",
            "redis_port": 6379, "rto_objective_s": "600", "rpo_objective_s": "60",
            "growing_tables": [], "store_path": None, "cadence_days": "7",
            "backup_path": "/work/backups/BACKUP_ID", "snapshot_path": "/work/snap/DRILL_ID",
        }
    for host, changes in overrides.items():
        hosts[host].update(changes)
    return hosts


def messages(hosts):
    _settings, problems, refusals = check_environment("e", hosts)
    return [(p.host, p.key, p.message) for p in problems + refusals]


def test_a_good_environment_gives_objectives_tier_groups_and_cadence():
    env = environment_from_description("staging", Path("/inv"), described())
    assert env.objectives.rto_s == 600 and env.objectives.rpo_s == 60
    assert env.tier == "staging" and env.host("pg_restore_target") == "pg2"
    assert env.cadence_days == 7


def test_every_problem_is_reported_at_once_with_its_key():
    hosts = described()
    for settings in hosts.values():
        settings.update(rto_objective_s="soon", rpo_objective_s="-1")
    del hosts["app1"]
    assert messages(hosts) == [
        (None, "app", "needs exactly one host, has 0"),
        (None, "drtool_rto_objective_s", "must be a positive number of seconds, got 'soon'"),
        (None, "drtool_rpo_objective_s", "must be a positive number of seconds, got '-1'"),
    ]
    with pytest.raises(ConfigError) as caught:
        environment_from_description("e", Path("/inv"), hosts)
    assert caught.value.exit_code == EXIT_USAGE and len(caught.value.problems) == 3


def test_a_production_tier_refuses_every_destructive_target_but_not_a_backup():
    hosts = described(**{h: {"tier": "production"} for h in GROUPS})
    refused = [(host, msg) for host, _key, msg in messages(hosts)]
    assert refused == [(h, "refused as a destructive target: its tier is production")
                       for h in ("pg2", "r2", "app1")]
    with pytest.raises(ConfigError, match="pg2: drtool_tier: refused"):
        environment_from_description("prod", Path("/inv"), hosts)
    backup_only = environment_from_description("prod", Path("/inv"), hosts, touches_targets=False)
    assert backup_only.tier == "production"


def test_a_production_group_pulled_into_a_staging_inventory_is_refused():
    # The target's own tier comes from the production group it was pulled in with.
    hosts = described(pg2={"tier": "production"})
    assert messages(hosts) == [("pg2", "drtool_tier",
                                "refused as a destructive target: its tier is production")]


def test_an_unmarked_target_is_refused_and_only_a_real_true_marks_one():
    hosts = described(r2={"drill_target": "yes"})
    assert messages(hosts) == [("r2", "drtool_drill_target", "refused as a destructive target: "
                                "it is not marked drtool_drill_target: true")]


def test_a_backup_source_listed_as_its_own_target_is_refused():
    hosts = described()
    hosts["pg1"]["groups"] = ["pg_primary", "pg_restore_target"]
    hosts["pg1"]["drill_target"] = True
    del hosts["pg2"]
    assert ("pg1", None, "refused as a destructive target: it is also a backup source "
            "(pg_primary)") in messages(hosts)


def test_the_same_machine_under_two_names_is_refused():
    hosts = described(pg2={"address": ADDRESSES["pg1"]})
    assert messages(hosts) == [
        ("pg2", None, "refused as a destructive target: it is the same machine as backup "
                      "source pg1 (10.9.0.11)"),
        ("pg2", None, "refused as a destructive target: its postgres endpoint 10.9.0.11:5432 "
                      "is backup source pg1's"),
    ]


def test_localhost_and_127_0_0_1_are_the_same_machine():
    hosts = described(r1={"address": "127.0.0.1"}, app1={"address": "localhost"})
    assert messages(hosts) == [("app1", None, "refused as a destructive target: it is the same "
                                f"machine as backup source r1 ({THIS_MACHINE})")]


def test_the_primarys_address_and_port_under_another_name_are_refused():
    # A different host name and ssh address, but its PostgreSQL is the primary's.
    hosts = described(pg2={"postgres_host": ADDRESSES["pg1"], "postgres_port": 5432})
    assert messages(hosts) == [("pg2", None, "refused as a destructive target: its postgres "
                                "endpoint 10.9.0.11:5432 is backup source pg1's")]


def test_one_machine_with_separate_services_is_allowed_for_local_connections():
    # The sandbox: every host is this machine, each service on its own port.
    local = {"connection": "local", "address": "x"}
    hosts = described(**{h: dict(local) for h in GROUPS})
    hosts["pg2"]["postgres_port"] = 5433
    hosts["r2"]["redis_port"] = 6380
    assert messages(hosts) == []
    hosts["r2"]["redis_port"] = 6379  # now the target Redis *is* the primary
    assert messages(hosts) == [("r2", None, "refused as a destructive target: its redis "
                                f"endpoint {THIS_MACHINE}:6379 is backup source r1's")]


def test_problems_name_the_file_that_sets_the_key(tmp_path):
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("drtool_rto_objective_s: soon\n")
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    pg_restore_target:\n      hosts:\n        pg2:\n"
        "          drtool_tier: production\n")
    assert locate(tmp_path, "drtool_rto_objective_s", None) == "group_vars/all.yml"
    assert render(tmp_path, Problem("refused", "drtool_tier", "pg2")) == (
        "hosts.yml: pg2: drtool_tier: refused")
    # A key set for every host in group_vars is found there, not in the host's listing.
    assert render(tmp_path, Problem("bad", "drtool_rto_objective_s", "pg2")) == (
        "group_vars/all.yml: pg2: drtool_rto_objective_s: bad")
    # A key set nowhere points at the file listing the host: where to add it.
    assert render(tmp_path, Problem("unset", "drtool_drill_target", "pg2")) == (
        "hosts.yml: pg2: drtool_drill_target: unset")
    assert render(tmp_path, Problem("must be set", "drtool_store_path")) == (
        "drtool_store_path: must be set")


def test_unknown_and_malformed_environment_names_are_usage_errors():
    with pytest.raises(ConfigError, match="unknown environment 'nope'.*sandbox"):
        find_inventory("nope")
    with pytest.raises(ConfigError, match="not an environment name"):
        find_inventory("../etc")
