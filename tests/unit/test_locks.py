"""Locks judged by the kernel, not by PIDs: target locks shared by every DRTOOL_HOME, and a
drill's liveness read from its environment's lock."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drtool import paths
from drtool.components import Component, Place
from drtool.config import Environment
from drtool.core.model import Objectives, PhaseRecord
from drtool.drill import plan
from drtool.drill.journal_writer import JOURNAL
from drtool.drill.recovery import adopt_fallback_journals, record_unrecorded
from drtool.errors import LockedError
from drtool.store.history import History
from drtool.store.lock import EnvironmentLock, TargetLocks, lock_held

HOLD = """
import sys, time
from pathlib import Path
from drtool.store.lock import EnvironmentLock, TargetLocks
kind, folder, name = sys.argv[1:4]
if kind == "env":
    held = EnvironmentLock(Path(folder), name).acquire("drill", "d-holder")
else:
    held = TargetLocks(Path(folder))  # kept: a lock is given back when its object goes
    held.acquire([name], "drill", "d-holder", "other-env")
print("held", flush=True)
time.sleep(60)
"""


def holder(kind: str, folder: Path, name: str, **env: str) -> subprocess.Popen[str]:
    """Another process holding a lock until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, kind, str(folder), name],
                            stdout=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, **env})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_target_lock_taken_under_another_home_refuses_this_one(tmp_path, monkeypatch):
    folder = tmp_path / "locks"
    other = holder("target", folder, "postgres this machine:5432",
                   DRTOOL_HOME=str(tmp_path / "home-a"))
    try:
        monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "home-b"))
        mine = TargetLocks(folder)
        with pytest.raises(LockedError) as refused:
            mine.acquire(["redis this machine:6379", "postgres this machine:5432"], "drill",
                         "d-mine", "sandbox")
        assert refused.value.exit_code == 75
        assert ("restore target postgres this machine:5432 is busy: drill d-holder of "
                "other-env") in refused.value.message
        # All or nothing: the free key taken before the busy one was given back.
        assert mine.held == {}
    finally:
        other.kill()
        other.wait()
    mine.acquire(["postgres this machine:5432"], "drill", "d-mine", "sandbox")
    assert list(mine.held) == ["postgres this machine:5432"]
    mine.release()
    assert not list(folder.glob("*.owner.json"))


def test_the_controller_lock_folder_is_shared_whatever_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv("DRTOOL_LOCK_DIR", raising=False)
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "one"))
    first = TargetLocks().folder
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "two"))
    assert TargetLocks().folder == first
    monkeypatch.setenv("DRTOOL_LOCK_DIR", str(tmp_path / "mine"))
    assert TargetLocks().folder == tmp_path / "mine"


def environment(**targets: dict) -> Environment:
    """Sources pg1 and rd1; a target per keyword (pg... PostgreSQL, rd... Redis), each
    given its host's settings and its endpoint (address, port)."""
    hosts = {"pg1": {}, "rd1": {}, **{h: {k: v for k, v in t.items() if k == "connection"}
                                       for h, t in targets.items()}}
    components = []
    for host, given in targets.items():
        kind, port = ("postgres", 5432) if host.startswith("pg") else ("redis", 6379)
        place = Place(host, given.get("address", "127.0.0.1"), given.get("port", port))
        source = Place("pg1" if kind == "postgres" else "rd1", "10.0.0.1", port)
        components.append(Component(f"{kind}-{host}", kind, source, place))
    return Environment("e", Path("/nowhere"), "staging", Objectives(300, 120), {}, hosts,
                       tuple(components), Path("/nowhere"), ())


def target(facts: dict) -> dict:
    """{host: identity facts} -> {(component, "target"): facts}, as environment() names them."""
    return {((("postgres-" if h.startswith("pg") else "redis-") + h), "target"): f
            for h, f in facts.items()}


def test_target_keys_name_one_endpoint_however_it_is_spelled():
    spelled = [environment(pgt={"address": host, "port": 55402, "connection": "local"},
                           rdt={"address": "127.0.0.1", "port": 55404, "connection": "local"})
               for host in ("127.0.0.1", "localhost", "0.0.0.0", "::ffff:127.0.0.1")]  # noqa: S104
    keys = [plan.target_lock_keys(env) for env in spelled]
    assert keys[0] == ["postgres this machine:55402", "redis this machine:55404"]
    assert all(k == keys[0] for k in keys), keys


def test_identity_keys_name_the_machine_and_port_not_the_host_name():
    a = environment(pgt={"port": 5433}, rdt={"port": 6380})
    facts = target({"pgt": {"machine_id_sha256": "ab" * 32},
                    "rdt": {"machine_id_sha256": "ab" * 32}})
    assert plan.identity_lock_keys(a, facts) == [
        f"postgres on machine {'ab' * 8} port 5433", f"redis on machine {'ab' * 8} port 6380"]


def test_identity_keys_see_one_server_through_a_forwarded_port():
    # Environment A reaches the target through a port forwarded on another machine;
    # environment B reaches it directly. Machine and port differ; the server does not.
    through = environment(pgt={"port": 15432}, rdt={"port": 16379})
    direct = environment(pgt={"port": 5432}, rdt={"port": 6379})
    server = {"system_identifier": "7312345678901234567", "run_id": "9f" * 20}
    a = plan.identity_lock_keys(through, target({
        "pgt": {"machine_id_sha256": "cd" * 32, **server},
        "rdt": {"machine_id_sha256": "cd" * 32, **server}}))
    b = plan.identity_lock_keys(direct, target({
        "pgt": {"machine_id_sha256": "ab" * 32, **server},
        "rdt": {"machine_id_sha256": "ab" * 32, **server}}))
    assert set(a) & set(b) == {"postgres cluster 7312345678901234567",
                               f"redis server {'9f' * 20}"}


