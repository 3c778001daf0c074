"""Faults of the targets themselves, injected for real during a sandbox drill: PostgreSQL
killed during pg_restore, a target PostgreSQL that is down and cannot start, a Redis that
does not come back from a bad RDB, an application that never gets healthy, and a full disk
under the safety snapshot.

Each test is one drill. The journal must say which phase failed and why, the exit code must
be the README's, the targets must end as before wherever a rollback is meant to put them
back, and the primaries are never touched."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Drtool,
    copy_inventory,
    copy_inventory_with_components,
    descendants,
    leases,
    pg,
    rd,
    wait_for_phase,
    wait_gone,
)
from tests.e2e.test_drill import target_state
from tests.integration.test_failures import app_health
from tests.integration.test_guard import primary_state
from tests.integration.test_interrupts import (
    REAL_BIN,
    assert_rolled_back,
    leftovers,
    wait_for_file,
    wrapped_bin_dir,
)

pytestmark = pytest.mark.integration

HELD_RESTORE = """#!/bin/sh
# pg_restore that, on its first call (the drill's restore), writes its PID and waits for the
# test's go file before it runs the real one; later calls (the rollback's) run at once. Only
# restores count: the roles check's reads of a dump (--schema-only) run at once.
dir=$(dirname "$0")
case "$1" in --version|--schema-only) exec {real}/pg_restore "$@";; esac
n=$(( $(cat "$dir/calls" 2>/dev/null || echo 0) + 1 )); echo $n > "$dir/calls"
if [ "$n" = 1 ]; then
  echo $$ > "$dir/held.pid"
  i=0
  while [ ! -e "$dir/go" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
fi
exec {real}/pg_restore "$@"
"""

BAD_RDB_START = """#!/bin/sh
# Redis's start command that, on its first call (the drill's restore), cuts the RDB it is
# about to load to half its size, after the restore checked it; later calls (the
# rollback's) start Redis on the file as it is.
dir=$(dirname "$0")
n=$(( $(cat "$dir/calls" 2>/dev/null || echo 0) + 1 )); echo $n > "$dir/calls"
if [ "$n" = 1 ]; then
  size=$(stat -c %s "{rdb}")
  truncate -s $((size / 2)) "{rdb}"
fi
exec {redis} "$@"
"""


def primaries_of(drtool: Drtool) -> dict[str, object]:
    """test_guard's primary_state, less the sentinel key each backup writes on the primary
    Redis (by design): what a drill must leave as it found it."""
    state = primary_state(drtool)
    sentinels = sum(1 for _ in rd(drtool, "redis_primary").scan_iter("drtool:sentinel:*"))
    state["redis_keys"] = int(str(state["redis_keys"])) - sentinels
    return state


def postmaster_pid(drtool: Drtool) -> int:
    """The PID of the target cluster's postmaster: the first line of its postmaster.pid."""
    data = drtool.layout.postgres_root / "pg_target" / "data"
    return int((data / "postmaster.pid").read_text().split("\n", 1)[0])


def freeze(pid: int) -> list[int]:
    """SIGSTOP `pid` and every process below it (those started while the first were being
    stopped too); the stopped PIDs, parents first, for SIGCONT."""
    stopped: list[int] = []
    todo = [pid]
    while todo:
        for each in todo:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGSTOP)
            stopped.append(each)
        todo = [each for each in descendants(pid) if each not in stopped]
    return stopped


