import shutil
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
    ssh_hostname,
    with_connection_addresses,
)
from drtool.errors import EXIT_USAGE, ConfigError

ADDRESSES = {"pg1": "10.9.0.11", "pg2": "10.9.0.12", "r1": "10.9.0.13", "r2": "10.9.0.14",
             "app1": "10.9.0.15"}
ALLOWED = "sandbox, lab, dev, test, staging, drill"
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


# The scenarios below are written compactly, one component side per host by group (and its
# endpoint as postgres_*/redis_* keys); as_described turns them into what
# playbooks/describe.yml publishes: each host's resolved component sides and the lists.
SIDE_OF = {"pg_primary": ("postgres", "main", "source"),
           "pg_restore_target": ("postgres", "main", "target"),
           "redis_primary": ("redis", "cache", "source"),
           "redis_restore_target": ("redis", "cache", "target"),
           "app": ("service", "app", "target")}


def as_described(hosts):
    lists = {"drtool_postgres_clusters": [], "drtool_redis_instances": [], "drtool_services": []}
    entries, out = {}, {}
    for host in sorted(hosts):
        settings = dict(hosts[host])
        found = []
        for group in settings.get("groups", []):
            if group not in SIDE_OF:
                continue
            kind, name, side = SIDE_OF[group]
            if kind == "postgres":
                values = {"host": settings.get("postgres_host", "127.0.0.1"),
                          "port": settings.get("postgres_port", 5432),
                          "data_dir": settings.get("postgres_data_dir", ""),
                          "databases": ["appdb"]}
            elif kind == "redis":
                values = {"host": settings.get("redis_host", "127.0.0.1"),
                          "port": settings.get("redis_port", 6379),
                          "rdb_path": settings.get("redis_rdb_path") or "/var/lib/redis/dump.rdb"}
            else:
                values = {"after": ["main", "cache"]}
            found.append({"name": name, "kind": kind, "side": side, "values": values})
            if name not in entries:
                entry = {"name": name, **({"databases": ["appdb"]} if kind == "postgres" else {})}
                entries[name] = entry
                lists[{"postgres": "drtool_postgres_clusters", "redis": "drtool_redis_instances",
                       "service": "drtool_services"}[kind]].append(entry)
            if kind == "service":
                entries[name]["host"] = host
            else:
                entries[name][side] = {"host": host}
        settings["components"] = found
        out[host] = settings
    for settings in out.values():
        settings["component_lists"] = lists
    return out


def messages(hosts):
    _settings, problems, refusals = check_environment("e", as_described(hosts))
    return [(p.host, p.key, p.message) for p in problems + refusals]


def test_a_good_environment_gives_objectives_tier_components_and_cadence():
    env = environment_from_description("staging", Path("/inv"), as_described(described()))
    assert env.objectives.rto_s == 600 and env.objectives.rpo_s == 60
    assert env.tier == "staging" and env.cadence_days == 7
    postgres, redis, app = env.components
    assert (postgres.name, postgres.kind, postgres.source.host, postgres.target.host,
            postgres.databases) == ("main", "postgres", "pg1", "pg2", ("appdb",))
    assert (redis.name, redis.kind, redis.source.host, redis.target.host) == (
        "cache", "redis", "r1", "r2")
    assert (app.kind, app.source, app.target.host, app.after) == (
        "service", None, "app1", ("main", "cache"))


def test_every_problem_is_reported_at_once_with_its_key():
    hosts = described()
    for settings in hosts.values():
        settings.update(rto_objective_s="soon", rpo_objective_s="-1")
    del hosts["app1"]
    assert messages(hosts) == [
        (None, "drtool_rto_objective_s", "must be a positive number of seconds, got 'soon'"),
        (None, "drtool_rpo_objective_s", "must be a positive number of seconds, got '-1'"),
    ]
    with pytest.raises(ConfigError) as caught:
        environment_from_description("e", Path("/inv"), as_described(hosts))
    assert caught.value.exit_code == EXIT_USAGE and len(caught.value.problems) == 2


