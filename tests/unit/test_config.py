from pathlib import Path

import pytest

from drtool.config import environment_from_inventory, find_inventory
from drtool.errors import EXIT_USAGE, ConfigError

HOSTS = {"pg_primary": "pg1", "pg_restore_target": "pg2", "redis_primary": "r1",
         "redis_restore_target": "r2", "app": "app1"}
TARGETS = ("pg2", "r2", "app1")


def listing(**overrides):
    common = {"drtool_tier": "staging", "drtool_rto_objective_s": 600,
              "drtool_rpo_objective_s": 60}
    common.update(overrides)
    hostvars = {h: dict(common, drtool_drill_target=h in TARGETS) for h in HOSTS.values()}
    data = {group: {"hosts": [host]} for group, host in HOSTS.items()}
    data["_meta"] = {"hostvars": hostvars}
    return data


def test_a_good_inventory_gives_objectives_tier_and_hosts():
    env = environment_from_inventory("staging", Path("/inv"), listing())
    assert env.objectives.rto_s == 600 and env.objectives.rpo_s == 60
    assert env.tier == "staging" and env.host("pg_restore_target") == "pg2"


def test_every_problem_is_reported_at_once():
    data = listing(drtool_rto_objective_s="soon", drtool_rpo_objective_s=-1)
    del data["app"]
    with pytest.raises(ConfigError) as caught:
        environment_from_inventory("staging", Path("/inv"), data)
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.problems == [
        "group app: needs exactly one host, has 0",
        "drtool_rto_objective_s: must be a positive number of seconds, got 'soon'",
        "drtool_rpo_objective_s: must be a positive number of seconds, got -1",
    ]


def test_a_production_tier_refuses_every_destructive_target():
    with pytest.raises(ConfigError) as caught:
        environment_from_inventory("prod", Path("/inv"), listing(drtool_tier="production"))
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "pg2 (pg_restore_target)", "r2 (redis_restore_target)", "app1 (app)"]
    assert all("tier is production" in p for p in caught.value.problems)


def test_a_missing_tier_counts_as_production():
    data = listing()
    for hostvars in data["_meta"]["hostvars"].values():
        del hostvars["drtool_tier"]
    with pytest.raises(ConfigError, match="tier is production"):
        environment_from_inventory("e", Path("/inv"), data)


def test_an_unmarked_target_or_a_source_as_target_is_refused():
    data = listing()
    data["_meta"]["hostvars"]["r2"]["drtool_drill_target"] = "yes"  # a string is not true
    data["pg_restore_target"] = {"hosts": ["pg1"]}  # the primary as its own restore target
    data["_meta"]["hostvars"]["pg1"]["drtool_drill_target"] = True
    with pytest.raises(ConfigError) as caught:
        environment_from_inventory("e", Path("/inv"), data)
    assert caught.value.problems == [
        "pg1 (pg_restore_target): refused, it is also a backup source",
        "r2 (redis_restore_target): refused, not marked drtool_drill_target: true",
    ]


def test_unknown_and_malformed_environment_names_are_usage_errors():
    with pytest.raises(ConfigError, match="unknown environment 'nope'.*sandbox"):
        find_inventory("nope")
    with pytest.raises(ConfigError, match="not an environment name"):
        find_inventory("../etc")
