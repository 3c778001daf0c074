"""Interrupts and rollbacks cannot race: a phase is stopped for real before the rollback
starts, a second signal does not abandon the rollback, a killed drill is rolled back by the
next operation, and a rollback proves what it restored.

The restore is made slow for real: the inventory points the PostgreSQL target's bin_dir at a
folder whose pg_restore waits before it runs the real one, on the calls the test chooses."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import (
    Drtool,
    alive,
    copy_inventory_with_components,
    leases,
    rd,
    wait_for_phase,
    wait_gone,
)
from tests.e2e.test_drill import target_state
from tests.integration.test_failures import app_health

pytestmark = pytest.mark.integration

REAL_BIN = Path("/usr/lib/postgresql/15/bin")
STATE_KEYS = ("database_oid", "sentinels", "rows", "redis_keys", "redis_sentinels")
PG_SNAPSHOT = Path("postgres", "main", "appdb")  # the sandbox's database in a safety snapshot
WRAPPER = """#!/bin/sh
# pg_restore that waits first on the calls listed in slow-calls (a line "N" waits 40 s, "N S"
# waits S seconds), writing its PID for the test.
# Only restores count: the roles check's reads of a dump (--schema-only) run at once.
dir=$(dirname "$0")
case "$1" in --version|--schema-only) exec {real}/pg_restore "$@";; esac
n=$(( $(cat "$dir/calls" 2>/dev/null || echo 0) + 1 )); echo $n > "$dir/calls"
wait=$(awk -v n="$n" '$1 == n {{ print ($2 == "" ? 40 : $2) }}' "$dir/slow-calls" 2>/dev/null)
if [ -n "$wait" ]; then echo $$ > "$dir/slow-$n.pid"; sleep "$wait"; fi
exec {real}/pg_restore "$@"
"""


def wrapped_bin_dir(drtool: Drtool, name: str, tool: str, script: str) -> Path:
    """A PostgreSQL bin folder under DRTOOL_HOME whose `tool` is `script` and whose other
    tools are the real ones: what `drtool_postgres_bin_dir` points a target at."""
    bindir = drtool.home / name
    shutil.rmtree(bindir, ignore_errors=True)
    bindir.mkdir()
    for real in REAL_BIN.iterdir():
        (bindir / real.name).symlink_to(real)
    (bindir / tool).unlink()
    (bindir / tool).write_text(script)
    (bindir / tool).chmod(0o755)
    return bindir


def slow_restore_env(drtool: Drtool, name: str, slow_calls: tuple[int, ...],
                     waits: dict[int, int] | None = None) -> tuple[str, Path]:
    """An environment whose pg_restore waits on the given calls (1: the drill's restore,
    2: the rollback's), 40 s or as long as `waits` says for the call; returns its name and
    the wrapper's folder."""
    bindir = wrapped_bin_dir(drtool, f"slow-bin-{name}", "pg_restore",
                             WRAPPER.format(real=REAL_BIN))
    (bindir / "slow-calls").write_text("".join(
        f"{n} {(waits or {}).get(n, 40)}\n" for n in slow_calls))
    # A rollback runs pg_restore only from a dumped snapshot (a copy is renamed back).
    dumped = {"drtool_postgres_clusters[0].snapshot_method": "dump"} if 2 in slow_calls else {}
    env = copy_inventory_with_components(drtool, name, {
        "drtool_postgres_clusters[0].target.bin_dir": str(bindir), **dumped})
    return env, bindir


def wait_for_file(path: Path, timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    pytest.fail(f"{path} never appeared")


def leftovers(drill_id: str) -> list[str]:
    """Command lines of live processes that carry the drill's run marker, except the
    services a rollback (re)starts on purpose: Redis, the application and its worker."""
    marker = f"DRTOOL_RUN_ID={drill_id}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0") and alive(int(environ.parent.name)):
                found.append(environ.with_name("cmdline").read_bytes().replace(b"\0", b" ")
                             .decode())
        except OSError:
            continue
    restarted = ("redis-server", "drtool.sandbox.app serve", "drtool.sandbox.worker serve")
    return [c for c in found if not any(service in c for service in restarted)]


def assert_rolled_back(sandbox: Drtool, journal: dict, before: dict) -> None:
    """The rollback passed with its checks of every store, and the targets hold what they
    held before the drill (all but the database's OID: it was recreated)."""
    assert journal["rollback"]["status"] == "passed", rollback_failure(journal)
    checks = [c for c in journal["checks"] if c["name"].startswith("rollback.")]
    assert {c["name"] for c in checks} >= {"rollback.postgres.database",
                                           "rollback.postgres.row_count",
                                           "rollback.redis.key_count"}
    assert all(c["status"] == "passed" for c in checks), checks
    after = target_state(sandbox)
    for key in STATE_KEYS[1:]:
        assert after.get(key) == before.get(key), key


def rollback_failure(journal: dict) -> object:
    """What a failed rollback says, and its failed tasks: the assertion message."""
    rolled = journal["rollback"]
    return rolled["error"], [t for t in rolled["tasks"] if t["status"] == "failed"]


def test_sigterm_stops_a_running_restore_before_the_rollback(sandbox: Drtool, passed_drill):
    # After a passed drill the targets hold data: the rollback has counts to prove.
    env, bindir = slow_restore_env(sandbox, "sandbox-slow-restore", (1,))
    before = target_state(sandbox)
    drill = sandbox.popen("drill", "--env", env, "--json")
    restore_pid = wait_for_file(bindir / "slow-1.pid")

    drill.send_signal(signal.SIGTERM)
    out, err = drill.communicate(timeout=300)

    assert drill.returncode == 130, err
    journal = json.loads(out)
    # The pg_restore that was still waiting was stopped before the rollback ran: on the code
    # before this test it slept on, and restored into the target under the rollback.
    assert not alive(restore_pid), "the interrupted pg_restore outlived the drill"
    assert leftovers(journal["drill_id"]) == []
    assert journal["status"] == "aborted" and journal["failure"]["kind"] == "interrupted"
    statuses = [p["status"] for p in journal["phases"]]
    assert statuses == ["passed"] * 4 + ["aborted"] + ["skipped"] * 3
    assert_rolled_back(sandbox, journal, before)
    assert app_health(sandbox)["stores"] == "primary"
    # The snapshot was removed only once the rollback had checked out.
    assert not (sandbox.home / "snapshots" / env / journal["drill_id"]).exists()


def test_a_second_sigterm_during_the_rollback_does_not_abandon_it(sandbox: Drtool, passed_drill):
    # The rollback's pg_restore waits long enough for both signals to land in it, and no
    # longer: the test waits it out.
    env, bindir = slow_restore_env(sandbox, "sandbox-slow-rollback", (1, 2), {2: 10})
    before = target_state(sandbox)
    drill = sandbox.popen("drill", "--env", env, "--json")
    wait_for_file(bindir / "slow-1.pid")
    drill.send_signal(signal.SIGTERM)
    rollback_restore = wait_for_file(bindir / "slow-2.pid")  # the rollback's own pg_restore

    drill.send_signal(signal.SIGTERM)
    drill.send_signal(signal.SIGINT)
    out, err = drill.communicate(timeout=300)

    assert drill.returncode == 130, err
    journal = json.loads(out)
    assert journal["status"] == "aborted" and journal["ended_at"]
    assert journal["rollback"]["status"] == "passed", rollback_failure(journal)
    assert any("SIGTERM during the rollback" in w for w in journal["warnings"])
    assert any("SIGINT during the rollback" in w for w in journal["warnings"])
    assert not alive(rollback_restore)
    after = target_state(sandbox)
    for key in STATE_KEYS[1:]:
        assert after.get(key) == before.get(key), key
    saved = json.loads((sandbox.home / "evidence" / env / journal["drill_id"] /
                        "journal.json").read_text())
    assert saved["status"] == "aborted"


def test_a_killed_drill_is_rolled_back_by_the_next_operation(sandbox: Drtool, passed_drill):
    env, bindir = slow_restore_env(sandbox, "sandbox-killed", (1,))
    before = target_state(sandbox)
    drill = sandbox.popen("drill", "--env", env)
    restore_pid = wait_for_file(bindir / "slow-1.pid")
    journal_path = wait_for_phase(sandbox.home / "evidence" / env, "restore", proc=drill)

    drill.kill()  # SIGKILL: no handler runs, nothing is rolled back, the journal says running
    drill.wait(timeout=30)
    killed = json.loads(journal_path.read_text())
    assert killed["status"] == "running"
    assert alive(restore_pid)  # ansible-playbook's orphans carry on without drtool
    # Until it is rolled back, the killed drill is not recorded as over.
    code, history = sandbox.json("history", "--env", env)
    assert code == 0 and all(r["drill_id"] != killed["drill_id"] for r in history)

    done = sandbox("rollback", "--env", env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Recovered killed drill {killed['drill_id']}: rollback passed" in done.stdout
    wait_gone(restore_pid, timeout=5)
    assert leftovers(killed["drill_id"]) == []
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "aborted" and journal["ended_at"]
    assert journal["rollback"]["status"] == "passed", rollback_failure(journal)
    assert journal["failure"]["phase"] == "restore"
    assert "drtool was killed" in journal["failure"]["reason"]
    assert [p["status"] for p in journal["phases"]][4:] == ["aborted", "skipped", "skipped",
                                                           "skipped"]
    after = target_state(sandbox)
    for key in STATE_KEYS[1:]:
        assert after.get(key) == before.get(key), key
    assert app_health(sandbox)["stores"] == "primary"
    code, history = sandbox.json("history", "--env", env)
    statuses = {r["drill_id"]: r["status"] for r in history}
    assert statuses[killed["drill_id"]] == "aborted"
    assert sandbox("evidence", "verify").returncode == 0
    # Nothing left to do: a second rollback finds nothing.
    again = sandbox("rollback", "--env", env, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["recovered"] == []


def test_a_rollback_that_does_not_match_its_snapshot_fails_and_keeps_the_snapshot(
        sandbox: Drtool, passed_drill):
    env, bindir = slow_restore_env(sandbox, "sandbox-tampered", (1,))
    drill = sandbox.popen("drill", "--env", env)
    restore_pid = wait_for_file(bindir / "slow-1.pid")
    journal_path = wait_for_phase(sandbox.home / "evidence" / env, "restore", proc=drill)
    drill.kill()
    drill.wait(timeout=30)
    drill_id = json.loads(journal_path.read_text())["drill_id"]
    snapshot = sandbox.home / "snapshots" / env / drill_id
    state = json.loads((snapshot / PG_SNAPSHOT / "state.json").read_text())
    state["counts"]["public.orders"] += 1  # what the snapshot claims no longer matches it
    (snapshot / PG_SNAPSHOT / "state.json").write_text(json.dumps(state))

    done = sandbox("drill", "--env", env, "--json")

    assert done.returncode == 3, done.stderr
    assert not alive(restore_pid)
    journal = json.loads(journal_path.read_text())
    assert journal["rollback"]["status"] == "failed"
    assert "rollback.postgres.row_count" in journal["rollback"]["error"]
    assert "public.orders" in journal["rollback"]["error"]
    # The snapshot's copy is in the database's place (its rename is the rollback), and its
    # record is kept.
    assert (snapshot / PG_SNAPSHOT / "state.json").is_file(), "the snapshot must be kept"
    assert state["method"] == "template"
    new = json.loads(done.stdout)
    assert new["status"] == "failed" and new["failure"]["kind"] == "orchestration"
    assert drill_id in new["failure"]["reason"]
    assert [p["status"] for p in new["phases"]] == ["skipped"] * 8  # nothing else ran
    # Not over until its rollback passes: still running, still unrecorded, and tried again
    # (and refused again) by every operation that would touch the targets.
    assert journal["status"] == "running"
    code, history = sandbox.json("history", "--env", env)
    assert code == 0 and drill_id not in {r["drill_id"] for r in history}
    again = sandbox("rollback", "--env", env)
    assert again.returncode == 3 and drill_id in again.stderr

    # A person puts the snapshot's record right; the next rollback finishes the job, and
    # leaves Redis (proved by the first attempt) alone.
    state["counts"]["public.orders"] -= 1
    (snapshot / PG_SNAPSHOT / "state.json").write_text(json.dumps(state))
    fixed = sandbox("rollback", "--env", env, "--json")
    assert fixed.returncode == 0, fixed.stderr
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "aborted" and journal["rollback"]["status"] == "passed"
    checks = {c["name"]: c for c in journal["checks"] if c["name"].startswith("rollback.")}
    assert checks["rollback.redis.snapshot"]["detail"] == (
        "an earlier attempt rolled it back and proved it")
    assert checks["rollback.postgres.database"]["status"] == "passed"
    assert not snapshot.exists()
    assert app_health(sandbox)["stores"] == "primary"


def test_a_rollback_after_cleanup_removed_the_snapshot_keeps_the_verified_restore(
        sandbox: Drtool):
    # The application cannot be resumed: cleanup fails after it removed the snapshots.
    env = copy_inventory_with_components(sandbox, "sandbox-no-resume", {
        "drtool_services[0].resume_command": ["false"]}, estate=True)
    code, journal = sandbox.json("drill", "--env", env)

    assert code == 3, journal["failure"]
    assert journal["failure"]["phase"] == "cleanup"
    checks = {c["name"]: c for c in journal["checks"] if c["name"].startswith("rollback.")}
    assert checks["rollback.postgres.snapshot"]["status"] == "passed"
    assert "keeps the verified restore" in checks["rollback.postgres.snapshot"]["detail"]
    # The reaper stopped the Redis the drill had started; with no snapshot to load, the
    # rollback started it again as it was.
    assert journal["rollback"]["status"] == "failed"  # the application still cannot resume
    assert "Resume the application" in journal["rollback"]["error"]
    assert rd(sandbox, "redis_target").ping()
    # The data targets rolled back: their leases (the uploads tree's too, on the host of the
    # service that would not resume) are given back; the other service was resumed.
    assert not [name for name, lease in leases(sandbox).items()
                if lease.get("drill_id") == journal["drill_id"]]
    with urllib.request.urlopen(f"http://127.0.0.1:{sandbox.port('worker')}/health",
                                timeout=5) as answer:
        assert answer.status == 200
    # On the code before, the rollback dropped the database it had just verified.
    state = target_state(sandbox)
    assert state["database_oid"] is not None
    assert state["rows"][0] == next(c["expected"] for c in journal["checks"]
                                    if c["target"].endswith("public.order_items")
                                    and c["name"] == "postgres.row_count")
    # The application back on the primaries, for the tests after this one.
    start = subprocess.run([sys.executable, "-m", "drtool.sandbox.app", "start", "--stores",
                            "primary"], env=sandbox.env, capture_output=True, text=True,
                           check=False)
    assert start.returncode == 0, start.stderr