def test_a_production_tier_refuses_every_destructive_target_but_not_a_backup():
    hosts = described(**{h: {"tier": "production"} for h in GROUPS})
    refused = [(host, msg) for host, _key, msg in messages(hosts)]
    assert refused == [(h, "refused as a destructive target: its tier is production: "
                           f"'production' is not one of the non-production tiers ({ALLOWED}), "
                           "the only exact names that allow destructive steps")
                       for h in ("pg2", "r2", "app1")]
    with pytest.raises(ConfigError, match="pg2: drtool_tier: refused"):
        environment_from_description("prod", Path("/inv"), as_described(hosts))
    backup_only = environment_from_description("prod", Path("/inv"), as_described(hosts),
                                               touches_targets=False)
    assert backup_only.tier == "production"


def test_a_production_group_pulled_into_a_staging_inventory_is_refused():
    # The target's own tier comes from the production group it was pulled in with.
    hosts = described(pg2={"tier": "production"})
    assert [(h, k, m.split(":")[:2]) for h, k, m in messages(hosts)] == [
        ("pg2", "drtool_tier", ["refused as a destructive target", " its tier is production"])]


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
            "(component main)") in messages(hosts)


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


# -- the production guard: tiers are an allow-list, addresses are identities -----------------

@pytest.mark.parametrize("tier", ["Production", "prod", "PROD", "", None, "Staging", "staging ",
                                  "qa", "None", "production"])
def test_every_tier_but_the_exact_non_production_names_is_production(tier):
    hosts = described(pg2={"tier": tier})
    seen = "not set (null)" if tier is None else repr(tier)
    assert messages(hosts) == [("pg2", "drtool_tier", "refused as a destructive target: its "
                                f"tier is production: {seen} is not one of the non-production "
                                f"tiers ({ALLOWED}), the only exact names that allow "
                                "destructive steps")]
    settings, _problems, _refusals = check_environment("e", as_described(described(
        **{h: {"tier": tier} for h in GROUPS})))
    assert settings["production"] is True  # `drtool validate`: backups only


@pytest.mark.parametrize("tier", ["sandbox", "lab", "dev", "test", "staging", "drill"])
def test_the_documented_non_production_tiers_allow_a_drill(tier):
    hosts = described(**{h: {"tier": tier} for h in GROUPS})
    assert messages(hosts) == []
    settings, _problems, _refusals = check_environment("e", as_described(hosts))
    assert settings["production"] is False
    env = environment_from_description("e", Path("/inv"), as_described(hosts))
    assert env.production_hosts() == set()


def test_an_environment_declares_more_non_production_tiers_but_never_a_production_one():
    declared = {"nonproduction_tiers": ["qa", "perf"]}
    hosts = described(**{h: {"tier": "qa", **declared} for h in GROUPS})
    assert messages(hosts) == []
    hosts = described(**{h: {"tier": "Prod-copy", "nonproduction_tiers": ["Prod-copy", "qa"]}
                         for h in GROUPS})
    found = messages(hosts)
    assert found[0] == (None, "drtool_nonproduction_tiers", "cannot declare a production tier "
                        "as non-production: Prod-copy")
    assert [(h, k) for h, k, _m in found[1:]] == [(h, "drtool_tier") for h in ("pg2", "r2", "app1")]
    assert "(sandbox, lab, dev, test, staging, drill, qa)" in found[1][2]
    hosts = described(**{h: {"nonproduction_tiers": "qa"} for h in GROUPS})
    assert messages(hosts) == [(None, "drtool_nonproduction_tiers",
                                "must be a list of tier names, got 'qa'")]


def test_an_ipv4_mapped_ipv6_address_is_the_ipv4_address():
    hosts = described(pg2={"address": "::ffff:" + ADDRESSES["pg1"]})
    assert messages(hosts)[0] == ("pg2", None, "refused as a destructive target: it is the "
                                  "same machine as backup source pg1 (10.9.0.11)")
    hosts = described(pg2={"postgres_host": "::ffff:" + ADDRESSES["pg1"]})
    assert messages(hosts) == [("pg2", None, "refused as a destructive target: its postgres "
                                "endpoint 10.9.0.11:5432 is backup source pg1's")]


@pytest.mark.parametrize("spelling", ["0.0.0.0", "::", "::ffff:127.0.0.1",  # noqa: S104
                                      "127.0.0.2", "::1", "localhost"])