def running_journal(home: Path, env: str, drill_id: str, pid: int) -> Path:
    path = home / "evidence" / env / drill_id / JOURNAL
    path.parent.mkdir(parents=True)
    phases = [PhaseRecord("preflight", status="passed").__dict__,
              PhaseRecord("backup", status="running").__dict__]
    path.write_text(json.dumps({
        "schema": 5, "drill_id": drill_id, "env": env, "operation": "drill",
        "started_at": "2026-12-05T10:00:00.000+00:00", "status": "running", "pid": pid,
        "phases": phases}))
    return path


def test_a_running_journal_whose_pid_is_reused_is_recorded_once_the_lock_is_free(
        tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    # A live process whose command line even says drtool: judged by its PID it would be the
    # drill, still running, and never recorded.
    impostor = subprocess.Popen(["bash", "-c", "exec -a drtool-impostor sleep 60"])
    try:
        time.sleep(0.2)
        running_journal(tmp_path, "staging", "d-killed", impostor.pid)
        with History(paths.history_db()) as history:
            assert record_unrecorded("staging", history) == ["d-killed"]
            record = history.links("staging")[0][0].record
        assert record["status"] == "aborted"
        assert record["failure"]["kind"] == "interrupted"
    finally:
        impostor.kill()
        impostor.wait()


def test_a_running_journal_is_left_alone_while_its_environment_is_locked(tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    # The drill runs in another PID namespace (or its PID is unknown here): PID 999999999 does
    # not exist in ours, but the lock is held, so the drill may well be running.
    running_journal(tmp_path, "staging", "d-elsewhere", 999_999_999)
    other = holder("env", tmp_path / "locks", "staging")
    try:
        assert lock_held(tmp_path / "locks", "staging")
        with History(paths.history_db()) as history:
            assert record_unrecorded("staging", history) == []
    finally:
        other.kill()
        other.wait()
    assert not lock_held(tmp_path / "locks", "staging")
    with History(paths.history_db()) as history:
        assert record_unrecorded("staging", history) == ["d-elsewhere"]


def test_an_environment_lock_is_judged_held_without_being_taken(tmp_path):
    assert not lock_held(tmp_path, "staging")  # no lock file at all
    lock = EnvironmentLock(tmp_path, "staging").acquire("drill", "d-1")
    assert lock_held(tmp_path, "staging")
    assert not lock_held(tmp_path, "other")
    lock.release()
    assert not lock_held(tmp_path, "staging")
    # Judging did not take it: acquiring still works, in this process and in another.
    EnvironmentLock(tmp_path, "staging").acquire("drill", "d-2").release()


def test_a_journal_that_cannot_be_written_goes_to_the_fallback_and_is_put_back(
        tmp_path, monkeypatch):
    from drtool.core.model import Journal
    from drtool.drill.journal_writer import JournalWriter

    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    drill_id = "20261205T100000Z-abc123"
    folder = paths.evidence_dir("staging") / drill_id
    folder.parent.mkdir(parents=True)
    folder.write_text("not a folder")  # every write under it fails, as on a full disk
    journal = Journal(drill_id, "staging", "drill", "2026-12-05T10:00:00.000+00:00")
    writer = JournalWriter(folder, journal)

    assert writer.save() is False
    assert isinstance(writer.problem, OSError)
    assert writer.fallback is not None and writer.fallback.is_relative_to(tmp_path / "tmp")
    assert json.loads(writer.fallback.read_text())["drill_id"] == drill_id
    assert not writer.artifact_dir("rollback").is_relative_to(folder)
    assert (writer.fallback.parent.parent.stat().st_mode & 0o777) == 0o700

    folder.unlink()  # room again: the home save works, and the fallback follows it
    journal.status = "failed"
    assert writer.save() is True
    assert json.loads(writer.fallback.read_text())["status"] == "failed"
    (folder / JOURNAL).unlink()
    assert adopt_fallback_journals("staging") == [drill_id]
    assert json.loads((folder / JOURNAL).read_text())["status"] == "failed"
    assert not writer.fallback.exists()
    assert adopt_fallback_journals("other") == []


def test_a_fallback_never_hides_a_verdict_and_a_planted_one_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    fallbacks = paths.fallback_dir() / "journals"
    fallbacks.mkdir()
    drill_id = "20261205T100000Z-abc123"
    ended = running_journal(tmp_path / "home", "staging", drill_id, 1)
    ended.write_text(ended.read_text().replace('"running"', '"passed"'))
    stale = fallbacks / f"{drill_id}.json"
    stale.write_text(running_journal(tmp_path / "x", "staging", drill_id, 1).read_text())
    # Named after one drill, holding another; and a drill id that leaves the folder.
    planted = json.loads(stale.read_text())
    (fallbacks / "20261205T100000Z-ffffff.json").write_text(json.dumps(planted))
    planted["drill_id"] = "../../../../tmp/owned"
    (fallbacks / "owned.json").write_text(json.dumps(planted))

    assert adopt_fallback_journals("staging") == []
    assert json.loads(ended.read_text())["status"] == "passed"
    assert not stale.exists()
    assert not (tmp_path / "tmp" / "owned").exists()


def test_a_fallback_folder_another_user_could_use_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = paths.fallback_dir()
    folder.chmod(0o777)
    with pytest.raises(OSError, match="not a private folder"):
        paths.fallback_dir()
    folder.rmdir()
    folder.symlink_to(tmp_path)
    with pytest.raises(OSError, match="not a private folder"):
        paths.fallback_dir()