def wait_until(what: str, probe: Any, timeout: float = 120, every: float = 0.05) -> Any:
    """Call `probe` until it returns something true; return that, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(every)
    pytest.fail(f"{what} did not happen within {timeout} s")


def rollback_task_done(journal_path: Path, host: str, task: str) -> bool:
    try:
        journal = json.loads(journal_path.read_text())
    except ValueError:
        return False
    rolled = journal.get("rollback") or {}
    return any(t["host"] == host and task in t["name"] for t in rolled.get("tasks", []))


def failed_at(journal: dict[str, Any], phase: str, hosts: list[str]) -> str:
    """Assert the journal records a failed drill, stopped at `phase` by `hosts`, with a
    reason; return the reason."""
    failure = journal["failure"]
    assert journal["status"] == "failed", failure
    assert journal["ended_at"], "the journal was left running"
    assert (failure["phase"], failure["kind"]) == (phase, "orchestration"), failure
    assert failure["hosts"] == hosts, failure
    assert failure["reason"].strip(), failure
    names = [p["name"] for p in journal["phases"]]
    statuses = [p["status"] for p in journal["phases"]]
    at = names.index(phase)
    assert statuses == ["passed"] * at + ["failed"] + ["skipped"] * (len(names) - at - 1)
    return str(failure["reason"])


def assert_recovered(sandbox: Drtool, journal: dict[str, Any], before: dict[str, object],
                     primaries: dict[str, object]) -> None:
    """The rollback passed and proved itself; the targets hold what they held, the
    application serves the primaries again, nothing the drill started is left running."""
    assert_rolled_back(sandbox, journal, before)
    assert primaries_of(sandbox) == primaries
    assert app_health(sandbox)["stores"] == "primary"
    assert leftovers(journal["drill_id"]) == []
    assert not leases_of(sandbox, journal["drill_id"])


def assert_untouched(sandbox: Drtool, journal: dict[str, Any], before: dict[str, object],
                     primaries: dict[str, object]) -> None:
    """Nothing destructive ran: no rollback, the targets exactly as before (the database's
    OID and Redis's run_id included), no lease left, the application on the primaries."""
    assert journal["rollback"] is None
    assert target_state(sandbox) == before
    assert primaries_of(sandbox) == primaries
    assert app_health(sandbox)["stores"] == "primary"
    assert not leases_of(sandbox, journal["drill_id"])


def leases_of(drtool: Drtool, drill_id: str) -> list[str]:
    return [name for name, lease in leases(drtool).items() if lease.get("drill_id") == drill_id]


@pytest.fixture
def drill_stopper() -> Iterator[list[subprocess.Popen[str]]]:
    """Drills a test started in the background; any still running at the end is killed
    (and rolled back by the next operation, as a killed drill is)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for drill in started:
        if drill.poll() is None:
            drill.kill()
            drill.wait(timeout=30)


def test_postgres_killed_during_pg_restore_fails_the_restore_and_is_rolled_back_once_it_is_back(
        sandbox: Drtool, passed_drill, drill_stopper):
    bindir = wrapped_bin_dir(sandbox, "held-restore-bin", "pg_restore",
                             HELD_RESTORE.format(real=REAL_BIN))
    env = copy_inventory_with_components(sandbox, "sandbox-pg-killed", {
        "drtool_postgres_clusters[0].target.bin_dir": str(bindir),
        "drtool_postgres_clusters[0].target.ready_timeout_s": 60})
    before, primaries = target_state(sandbox), primaries_of(sandbox)
    drill = sandbox.popen("drill", "--env", env, "--json")
    drill_stopper.append(drill)
    wait_for_file(bindir / "held.pid", timeout=240)
    journal_path = wait_for_phase(sandbox.home / "evidence" / env, "restore", proc=drill)
    postmaster = postmaster_pid(sandbox)

    # Let the restore go, and kill the server under it once pg_restore is connected.
    (bindir / "go").touch()
    with pg(sandbox, "pg_target", "postgres") as admin:
        wait_until("pg_restore connecting", lambda: admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore'"
        ).fetchone()[0])
    os.kill(postmaster, signal.SIGKILL)
    wait_gone(postmaster, timeout=10)
    # Its supervisor starts it again a little later, while the rollback waits for it.
    wait_until("the rollback reaching the PostgreSQL target", lambda: rollback_task_done(
        journal_path, "sandbox-pg-target", "Keep what the snapshot held"), timeout=180)
    time.sleep(3)
    up = sandbox("sandbox", "up")
    assert up.returncode == 0, up.stderr
    out, err = drill.communicate(timeout=300)

    assert drill.returncode == 3, err
    journal = json.loads(out)
    reason = failed_at(journal, "restore", ["sandbox-pg-target"])
    assert "pg_restore failed" in reason, reason
    # How the server's death shows depends on when it came: the sessions open at the kill
    # are cut; pg_restore's parallel workers still connecting are refused.
    assert any(death in reason for death in ("server closed the connection",
                                             "terminating connection",
                                             "Connection refused")), reason
    assert postmaster_pid(sandbox) != postmaster
    # On the code before, the rollback gave the target up at the first refused connection.
    assert any("Wait until the server takes connections" in t["name"]
               and t["host"] == "sandbox-pg-target" and t["status"] in ("ok", "changed")
               for t in journal["rollback"]["tasks"]), journal["rollback"]["tasks"]
    assert_recovered(sandbox, journal, before, primaries)
    assert not (sandbox.home / "snapshots" / env / journal["drill_id"]).exists()


def test_a_target_postgres_that_cannot_start_fails_the_drill_before_anything_is_destroyed(
        sandbox: Drtool, passed_drill, drill_stopper):
    env = copy_inventory(sandbox, "sandbox-pg-down", {})
    cluster = sandbox.layout.postgres_root / "pg_target"
    conf = cluster / "data" / "postgresql.conf"
    text = conf.read_text()
    before, primaries = target_state(sandbox), primaries_of(sandbox)
    try:
        drill = sandbox.popen("drill", "--env", env, "--json")
        drill_stopper.append(drill)
        # The preflight passed: the drill (and what it started) waits while the target
        # goes down, so the snapshot is the first to find it gone.
        wait_for_phase(sandbox.home / "evidence" / env, "snapshot", proc=drill)
        frozen = freeze(drill.pid)
        try:
            postmaster = postmaster_pid(sandbox)
            os.kill(postmaster, signal.SIGINT)  # a fast shutdown
            wait_gone(postmaster, timeout=60)
            conf.write_text(text + "\nthis line is not a setting\n")
        finally:
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        out, err = drill.communicate(timeout=300)
        # The fault held: the cluster cannot start while its configuration is broken.
        broken = sandbox("sandbox", "up")
        assert broken.returncode != 0, broken.stdout
        assert "syntax error" in (cluster / "postgres.log").read_text()[-4000:]
    finally:
        conf.write_text(text)
        up = sandbox("sandbox", "up")
        assert up.returncode == 0, up.stderr

    assert drill.returncode == 3, err
    journal = json.loads(out)
    reason = failed_at(journal, "snapshot", ["sandbox-pg-target"])
    assert f"PostgreSQL 127.0.0.1:{sandbox.port('pg_target')}" in reason, reason
    assert "Connection refused" in reason, reason
    assert_untouched(sandbox, journal, before, primaries)


def test_a_redis_that_does_not_come_back_from_a_bad_rdb_fails_the_restore_with_its_reason(
        sandbox: Drtool, passed_drill):
    bindir = sandbox.home / "bad-rdb-bin"
    shutil.rmtree(bindir, ignore_errors=True)
    bindir.mkdir()
    redis_dir = sandbox.home / "sandbox" / "redis-target"
    script = bindir / "redis-start"
    script.write_text(BAD_RDB_START.format(rdb=redis_dir / "dump.rdb",
                                           redis=shutil.which("redis-server")))
    script.chmod(0o755)
    env = copy_inventory_with_components(sandbox, "sandbox-bad-rdb", {
        "drtool_redis_instances[0].target.start_command": [str(script),
                                                           str(redis_dir / "redis.conf")],
        "drtool_redis_instances[0].target.ready_timeout_s": 5})
    before, primaries = target_state(sandbox), primaries_of(sandbox)

    code, journal = sandbox.json("drill", "--env", env)

    assert code == 3, journal["failure"]
    assert (bindir / "calls").read_text().split() == ["2"]  # the restore's, the rollback's
    reason = failed_at(journal, "restore", ["sandbox-redis-target"])
    assert f"Redis 127.0.0.1:{sandbox.port('redis_target')} did not come back within 5 s" in (
        reason), reason
    # Redis's own reason, from its log: on the code before, only "Connection refused".
    assert "Short read or OOM loading DB" in reason, reason
    assert sandbox.secret("redis_password") not in json.dumps(journal)
    assert_recovered(sandbox, journal, before, primaries)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_app_that_never_gets_healthy_fails_the_restart_and_is_resumed_on_the_primaries(
        sandbox: Drtool, passed_drill):
    # The real application, started on a restore database nobody listens for: it serves
    # /health, and answers 503.
    config = json.loads((sandbox.home / "sandbox" / "app.json").read_text())
    config["stores"]["restore"]["pg"] = ["127.0.0.1", closed_port()]
    unhealthy = sandbox.home / "app-unhealthy.json"
    unhealthy.write_text(json.dumps(config))
    env = copy_inventory_with_components(sandbox, "sandbox-app-unhealthy", {
        "drtool_services[0].start_command": ["{{ ansible_playbook_python }}", "-m",
                                             "drtool.sandbox.app", "start", "--stores",
                                             "restore", "--config", str(unhealthy)],
        "drtool_services[0].health_timeout_s": 3})
    before, primaries = target_state(sandbox), primaries_of(sandbox)

    code, journal = sandbox.json("drill", "--env", env)

    assert code == 3, journal["failure"]
    reason = failed_at(journal, "restart", ["sandbox-app"])
    # The api component's own health check, with the status it answered.
    assert reason.startswith("sandbox-app: api: task 'Wait for the health check to answer its "
                             "status"), reason
    assert "Status code was 503 and not [200]" in reason, reason
    assert journal["rto_s"] is None
    assert_recovered(sandbox, journal, before, primaries)


def test_a_service_that_does_not_stop_fails_the_disaster_before_any_data_is_destroyed(
        sandbox: Drtool, passed_drill):
    # Each host stops its own services and then destroys its own data (strategy free); the
    # api's stop fails. No host's data may go while a service could still be writing to
    # it: the play that destroys the data ends on every host before its first step.
    env = copy_inventory_with_components(sandbox, "sandbox-stop-fails", {
        "drtool_services[0].stop_command": ["false"]})
    before, primaries = target_state(sandbox), primaries_of(sandbox)

    code, journal = sandbox.json("drill", "--env", env)

    assert code == 3, journal["failure"]
    reason = failed_at(journal, "disaster", ["sandbox-app"])
    assert reason.startswith("sandbox-app: api: task 'Stop the application with its "
                             "command'"), reason
    disaster = next(p for p in journal["phases"] if p["name"] == "disaster")
    ran = [(t["host"], t["name"]) for t in disaster["tasks"] if t["status"] != "skipped"]
    assert not [name for _, name in ran if name.startswith(("Destroy", "Drop", "Flush",
                                                              "Empty"))], ran
    assert_recovered(sandbox, journal, before, primaries)


def test_a_full_disk_under_the_safety_snapshot_fails_it_before_anything_is_destroyed(
        sandbox: Drtool, passed_drill):
    mount = sandbox.home / "snapshot-tmpfs"
    mount.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        path = f"{mount}/{{{{ drtool_drill_id }}}}"
        # The PostgreSQL target's snapshot only: two targets filling one small disk would
        # race to be the one that finds it full. Dumped: a copy in the cluster would not
        # write to that disk.
        env = copy_inventory(sandbox, "sandbox-snapshot-full", {}, {
            "sandbox-pg-target": {"drtool_snapshot_path": path,
                                  "drtool_postgres_snapshot_method": "dump"}})
        before, primaries = target_state(sandbox), primaries_of(sandbox)

        code, journal = sandbox.json("drill", "--env", env)

        assert code == 3, journal["failure"]
        reason = failed_at(journal, "snapshot", ["sandbox-pg-target"])
        assert "No space left on device" in reason, reason
        # Nothing had changed the targets: the half-written snapshot went with the leases.
        assert not (mount / journal["drill_id"]).exists()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    assert_untouched(sandbox, journal, before, primaries)