def test_every_spelling_of_this_machine_reaches_a_local_primary_on_the_same_port(spelling):
    # The sandbox's shape: every host local, each service on its own port; then the target
    # Redis is written as another spelling of this machine, on the primary's port.
    local = {"connection": "local"}
    hosts = described(**{h: dict(local) for h in GROUPS})
    hosts["pg2"]["postgres_port"] = 5433
    hosts["r2"].update(redis_port=6379, redis_host=spelling)
    assert messages(hosts) == [("r2", None, "refused as a destructive target: its redis "
                                f"endpoint {THIS_MACHINE}:6379 is backup source r1's")]


def test_the_address_judged_is_where_ssh_config_sends_the_connection(tmp_path):
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host pg-drill-alias\n  HostName {ADDRESSES['pg1']}\n")
    hosts = described(pg2={"address": "pg-drill-alias", "ssh_args": f"-F {config}"})
    assert with_connection_addresses(hosts)["pg2"]["connection_address"] == ADDRESSES["pg1"]
    assert messages(hosts)[0] == ("pg2", None, "refused as a destructive target: it is the "
                                  "same machine as backup source pg1 (10.9.0.11)")
    # What the guard judged is kept for the journal's scope; a local host is this machine.
    env = environment_from_description("e", Path("/inv"), as_described(described(
        pg2={"address": "pg-drill-alias", "ssh_args": f"-F {config}", "postgres_port": 5433,
             "tier": "staging"}, r2={"connection": "local"})), touches_targets=False)
    assert env.hosts["pg2"]["connection_address"] == ADDRESSES["pg1"]
    assert env.hosts["r2"]["connection_address"] == THIS_MACHINE
    assert env.hosts["app1"]["connection_address"] == ADDRESSES["app1"]


