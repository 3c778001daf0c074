"""The component lists: their schema's problems (each with its key), the filters the roles
resolve components with, and the order services start in."""

from __future__ import annotations

import importlib.util

import pytest

from drtool import paths
from drtool.components import Component, Place, from_described, schema, service
from drtool.components import postgres as pg_kind

ROLES = paths.content_root() / "roles"
HOSTS = {"pg1", "pg2", "r1", "r2", "app1"}
FILTER = (paths.content_root() / "collections" / "ansible_collections" / "drtool" / "drill"
          / "plugins" / "filter" / "components.py")


def filters():
    spec = importlib.util.spec_from_file_location("drtool_filters", FILTER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def good() -> dict:
    return {
        "drtool_postgres_clusters": [{"name": "main", "databases": ["shop", "billing"],
                                      "source": {"host": "pg1", "port": 5432},
                                      "target": {"host": "pg2", "port": "5433"}}],
        "drtool_redis_instances": [{"name": "cache", "source": {"host": "r1"},
                                    "target": {"host": "r2", "rdb_path": "/r/dump.rdb"}}],
        "drtool_services": [{"name": "api", "host": "app1", "after": ["main", "cache"]},
                            {"name": "worker", "host": "app1", "after": ["api"]}],
    }


def problems(lists: dict) -> list:
    return schema.problems_of(lists, HOSTS, ROLES)


def test_a_realistic_estate_has_no_problem():
    assert problems(good()) == []


def test_every_problem_is_named_by_its_key():
    lists = good()
    lists["drtool_postgres_clusters"][0]["target"]["port"] = "five"
    lists["drtool_postgres_clusters"][0]["databases"] = []
    lists["drtool_redis_instances"].append({"name": "cache", "source": {"host": "r9"},
                                            "target": {"prot": 1}})
    lists["drtool_services"][0]["after"] = ["main", "nothing"]
    found = problems(lists)
    assert ("drtool_postgres_clusters[0].databases", "must not be empty") in found
    assert ("drtool_postgres_clusters[0].target.port", "must be a number, got 'five'") in found
    assert ("drtool_redis_instances[1].target.host", "is missing") in found
    unknown = [m for k, m in found if k == "drtool_redis_instances[1].target"]
    assert unknown and unknown[0].startswith("unknown key prot (known: ")
    assert ("drtool_redis_instances[1].name", "'cache' is also the name of "
            "drtool_redis_instances[0]: component names are unique") in found
    assert ("drtool_redis_instances[1].source.host", "'r9' is not a host of the inventory") in found
    assert ("drtool_services[0].after", "'nothing' names no component") in found


def test_a_setting_of_the_role_is_a_key_of_the_component_with_its_type():
    lists = good()
    lists["drtool_postgres_clusters"][0]["jobs"] = 4
    lists["drtool_postgres_clusters"][0]["target"]["bin_dir"] = "/usr/lib/postgresql/16/bin"
    assert problems(lists) == []
    lists["drtool_postgres_clusters"][0]["create_roles"] = "yes"
    assert problems(lists) == [("drtool_postgres_clusters[0].create_roles",
                                "must be true or false, got 'yes'")]


def test_an_environment_without_components_and_a_cycle_of_services_are_refused():
    every = ", ".join(k["list"] for k in schema.KINDS.values())
    assert problems({}) == [(None, "the environment declares no component: list its data "
                                   f"stores and services in {every}")]
    assert "drtool_postgres_clusters, drtool_redis_instances" in every
    lists = good()
    lists["drtool_services"][0]["after"] = ["worker"]
    assert problems(lists) == [("drtool_services", "the services' `after` form a cycle, so "
                                                   "none of api, worker could start")]
    assert problems({"drtool_services": {"name": "api"}}) == [
        ("drtool_services", "must be a list of components, got {'name': 'api'}")]


def test_services_start_in_waves_after_the_services_they_follow():
    components = [Component("main", "postgres", Place("pg1"), Place("pg2")),
                  Component("api", "service", None, Place("a"), after=("main",)),
                  Component("worker", "service", None, Place("b"), after=("api",)),
                  Component("web", "service", None, Place("a"))]
    assert service.waves(components) == [["api", "web"], ["worker"]]
    entries = [{"name": "api", "after": ["main"]}, {"name": "worker", "after": ["api"]},
               {"name": "web"}]
    assert filters().waves(entries) == [["api", "web"], ["worker"]]
    with pytest.raises(Exception, match="cycle"):
        filters().waves([{"name": "a", "after": ["b"]}, {"name": "b", "after": ["a"]}])


def test_a_component_resolves_from_role_defaults_host_variables_and_its_own_keys():
    f = filters()
    entries = good()["drtool_postgres_clusters"]
    defaults = {"drtool_postgres_port": 5432, "drtool_postgres_user": "postgres",
                "drtool_postgres_jobs": 2, "drtool_postgres_host": "127.0.0.1"}
    resolved = f.resolve(entries, "main", "target", {"drtool_postgres_user": "drtool"},
                         defaults, "drtool_postgres_")
    assert resolved["user"] == "drtool"  # the host's variable over the role's default
    assert resolved["port"] == "5433" and resolved["jobs"] == 2  # the side's own key
    assert resolved["inventory_host"] == "pg2" and resolved["host"] == "127.0.0.1"
    assert resolved["databases"] == ["shop", "billing"] and resolved["component_name"] == "main"
    assert f.on_host(entries, "source", "pg1") == ["main"]
    assert f.on_host(entries, "target", "pg1") == []
    assert f.only(["main", "other"], ["other"]) == ["other"]
    assert f.only(["main"], None) == ["main"]


def test_passwords_never_leave_describe_and_a_json_field_is_read_by_its_path():
    f = filters()
    public = f.public([{"name": "c", "password": "s3cret", "target": {"password": ""}}])
    assert public == [{"name": "c", "password": "(set)", "target": {}}]
    assert f.field({"checks": {"db": "ok"}, "items": [{"n": 1}]}, "checks.db") == "ok"
    assert f.field({"items": [{"n": 1}]}, "items.0.n") == 1
    assert f.field({"items": []}, "items.3.n") is None


def test_described_sides_become_components_in_their_lists_order():
    described = {
        "pg2": {"components": [{"name": "main", "kind": "postgres", "side": "target",
                                "values": {"host": "10.0.0.2", "port": "5433",
                                           "databases": ["shop"], "data_dir": "/d"}}]},
        "pg1": {"components": [{"name": "main", "kind": "postgres", "side": "source",
                                "values": {"port": 5432, "databases": ["shop"]}}],
                "component_lists": good()},
        "app1": {"components": [{"name": "api", "kind": "service", "side": "target",
                                 "values": {"after": ["main"]}}]},
    }
    main, api = from_described(described)
    assert main.source == Place("pg1", "127.0.0.1", 5432, None)
    assert main.target == Place("pg2", "10.0.0.2", 5433, "/d")
    assert main.databases == ("shop",)
    assert (api.kind, api.target, api.after) == ("service", Place("app1"), ("main",))


def test_every_kind_role_has_the_defaults_its_schema_reads():
    for kind in schema.KINDS:
        assert schema.role_defaults(ROLES, kind), kind


def test_databases_all_is_a_list_found_at_backup_and_postgres_is_never_drilled():
    lists = good()
    lists["drtool_postgres_clusters"][0]["databases"] = "all"
    assert problems(lists) == []
    for wrong, said in (("some", "must be a list of database names or all, got 'some'"),
                        (["shop", "postgres"], "must not list postgres: it is the maintenance "
                         "database drtool connects to while it drops and recreates the others"),
                        (["shop", "shop"], "lists a name twice"), ([], "must not be empty"),
                        (["shop", "../etc"], "must name databases that can be folders of a "
                         "backup: no '/', '.', '..' or control characters"),
                        ([".."], "must name databases that can be folders of a backup: no "
                         "'/', '.', '..' or control characters"),
                        (3, "must be a list of database names or all, got 3")):
        lists["drtool_postgres_clusters"][0]["databases"] = wrong
        assert problems(lists) == [("drtool_postgres_clusters[0].databases", said)], wrong


def test_a_cluster_of_databases_all_takes_the_databases_its_backup_recorded():
    from drtool.components import postgres
    from drtool.core.manifest import build_manifest
    from drtool.drill.rollback import found_databases

    from .test_manifest import PG

    described = {"pg1": {"components": [{"name": "main", "kind": "postgres", "side": "source",
                                         "values": {"databases": "all"}}],
                         "component_lists": good()},
                 "pg2": {"components": [{"name": "main", "kind": "postgres", "side": "target",
                                         "values": {"databases": "all"}}]}}
    (main,) = from_described(described)
    assert (main.databases, main.all_databases) == ((), True)
    assert postgres.databases_shown(main) == "all (found at preflight)"
    assert postgres.plan(main)["backup"][0][1].startswith(
        "pg_dump of the databases the preflight finds (all but postgres and the templates) "
        "with exact counts")
    assert found_databases([main]) == {"drtool_postgres_databases_of": {}}
    parts = {"main": {n: dict(PG, database=n) for n in ("shop", "billing")},
             "other": {"x": dict(PG, database="x")}}
    manifest = build_manifest("bk-1", "e", "2026-11-22T05:00:03+00:00", parts, {},
                              {"main": "pg1", "other": "pg3"})
    bound = postgres.found_in(main, manifest)
    assert bound.databases == ("billing", "shop") and bound.all_databases
    assert postgres.databases_shown(bound) == "billing, shop"
    assert found_databases([bound]) == {"drtool_postgres_databases_of": {
        "main": ["billing", "shop"]}}
    listed = Component("main", "postgres", None, None, databases=("shop",))
    assert postgres.found_in(listed, manifest) is listed
    assert found_databases([listed]) == {"drtool_postgres_databases_of": {}}


def test_the_rollback_of_a_killed_drill_takes_the_databases_from_its_journal():
    from drtool.core.model import Journal
    from drtool.drill.rollback import extravars_of

    journal = Journal("d", "e", "drill", "2026-12-05T10:00:00.000+00:00", scope={"components": [
        {"name": "main", "kind": "postgres", "databases": ["appdb", "reports"]},
        {"name": "cache", "kind": "redis"}]})
    assert extravars_of(journal, None)["drtool_postgres_databases_of"] == {
        "main": ["appdb", "reports"]}
    journal.scope = {"components": [{"name": "main", "kind": "postgres"}]}  # killed before
    assert extravars_of(journal, None)["drtool_postgres_databases_of"] == {}  # its backup


def test_a_method_and_a_setting_with_choices_take_only_their_values():
    lists = good()
    cluster = lists["drtool_postgres_clusters"][0]
    cluster.update(method="wal-g", recovery_counts="some")
    found = dict(problems(lists))
    assert found["drtool_postgres_clusters[0].method"] == (
        "'wal-g' is not one of ['dump', 'pgbackrest']")
    assert found["drtool_postgres_clusters[0].recovery_counts"] == (
        "'some' is not one of ['auto', 'slot', 'share', 'none']")
    cluster.update(method="pgbackrest", recovery_counts="slot")
    assert problems(lists) == []


def test_the_plan_of_a_physical_cluster_says_it_replaces_the_whole_data_directory():
    cluster = Component("main", "postgres", Place("pg1"), Place("pg2", path="/srv/pg/dr"),
                        databases=("shop",), settings={"method": "pgbackrest"})
    plan = pg_kind.plan(cluster)
    assert plan["disaster"] == [("target", "DESTROYS: stops the cluster and empties /srv/pg/dr")]
    assert "pgbackrest restore of the whole cluster into /srv/pg/dr" in plan["restore"][0][1]
    assert "pg_dump" not in str(plan)
    dumped = pg_kind.plan(Component("main", "postgres", Place("pg1"), Place("pg2"),
                                    databases=("shop",)))
    assert dumped["disaster"] == [("target", "DESTROYS: drops shop")]


def test_a_physical_target_is_reached_on_its_own_host_only():
    def target_at(address):
        return Component("main", "postgres", Place("pg1"),
                         Place("pg2", address=address, port=5432, path="/srv/pg/dr"),
                         settings={"method": "pgbackrest", "stanza": "main"})

    for local in ("127.0.0.1", "::1", "localhost", "/var/run/postgresql"):
        assert pg_kind.method_problems(target_at(local)) == []
    [(key, why)] = pg_kind.method_problems(target_at("10.20.0.11"))
    assert key == "drtool_postgres_clusters[main].target.host"
    assert why.startswith("'10.20.0.11': a physical restore writes the data directory on the")


def test_a_restore_recovers_to_the_recorded_point_or_to_the_target_asked_for():
    from types import SimpleNamespace

    from drtool.core.manifest import PhysicalPart

    part = PhysicalPart("main", "pg1", "pgbackrest", "main", "2.45",
                        {"label": "20261206-060844F"},
                        {"type": "lsn", "target": "0/5000028", "exclusive": True},
                        "slot", "7440", "15.8")
    manifest = SimpleNamespace(physical=[part])
    recorded = pg_kind.recovery_of(manifest)["main"]  # type: ignore[arg-type]
    assert recorded == {"backup_set": "20261206-060844F", "target_type": "lsn",
                        "target": "0/5000028", "exclusive": True}
    for asked, backup_set in ((("default", ""), "20261206-060844F"),
                              (("immediate", ""), "20261206-060844F"),
                              (("lsn", "0/6000000"), "20261206-060844F"),
                              (("time", "2026-12-06T03:38:00+00:00"), "")):
        got = pg_kind.recovery_of(manifest, asked)["main"]  # type: ignore[arg-type]
        assert got == {"backup_set": backup_set, "target_type": asked[0],
                       "target": asked[1], "exclusive": False}
