"""The team's checks (drtool_checks) on the sandbox: the sandbox's own pass in a drill, each
kind fails with what it expected and what it found, and a check that cannot measure is a
failed check with its error, not an orchestration error."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.conftest import Drtool, copy_inventory_with_components, pg, rd

pytestmark = pytest.mark.integration


def team(journal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in journal["checks"] if c["name"].startswith("team.")}


def test_a_drill_runs_the_sandboxs_checks_and_records_each_by_name(passed_drill):
    checks = team(passed_drill)
    assert {name: (c["status"], c["expected"]) for name, c in checks.items()} == {
        "team.orders-exist": ("passed", ">= 1"),
        "team.every-order-has-lines": ("passed", "= 0"),
        "team.current-prices": ("passed", "matches ^SKU-[0-9]+$"),
        "team.customer-profile": ("passed", "= 'Customer 1'"),
        "team.job-queue": ("passed", "the key exists"),
        "team.api-reports-the-restored-orders": ("passed", "= team.orders-exist (60000)"),
        "team.latest-upload-readable": ("passed", "matches ^[0-9a-f]{64} "),
    }
    assert checks["team.orders-exist"]["actual"] == 60000
    assert checks["team.orders-exist"]["target"] == "sandbox-pg-target/main/appdb"
    assert checks["team.api-reports-the-restored-orders"]["actual"] == 60000
    assert checks["team.customer-profile"]["actual"] == "Customer 1"
    assert checks["team.job-queue"]["actual"] == "exists (stream)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_each_kind_fails_with_what_it_expected_and_found(sandbox: Drtool):
    health = f"http://127.0.0.1:{sandbox.port('app')}/health"
    checks = [
        {"name": "too-many-orders", "kind": "sql", "component": "main",
         "query": "SELECT count(*) FROM orders", "expect": {"at_most": 10}},
        {"name": "no-table", "kind": "sql", "component": "main", "database": "shop",
         "query": "SELECT * FROM shop.no_such_table", "expect": {"rows": True}},
        {"name": "tries-to-write", "kind": "sql", "component": "main",
         "query": "CREATE TABLE public.check_probe (id int)", "expect": {"rows": True}},
        {"name": "slow-query", "kind": "sql", "component": "main",
         "query": "SELECT pg_sleep(5)", "expect": {"rows": True}, "timeout_s": 1},
        {"name": "wrong-type", "kind": "redis", "component": "cache", "key": "customer:1",
         "type": "stream"},
        {"name": "no-such-key", "kind": "redis", "component": "cache", "key": "cache:nothing"},
        {"name": "few-customers", "kind": "redis", "component": "cache",
         "pattern": "customer:*", "expect": {"at_least": 1000000}},
        {"name": "api-down", "kind": "http", "service": "api",
         "url": f"http://127.0.0.1:{free_port()}/health"},
        {"name": "api-field", "kind": "http", "service": "api", "url": health,
         "json_path": "orders", "expect": {"equals": 1}},
        {"name": "api-no-field", "kind": "http", "service": "api", "url": health,
         "json_path": "invoices"},
        {"name": "command-fails", "kind": "command", "host": "sandbox-app",
         "argv": ["sh", "-c", "echo it broke >&2; exit 4"]},
        {"name": "command-output", "kind": "command", "host": "sandbox-app",
         "argv": ["echo", "hello"], "expect": {"matches": "^bye"}},
        {"name": "still-passes", "kind": "sql", "component": "main",
         "query": "SELECT count(*) FROM orders", "expect": {"at_least": 1}},
    ]
    env = copy_inventory_with_components(sandbox, "sandbox-bad-checks", {"drtool_checks": checks})
    code, backup = sandbox.json("backup", "--env", env)
    assert code == 0, backup.get("failure")
    restored = sandbox("restore", "--env", env, "--backup", backup["backup"]["id"])
    assert restored.returncode == 0, restored.stderr[-2000:]

    code, journal = sandbox.json("verify", "--env", env, "--backup", backup["backup"]["id"])

    assert code == 1, json.dumps(journal.get("failure"), indent=1)
    assert journal["failure"]["phase"] == "verify" and journal["failure"]["kind"] == "check"
    assert "team.too-many-orders" in journal["failure"]["reason"]
    found = {name[len("team."):]: (c["status"], c["expected"], c["actual"], c["detail"])
             for name, c in team(journal).items()}
    assert found.pop("still-passes") == ("passed", ">= 1", 60000, "")
    assert found.pop("too-many-orders") == ("failed", "<= 10", 60000, "at most 10 not met")
    assert found.pop("wrong-type") == ("failed", "type stream", "type hash", "")
    assert found.pop("no-such-key") == ("failed", "the key exists", "no such key", "")
    assert found.pop("few-customers") == ("failed", ">= 1000000", customers(sandbox),
                                          "at least 1000000 not met")
    assert found.pop("api-field") == ("failed", "= 1", 60000, "not equal")
    assert found.pop("command-output") == ("failed", "matches ^bye", "hello", "does not match")
    # Those that could not measure: failed, with the reason, never a failed phase.
    errors = {name: (status, detail) for name, (status, _e, actual, detail) in found.items()
              if actual is None}
    assert set(errors) == set(found), found
    assert all(status == "failed" for status, _ in errors.values())
    assert 'relation "shop.no_such_table" does not exist' in errors["no-table"][1]
    assert "read-only transaction" in errors["tries-to-write"][1]
    assert "statement timeout" in errors["slow-query"][1]
    assert "Connection refused" in errors["api-down"][1]
    assert errors["api-no-field"][1] == "the answer (HTTP 200) has no invoices"
    assert errors["command-fails"][1] == "exit 4: it broke"
    with pg(sandbox, "pg_target") as conn:  # read only: nothing was created
        assert conn.execute("SELECT to_regclass('public.check_probe')").fetchone()[0] is None
    assert [p["status"] for p in journal["phases"]] == ["passed", "failed"]


def customers(sandbox: Drtool) -> int:
    return len(list(rd(sandbox, "redis_target").scan_iter(match="customer:*", count=1000)))


def test_a_wrong_check_is_a_configuration_error_naming_its_file_and_key(drtool: Drtool):
    env = copy_inventory_with_components(drtool, "sandbox-wrong-check", {
        "drtool_checks[0].component": "cache", "drtool_checks[5].expect": {"equals_chek": "x"}},
        estate=True)

    done = drtool("validate", "--env", env)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "2 problems" in done.stderr and "Traceback" not in done.stdout + done.stderr
    assert "group_vars/all.yml" in done.stdout
    assert "drtool_checks[0].component: 'cache' is not a postgres component" in done.stdout
    assert "drtool_checks[5].expect: unknown key equals_chek" in done.stdout