def test_without_ssh_the_described_address_is_judged(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert ssh_hostname("pg-drill-alias", "-F /nonexistent") == "pg-drill-alias"
    assert ssh_hostname("10.9.0.12", "-o 'unbalanced") == "10.9.0.12"


# -- paths drtool deletes: never /, never a data directory or what holds one -----------------

DATA_DIRS = {"pg1": {"postgres_data_dir": "/var/lib/postgresql/15/main"},
             "pg2": {"postgres_data_dir": "/srv/pg/target/data"},
             "r1": {"redis_rdb_path": "/var/lib/redis/dump.rdb"},
             "r2": {"redis_rdb_path": "/srv/redis-target/dump.rdb"}}


def with_data_dirs(**overrides):
    hosts = described(**DATA_DIRS)
    for host, changes in overrides.items():
        hosts[host].update(changes)
    return hosts


def path_messages(hosts, store_root="/srv/drtool/backups"):
    from drtool.components import from_described
    from drtool.config import deletable_path_problems

    hosts = as_described(hosts)
    return [(p.host, p.key, p.message)
            for p in deletable_path_problems(hosts, from_described(hosts), store_root)]


def test_paths_beside_the_data_directories_are_accepted():
    assert path_messages(with_data_dirs()) == []
    # Inside a data store's folder is not what deletes it; the id placeholders are kept.
    assert path_messages(with_data_dirs(
        pg2={"snapshot_path": "/srv/pg/target/snapshots/DRILL_ID"})) == []


@pytest.mark.parametrize("path", ["/", "//", "/./", "/srv/.."])
def test_a_root_snapshot_path_is_refused_on_every_host_naming_each(path):
    hosts = with_data_dirs(**{h: {"snapshot_path": path} for h in GROUPS})
    found = path_messages(hosts)
    if ".." in path:
        assert found == [(h, "drtool_snapshot_path", f"must not contain '..', got {path!r}")
                         for h in sorted(GROUPS)]
        return
    assert found == [(h, "drtool_snapshot_path", "must not be / (it holds every data directory):"
                      " drtool deletes what it writes there") for h in sorted(GROUPS)]


def test_a_snapshot_path_that_is_the_target_clusters_data_directory_is_refused():
    hosts = with_data_dirs(pg2={"snapshot_path": "/srv/pg/target/data/"})
    assert path_messages(hosts) == [(
        "pg2", "drtool_snapshot_path",
        "/srv/pg/target/data is the data directory of pg2's PostgreSQL "
        "(drtool_postgres_data_dir: /srv/pg/target/data); drtool deletes what it writes there")]


def test_a_backup_path_that_holds_a_primarys_data_directory_is_refused():
    hosts = with_data_dirs(pg1={"backup_path": "/var/lib/postgresql"})
    assert path_messages(hosts) == [(
        "pg1", "drtool_backup_path",
        "/var/lib/postgresql holds the data directory of pg1's PostgreSQL "
        "(drtool_postgres_data_dir: /var/lib/postgresql/15/main); drtool deletes what it "
        "writes there")]


def test_a_redis_dir_counts_as_the_folder_of_its_rdb_file_and_defaults_on_a_target():
    hosts = with_data_dirs(r1={"backup_path": "/var/lib/redis"})
    assert [m[:2] for m in path_messages(hosts)] == [("r1", "drtool_backup_path")]
    assert "r1's Redis (drtool_redis_rdb_path: /var/lib/redis)" in path_messages(hosts)[0][2]
    # A target that names no RDB file loads the role's default, /var/lib/redis/dump.rdb.
    hosts = described(r2={"snapshot_path": "/var/lib/redis"})
    assert [m[:2] for m in path_messages(hosts)] == [("r2", "drtool_snapshot_path")]


def test_every_hosts_data_directories_count_against_every_hosts_paths():
    # The app host's snapshot path is the target cluster's folder: hosts may share a disk.
    hosts = with_data_dirs(app1={"snapshot_path": "/srv/pg/target"})
    assert path_messages(hosts)[0][:2] == ("app1", "drtool_snapshot_path")


@pytest.mark.parametrize(("value", "why"), [
    ("snapshots/DRILL_ID", "must be an absolute path on the host, got 'snapshots/DRILL_ID'"),
    ("/work/../var/lib/postgresql/15/main",
     "must not contain '..', got '/work/../var/lib/postgresql/15/main'"),
    ("", "must be set to an absolute path on the host"),
])
def test_relative_paths_and_dot_dot_are_refused(value, why):
    assert path_messages(with_data_dirs(pg2={"snapshot_path": value})) == [
        ("pg2", "drtool_snapshot_path", why)]


def test_the_store_and_the_backup_path_inside_it_are_judged_as_the_store_root():
    hosts = with_data_dirs(**{h: {"backup_path": "STORE_PATH"} for h in GROUPS})
    assert path_messages(hosts) == []
    assert path_messages(hosts, store_root="/srv/pg") == [(
        None, "drtool_store_path", "/srv/pg holds the data directory of pg2's PostgreSQL "
        "(drtool_postgres_data_dir: /srv/pg/target/data); drtool deletes what it writes there")]


def test_a_relative_data_directory_is_a_problem_of_its_own():
    hosts = with_data_dirs(pg2={"postgres_data_dir": "data"})
    assert path_messages(hosts) == [
        ("pg2", "drtool_postgres_data_dir", "must be an absolute path on the host, got 'data'")]


def test_a_refused_path_stops_validation_and_every_operation_with_one_line():
    hosts = with_data_dirs(pg2={"snapshot_path": "/srv/pg/target/data"})
    assert ("pg2", "drtool_snapshot_path") in [m[:2] for m in messages(hosts)]
    with pytest.raises(ConfigError) as caught:  # a backup too: the path is a problem
        environment_from_description("e", Path("/inv"), as_described(hosts),
                                     touches_targets=False)
    assert caught.value.exit_code == EXIT_USAGE and "\n" not in str(caught.value)
    assert "pg2: drtool_snapshot_path: /srv/pg/target/data is the data directory" in str(
        caught.value)


def test_a_key_set_in_a_vars_folder_is_found_in_the_file_ansible_reads_last(tmp_path):
    folder = tmp_path / "inv" / "group_vars" / "all"
    folder.mkdir(parents=True)
    (folder / "10-sandbox.yml").write_text("drtool_services: []\ndrtool_tier: sandbox\n")
    (folder / "20-estate.yml").write_text("drtool_services: [{name: api}]\n")
    assert locate(tmp_path / "inv", "drtool_services", None) == "group_vars/all/20-estate.yml"
    assert locate(tmp_path / "inv", "drtool_tier", None) == "group_vars/all/10-sandbox.yml"
