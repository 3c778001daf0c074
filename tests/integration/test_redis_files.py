"""A Redis restore replaces the RDB file and restarts the server: it must be the file the
server really loads. A drill target that keeps an AOF (it would load the AOF and ignore the
RDB) or that loads another file than its component's target rdb_path is refused at
preflight, with the reason, before anything is changed."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ansible_probe import only_failure, probe_runner
from tests.conftest import Drtool, copy_inventory, copy_inventory_with_components, rd

pytestmark = pytest.mark.integration

TARGET = "sandbox-redis-target/cache"  # the Redis `cache`'s target: its host and its name


@pytest.fixture
def target_with_aof(sandbox: Drtool) -> Iterator[Any]:
    """The sandbox's target Redis with appendonly yes for the test, off again after it (and
    the AOF folder it wrote removed)."""
    client = rd(sandbox, "redis_target")
    folder = Path(client.config_get("dir")["dir"]) / client.config_get("appenddirname")[
        "appenddirname"]
    client.config_set("appendonly", "yes")
    try:
        yield client
    finally:
        client.config_set("appendonly", "no")
        deadline = time.monotonic() + 30
        while client.info("persistence").get("aof_rewrite_in_progress"):
            assert time.monotonic() < deadline, "the AOF rewrite never ended"
            time.sleep(0.05)
        shutil.rmtree(folder, ignore_errors=True)


def state(client: Any) -> tuple[object, ...]:
    """What the target Redis is and holds: a restore or a restart would change it. (Keys and
    keys with an expiry per database; Redis's avg_ttl is an estimate that moves on its own.)"""
    keyspace = {db: (info["keys"], info["expires"])
                for db, info in client.info("keyspace").items()}
    return client.info("server")["run_id"], client.dbsize(), keyspace


def refused(sandbox: Drtool, env: str, client: Any) -> dict[str, Any]:
    """Drill `env`; check it was refused at preflight with the target untouched, and return
    the failure recorded in the journal."""
    before = state(client)
    code, journal = sandbox.json("drill", "--env", env)
    assert code == 3, journal["failure"]
    assert journal["status"] == "failed"
    failure = journal["failure"]
    assert failure["phase"] == "preflight" and failure["kind"] == "preflight"
    assert [p["status"] for p in journal["phases"]] == ["failed"] + ["skipped"] * 7
    assert journal["rollback"] is None
    # One check per Redis restore target: only the cache's is refused, the queue's passes.
    files = [c for c in journal["checks"] if c["name"] == "preflight.redis_files"]
    assert sorted((c["target"], c["status"]) for c in files) == [
        ("sandbox-queue-target/queue", "passed"), (TARGET, "failed")]
    assert state(client) == before
    return failure


def test_a_redis_target_with_appendonly_yes_is_refused_at_preflight(sandbox: Drtool,
                                                                    target_with_aof):
    env = copy_inventory(sandbox, "sandbox-redis-aof", {}, estate=True)
    failure = refused(sandbox, env, target_with_aof)
    assert failure["reason"] == (
        f"{TARGET}: Redis has appendonly yes: an RDB restore would be ignored on restart; turn "
        "AOF off on the drill target (appendonly no in its configuration) or name another "
        "restore target for it in drtool_redis_instances")
    assert target_with_aof.config_get("appendonly")["appendonly"] == "yes"


def test_a_redis_target_that_loads_another_file_than_the_inventory_says_is_refused(
        sandbox: Drtool):
    client = rd(sandbox, "redis_target")
    loads = Path(client.config_get("dir")["dir"]) / client.config_get("dbfilename")["dbfilename"]
    elsewhere = sandbox.home / "elsewhere" / "dump.rdb"
    env = copy_inventory_with_components(
        sandbox, "sandbox-redis-elsewhere",
        {"drtool_redis_instances[0].target.rdb_path": str(elsewhere)}, estate=True)
    failure = refused(sandbox, env, client)
    assert failure["reason"] == (
        f"{TARGET}: Redis loads {loads} at start but the target's rdb_path "
        f"(drtool_redis_rdb_path) is {elsewhere}: a restore would replace a file the server "
        f"does not read; set the target's rdb_path to {loads}")
    assert not elsewhere.exists()


def test_the_role_does_not_stop_a_redis_that_would_ignore_the_rdb(sandbox: Drtool,
                                                                   target_with_aof,
                                                                   tmp_path: Path):
    # The role's own line, for a playbook run without drtool's preflight: the load of an RDB
    # asks the running server first and leaves it running.
    rdb = tmp_path / "backup.rdb"
    rdb.write_bytes(b"REDIS0011")
    loads = Path(target_with_aof.config_get("dir")["dir"]) / "dump.rdb"
    before = state(target_with_aof), loads.read_bytes() if loads.exists() else None
    run = probe_runner(tmp_path)([{"name": "Load the RDB", "ansible.builtin.include_role": {
        "name": "drtool_redis", "tasks_from": "load_rdb"}, "vars": {
        "drtool_redis_port": sandbox.port("redis_target"),
        "drtool_redis_password": sandbox.secret("redis_password"),
        "__drtool_redis_rdb": str(rdb), "drtool_redis_rdb_path": str(loads),
        "drtool_redis_service_manager": "command", "drtool_redis_start_command": ["false"]}}])
    assert only_failure(run) == (
        f"Redis 127.0.0.1:{sandbox.port('redis_target')} was not stopped: it has appendonly "
        "yes: it would load its AOF at start and ignore the RDB")
    assert run.failures[0].task == "Stop the server without saving"
    assert (state(target_with_aof), loads.read_bytes() if loads.exists() else None) == before
