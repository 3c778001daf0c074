"""The team's checks: what a declaration may say, and how a measure is judged."""

from __future__ import annotations

import pytest

from drtool.components.model import Component, Place
from drtool.core import team_checks as tc

COMPONENTS = (
    Component("main", "postgres", Place("pg-a", "10.0.0.1", 5432), Place("pg-b", "10.0.0.2", 5432),
              databases=("appdb", "shop")),
    Component("cache", "redis", Place("rd-a", "10.0.0.3", 6379), Place("rd-b", "10.0.0.4", 6379)),
    Component("api", "service", None, Place("app")),
)
HOSTS = {"pg-a", "pg-b", "rd-a", "rd-b", "app", "ops"}
TARGETS = {"pg-b", "rd-b", "app"}

GOOD = [
    {"name": "orders", "kind": "sql", "component": "main", "database": "appdb",
     "query": "SELECT count(*) FROM orders", "expect": {"at_least": 1}},
    {"name": "lines", "kind": "sql", "component": "main",
     "query": "SELECT 1 FROM orders LIMIT 1", "expect": {"rows": True}},
    {"name": "profile", "kind": "redis", "component": "cache", "key": "customer:1",
     "type": "hash", "field": "name", "expect": {"equals": "Customer 1"}},
    {"name": "sessions", "kind": "redis", "component": "cache", "pattern": "session:*",
     "expect": {"at_least": 10}},
    {"name": "api-orders", "kind": "http", "service": "api", "url": "http://127.0.0.1/health",
     "json_path": "orders", "expect": {"equals_check": "orders"}},
    {"name": "disk", "kind": "command", "host": "ops", "argv": ["df", "/"],
     "expect": {"matches": "^Filesystem"}, "timeout_s": 5},
]


def problems(entries):
    return tc.problems_of(entries, COMPONENTS, HOSTS, TARGETS)


def test_a_realistic_list_has_no_problem_and_each_check_runs_where_it_reads():
    assert problems(GOOD) == []
    checks = {c.name: c for c in tc.from_entries(GOOD, COMPONENTS)}
    assert {n: c.host for n, c in checks.items()} == {
        "orders": "pg-b", "lines": "pg-b", "profile": "rd-b", "sessions": "rd-b",
        "api-orders": "app", "disk": "ops"}
    assert checks["lines"].target == "pg-b/main/appdb"  # the cluster's first database
    assert checks["orders"].recorded_as == "team.orders"


@pytest.mark.parametrize(("change", "key", "says"), [
    ({"kind": "ldap"}, "drtool_checks[0].kind", "must be one of sql, redis, http, command"),
    ({"component": "cache"}, "drtool_checks[0].component", "is not a postgres component"),
    ({"database": "nope"}, "drtool_checks[0].database", "is not a database of main"),
    ({"expect": {"about": 3}}, "drtool_checks[0].expect", "unknown key about"),
    ({"expect": {"matches": "("}}, "drtool_checks[0].expect.matches",
     "is not a regular expression"),
    ({"expect": {"equals_check": "ghost"}}, "drtool_checks[0].expect.equals_check",
     "'ghost' names no check"),
    ({"timeout_s": 0}, "drtool_checks[0].timeout_s", "0 is less than the minimum of 1"),
    ({"writes": "yes"}, "drtool_checks[0].writes", "must be true or false"),
    ({"name": "two words"}, "drtool_checks[0].name", "must be a plain name"),
    ({"name": "lines"}, "drtool_checks[1].name", "'lines' is also the name of drtool_checks[0]"),
])
def test_each_wrong_declaration_is_named_by_its_key(change, key, says):
    entries = [dict(GOOD[0], **change), GOOD[1]]
    found = problems(entries)
    assert any(k == key and says in m for k, m in found), found


def test_kind_specific_rules():
    assert problems([{"name": "a", "kind": "redis", "component": "cache"}]) == [
        ("drtool_checks[0]", "a redis check names either a key or a pattern")]
    assert problems([{"name": "a", "kind": "redis", "component": "cache", "pattern": "x*"}]) == [
        ("drtool_checks[0].expect", "is missing (what count of keys is right?)")]
    both = problems([{"name": "a", "kind": "http", "url": "http://x/", "service": "api",
                      "host": "app"}])
    assert both[0][1].startswith("an http check runs on a service's host or a named host")
    assert problems([{"name": "a", "kind": "http", "url": "ftp://x/", "host": "app"}])[0][0] == (
        "drtool_checks[0].url")
    assert problems([{"name": "a", "kind": "command", "host": "db9", "argv": ["true"]}]) == [
        ("drtool_checks[0].host", "'db9' is not a host of the inventory")]
    assert problems([{"name": "a", "kind": "sql", "component": "main", "query": "SELECT 1"}]) == [
        ("drtool_checks[0].expect", "is missing")]
    assert problems({"name": "a"}) == [("drtool_checks", "must be a list of checks, got dict")]


def test_a_check_may_write_only_on_a_restore_target():
    writer = {"name": "w", "kind": "command", "host": "ops", "argv": ["touch", "/x"],
              "writes": True}
    assert problems([writer]) == [
        ("drtool_checks[0].writes", "a check may write only on a restore target; ops is not one")]
    assert problems([dict(writer, host="app")]) == []


def judge(entry, result, values=None):
    check = tc.from_entries([entry], COMPONENTS)[0]
    return tc.judge(check, result, values or {})


@pytest.mark.parametrize(("expect", "value", "passed"), [
    ({"equals": 0}, 0, True), ({"equals": 0}, "0", True), ({"equals": 0}, 3, False),
    ({"equals": "ok"}, "ok", True), ({"equals": "ok"}, "OK", False),
    ({"at_least": 1}, 60000, True), ({"at_least": 1}, 0, False),
    ({"at_most": 5}, 5, True), ({"at_most": 5}, 6, False),
    ({"at_least": 1, "at_most": 5}, 9, False), ({"at_least": 1}, "many", False),
    ({"matches": "^SKU-[0-9]+$"}, "SKU-12", True), ({"matches": "^SKU-"}, "sku", False),
    ({"matches": "x"}, None, False),
])
def test_each_expectation_passes_and_fails(expect, value, passed):
    entry = dict(GOOD[0], expect=expect)
    check = judge(entry, {"value": value, "rows": 1, "error": None})
    assert check.passed is passed, check
    assert check.name == "team.orders" and check.target == "pg-b/main/appdb"
    assert check.actual == value
    if not passed:
        assert check.detail


def test_rows_wants_at_least_one_row():
    assert judge(GOOD[1], {"value": 1, "rows": 1}).passed
    empty = judge(GOOD[1], {"value": None, "rows": 0})
    assert not empty.passed and empty.actual == "0 rows" and empty.expected == "at least one row"
    assert empty.detail == "the query returned no row"


def test_a_check_that_could_not_measure_fails_with_its_error():
    check = judge(GOOD[0], {"value": None, "error": 'relation "orders" does not exist'})
    assert not check.passed
    assert check.detail == 'relation "orders" does not exist'
    assert check.expected == ">= 1"
    missing = judge(GOOD[0], None)
    assert not missing.passed and missing.detail == "the check did not run"


def test_redis_key_checks_say_what_differs():
    assert judge(GOOD[2], {"exists": True, "type": "hash", "ttl": -1, "value": "Customer 1"}).passed
    queue = {"name": "q", "kind": "redis", "component": "cache", "key": "queue:jobs",
             "type": "stream"}
    found = judge(queue, {"exists": True, "type": "stream", "ttl": -1, "value": None})
    assert (found.passed, found.expected, found.actual) == (True, "the key exists",
                                                            "exists (stream)")
    gone = judge(GOOD[2], {"exists": False, "type": None, "value": None})
    assert (gone.passed, gone.actual) == (False, "no such key")
    wrong = judge(GOOD[2], {"exists": True, "type": "string", "value": None})
    assert (wrong.expected, wrong.actual) == ("type hash", "type string")
    no_field = judge(GOOD[2], {"exists": True, "type": "hash", "value": None})
    assert (no_field.passed, no_field.actual) == (False, "no such field")
    ttl = dict(GOOD[2], ttl={"at_least": 3600})
    short = judge(ttl, {"exists": True, "type": "hash", "ttl": 60, "value": "Customer 1"})
    assert (short.passed, short.expected, short.actual) == (False, "TTL >= 3600", 60)


def test_http_status_comes_first_then_the_json_value():
    values = {"orders": 60000}
    assert judge(GOOD[4], {"status": 200, "value": 60000}, values).passed
    down = judge(GOOD[4], {"status": 503, "value": None}, values)
    assert (down.passed, down.expected, down.actual) == (False, "HTTP 200", "HTTP 503")
    differs = judge(GOOD[4], {"status": 200, "value": 59999}, values)
    assert not differs.passed and differs.expected == "= team.orders (60000)"
    assert differs.detail == "not equal to what check orders measured"
    alone = judge(GOOD[4], {"status": 200, "value": 1}, {})
    assert alone.detail == "check orders measured nothing to compare with"
    plain = {"name": "up", "kind": "http", "host": "app", "url": "http://x/"}
    ok = judge(plain, {"status": 200, "value": None})
    assert (ok.passed, ok.expected, ok.actual) == (True, "HTTP 200", "HTTP 200")


def test_judge_all_compares_across_checks_and_fails_the_silent_ones():
    checks = tc.from_entries(GOOD[:1] + GOOD[4:5], COMPONENTS)
    judged = tc.judge_all(checks, {"orders": {"value": 7, "rows": 1, "error": None},
                                   "api-orders": {"status": 200, "value": 7, "error": None}})
    assert [c.status for c in judged] == ["passed", "passed"]
    judged = tc.judge_all(checks, {"api-orders": {"status": 200, "value": 7, "error": None}})
    assert [c.status for c in judged] == ["failed", "failed"]
    assert judged[0].detail == "the check did not run"


def test_a_command_fails_on_its_exit_code_with_its_message():
    entry = {"name": "c", "kind": "command", "host": "ops", "argv": ["false"]}
    assert judge(entry, {"exit_code": 0, "value": "", "error": None}).passed
    failed = judge(entry, {"exit_code": 1, "value": "", "error": "exit 1: boom"})
    assert (failed.passed, failed.detail) == (False, "exit 1: boom")


def test_a_sql_check_on_a_cluster_of_databases_all_names_its_database():
    every = (Component("main", "postgres", Place("pg-a"), Place("pg-b"), all_databases=True),)
    check = {"name": "orders", "kind": "sql", "component": "main",
             "query": "SELECT 1", "expect": {"rows": True}}
    assert tc.problems_of([check], every, HOSTS, TARGETS) == [
        ("drtool_checks[0].database",
         "is missing: main says databases: all, so a check names its database")]
    named = dict(check, database="found-later")  # which exist, only the backup will know
    assert tc.problems_of([named], every, HOSTS, TARGETS) == []


def test_a_name_taken_twice_is_said_even_when_the_entry_has_other_problems():
    twice = [GOOD[0], {"name": "orders", "kind": "sql", "component": "main"}]  # no query
    found = problems(twice)
    assert ("drtool_checks[1].name", "'orders' is also the name of drtool_checks[0]: check "
            "names are unique") in found
    assert ("drtool_checks[1].query", "is missing") in found
