"""The pgbackrest method, against the sandbox's real pgBackRest repository: the primary
archives its WAL there (stanza `sandbox`), and inventories/sandbox-physical restores the
whole cluster into pg_physical's data directory, recovered to a point the drill sets (with
counts that match it exactly under concurrent writers) or to a point in time. A drill that
cannot reach its target fails naming the WAL it lacked and rolls the target back; a target
whose data directory is the source's is refused before anything stops."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drtool.paths import content_root
from tests.conftest import Drtool, leases, pg

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
BENCH = "bench"  # a database of the primary's own, for the writers


def physical_env(drtool: Drtool, name: str, component: dict[str, Any] | None = None,
                 target: dict[str, Any] | None = None) -> str:
    """A copy of inventories/sandbox-physical as environment NAME, its cluster's keys (and
    its target's) changed as given."""
    folder = drtool.home / "inventories" / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(content_root() / "inventories" / "sandbox-physical", folder)
    path = folder / "group_vars" / "all.yml"
    values = yaml.safe_load(path.read_text())
    values["drtool_postgres_clusters"][0].update(component or {})
    values["drtool_postgres_clusters"][0]["target"].update(target or {})
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return name


def repository(drtool: Drtool) -> Path:
    return drtool.layout.postgres_root / "pgbackrest" / "repo"


def physical_state(drtool: Drtool) -> dict[str, Any]:
    """What pg_physical is and holds: its identity and its appdb's exact counts."""
    with pg(drtool, "pg_physical", "postgres") as admin:
        system = admin.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
        databases = sorted(r[0] for r in admin.execute(
            "SELECT datname FROM pg_database WHERE NOT datistemplate"))
    with pg(drtool, "pg_physical") as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1")]
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    return {"system_identifier": system, "databases": databases, "counts": counts}


def wal_after_newest_backup(drtool: Drtool, repo: Path, least: int = 3) -> list[Path]:
    """The WAL segments of the archive in `repo` from its newest backup's start on (not the
    backup history files), at least `least` of them: the primary switches to new segments
    until there are. A hole among them breaks every recovery from that backup; one before
    it is retention's business (`backups verify` only warns)."""
    manifest = (repo / "backup" / "sandbox" / "latest" / "backup.manifest").read_text()
    start = re.search(r'backup-archive-start="([0-9A-F]{24})"', manifest)
    assert start, "the newest backup's manifest names no first WAL segment"

    def listed() -> list[Path]:
        return sorted(p for p in (repo / "archive" / "sandbox").glob("15-1/*/0*")
                      if ".backup" not in p.name and p.name[:24] >= start[1])

    deadline = time.monotonic() + 60
    with pg(drtool, "pg_primary") as conn:
        while len(listed()) < least:
            assert time.monotonic() < deadline, f"fewer than {least} segments were archived"
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS wal_filler (n int)")
            conn.execute("INSERT INTO wal_filler VALUES (1)")
            conn.execute("SELECT pg_switch_wal()")
            time.sleep(0.5)
    return listed()


def manifest_of(journal: dict[str, Any]) -> dict[str, Any]:
    return json.loads(Path(journal["backup"]["manifest"]).read_text())


def checks_named(journal: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for c in journal["checks"] if c["name"] == name]


@pytest.fixture(scope="module")
def written_drill(sandbox: Drtool) -> Iterator[tuple[int, dict[str, Any]]]:
    """A physical drill of one database of the primary while four pgbench clients write to
    it all along: its counts are made by the slot method."""
    with pg(sandbox, "pg_primary", "postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH}")
    env = dict(os.environ, PGPASSWORD=sandbox.secret("postgres_password"))
    where = ["-h", "127.0.0.1", "-p", str(sandbox.port("pg_primary")), "-U", "postgres"]
    subprocess.run([PGBENCH, "-i", "-q", "-s", "1", *where, BENCH], env=env, check=True,
                   capture_output=True)
    # Four clients, at 200 transactions a second in all: concurrent enough to move every
    # count during the drill, without taking the machine from the tests beside it.
    writers = subprocess.Popen([PGBENCH, "-n", "-c", "4", "-R", "200", "-T", "600", *where,
                                BENCH], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)  # the writers are at it before the drill begins
        assert writers.poll() is None, writers.stderr.read() if writers.stderr else ""
        name = physical_env(sandbox, "physical-bench", {"databases": [BENCH]})
        yield sandbox.json("drill", "--env", name)
    finally:
        writers.terminate()
        writers.wait(timeout=30)
        with pg(sandbox, "pg_primary", "postgres") as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH} WITH (FORCE)")


def test_a_physical_drill_counts_exactly_under_concurrent_writes(written_drill):
    code, journal = written_drill
    assert code == 0, journal.get("failure")
    physical = manifest_of(journal)["physical"][0]
    assert physical["counts_method"] == "slot"
    assert physical["recovery_target"]["type"] == "lsn"
    assert physical["recovery_target"]["exclusive"] is True
    assert physical["backup"]["label"] and physical["pgbackrest_version"]
    counts = {c["target"].rsplit(":", 1)[1]: c for c in checks_named(journal, "postgres.row_count")}
    # The writers grew the history while the drill ran: every count matched exactly all the
    # same (none of these tables is declared as growing).
    for table in ("public.pgbench_accounts", "public.pgbench_history",
                  "public.pgbench_branches", "public.pgbench_tellers"):
        assert counts[table]["status"] == "passed", counts[table]
        assert counts[table]["expected"] == counts[table]["actual"]
    assert counts["public.pgbench_accounts"]["expected"] == 100000
    assert counts["public.pgbench_history"]["expected"] > 0
    assert journal["tool_versions"]["pgbackrest"] == physical["pgbackrest_version"]
    # Preflight measured the target's room against the repository's newest backup.
    [room] = checks_named(journal, "preflight.room")
    assert room["status"] == "passed" and room["actual"] > 0, room
    assert room["expected"].endswith(f"bytes free for backup {physical['backup']['label']}")


def test_the_restore_is_timed_as_copy_wal_replay_and_promotion(written_drill):
    _code, journal = written_drill
    restore = next(p for p in journal["phases"] if p["name"] == "restore")
    steps = [t for t in restore["tasks"] if t["action"] == "drtool.postgres.physical"]
    assert [t["name"] for t in steps] == [
        "main: copy the backup's files (pgbackrest restore)",
        "main: replay WAL to the recovery target", "main: end recovery and promote"]
    assert all(t["duration_s"] is not None and t["duration_s"] >= 0 for t in steps)
    assert steps[0]["ended_at"] <= steps[1]["started_at"] <= steps[2]["started_at"]
    # The three fit in the restore phase.
    assert sum(t["duration_s"] for t in steps) <= restore["duration_s"]


def test_a_restored_copy_never_archives_into_the_sources_repository(sandbox: Drtool,
                                                                    written_drill):
    _code, journal = written_drill
    with pg(sandbox, "pg_physical", "postgres") as admin:
        assert admin.execute("SHOW archive_mode").fetchone()[0] == "off"
        timeline = admin.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()[0]
        # Promoted: a new timeline of its own, whose WAL would be the tell-tale.
        assert timeline > 1
        admin.execute("SELECT pg_switch_wal()")
    archive = repository(sandbox) / "archive" / "sandbox"
    time.sleep(1)
    strays = [p.name for p in archive.rglob("*")
              if p.is_file() and (p.name.endswith(".history") or p.name[:8] != "00000001")
              and p.name not in ("archive.info", "archive.info.copy")]
    assert strays == []


def test_a_drill_to_a_point_in_time_restores_the_first_write_and_not_the_second(
        sandbox: Drtool):
    with pg(sandbox, "pg_primary") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pitr_probe (name text PRIMARY KEY, "
                     "at timestamptz NOT NULL DEFAULT clock_timestamp())")
        conn.execute("DELETE FROM pitr_probe")
        conn.execute("INSERT INTO pitr_probe (name) VALUES ('first')")
        time.sleep(1.5)
        moment = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        time.sleep(1.5)
        conn.execute("INSERT INTO pitr_probe (name) VALUES ('second')")
    try:
        env = physical_env(sandbox, "physical-pitr")
        code, journal = sandbox.json("drill", "--env", env, "--target-time",
                                     moment.isoformat())
        assert code == 0, journal.get("failure")
        with pg(sandbox, "pg_physical") as conn:
            assert [r[0] for r in conn.execute("SELECT name FROM pitr_probe")] == ["first"]
        physical = manifest_of(journal)["physical"][0]
        assert physical["recovery_target"]["type"] == "time"
        assert physical["counts_method"] == "none"
        # Counts are not comparable with a point nobody counted at; the journal says so.
        counts = checks_named(journal, "postgres.row_count")
        assert counts and all(c["expected"] == "not comparable" for c in counts)
        [proof] = checks_named(journal, "postgres.recovery_target")
        assert proof["status"] == "passed" and proof["actual"] <= moment.isoformat()
        # The data lost is measured from the point in time: the app's heartbeat is written
        # every second.
        assert 0 <= journal["rpo_measured_s"] <= 5
        assert "recovery stopping before commit" in (
            sandbox.layout.postgres_root / "pg_physical" / "postgres.log").read_text()

        # On the day: the same backup restored to the same time, over a target that moved
        # on since (a row of its own), gives the same answer.
        with pg(sandbox, "pg_physical") as conn:
            conn.execute("INSERT INTO pitr_probe (name) VALUES ('written on the target')")
        code, restored = sandbox.json("restore", "--env", env, "--backup",
                                      journal["backup"]["id"], "--target-time",
                                      moment.isoformat())
        assert code == 0, restored.get("failure")
        with pg(sandbox, "pg_physical") as conn:
            assert [r[0] for r in conn.execute("SELECT name FROM pitr_probe")] == ["first"]
        kept = sandbox.home / "snapshots" / env / restored["drill_id"]
        assert kept.is_dir()  # a restore keeps what it replaced, for its operator
        shutil.rmtree(kept)

        # The day of a disaster: everything the archive holds. A row written after the
        # drill, its WAL switched and archived, comes back with the rest.
        with pg(sandbox, "pg_primary") as conn:
            conn.execute("INSERT INTO pitr_probe (name) VALUES ('third')")
            segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
            deadline = time.monotonic() + 60
            while conn.execute("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"
                               ).fetchone()[0] < segment:
                assert time.monotonic() < deadline, f"{segment} was never archived"
                time.sleep(0.2)
        code, restored = sandbox.json("restore", "--env", env, "--backup",
                                      journal["backup"]["id"], "--to", "end")
        assert code == 0, restored.get("failure")
        with pg(sandbox, "pg_physical") as conn:
            assert sorted(r[0] for r in conn.execute("SELECT name FROM pitr_probe")) == [
                "first", "second", "third"]
        shutil.rmtree(sandbox.home / "snapshots" / env / restored["drill_id"])
    finally:
        with pg(sandbox, "pg_primary") as conn:
            conn.execute("DROP TABLE IF EXISTS pitr_probe")


def test_a_missing_wal_segment_fails_the_restore_by_name_and_rolls_the_target_back(
        sandbox: Drtool, tmp_path: Path):
    env = physical_env(sandbox, "physical-gap")
    before = physical_state(sandbox)
    # A segment between the repository's newest backup and now, moved out of the archive.
    segments = wal_after_newest_backup(sandbox, repository(sandbox))
    moved = segments[len(segments) // 2]
    shutil.move(moved, tmp_path / moved.name)
    try:
        code, journal = sandbox.json("drill", "--env", env)
    finally:
        shutil.move(tmp_path / moved.name, moved)
    assert code == 3, journal.get("failure")
    failure = journal["failure"]
    assert failure["phase"] == "restore" and failure["hosts"] == ["sandbox-pg-physical"]
    assert "recovery ended before configured recovery target was reached" in failure["reason"]
    assert "the next one is missing from the archive or unreadable" in failure["reason"]
    assert journal["rollback"]["status"] == "passed", journal["rollback"]
    rolled = checks_named(journal, "rollback.postgres.row_count")
    assert rolled and all(c["status"] == "passed" for c in rolled)
    assert physical_state(sandbox) == before
    assert leases(sandbox) == {}
    assert not (sandbox.home / "snapshots" / env / journal["drill_id"]).exists()


def test_a_target_whose_data_directory_is_the_sources_is_refused_before_anything_stops(
        sandbox: Drtool):
    primary = str(sandbox.layout.postgres_root / "pg_primary" / "data")
    env = physical_env(sandbox, "physical-into-source", target={"data_dir": primary})
    with pg(sandbox, "pg_primary", "postgres") as admin:
        started = admin.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    before = physical_state(sandbox)
    code, journal = sandbox.json("drill", "--env", env)
    assert code == 2, journal.get("failure")
    failure = journal["failure"]
    assert failure["phase"] == "preflight" and failure["kind"] == "guard"
    assert (f"sandbox-pg-physical's data_dir {primary} is the data directory of backup "
            "source sandbox-pg-primary (main)") in failure["reason"]
    assert "sandbox-pg-physical's server runs from" in failure["reason"]
    assert [p["status"] for p in journal["phases"]] == ["failed"] + ["skipped"] * 7
    with pg(sandbox, "pg_primary", "postgres") as admin:
        assert admin.execute("SELECT pg_postmaster_start_time()").fetchone()[0] == started
    assert physical_state(sandbox) == before


def test_a_drill_killed_while_its_snapshot_had_the_target_stopped_is_started_again(
        sandbox: Drtool):
    """The snapshot stops the target to copy its data directory. Killed there with every
    process it started (the controller's machine lost power), the drill leaves the target
    stopped and no snapshot to trust: the next operation starts the target again, as it
    was, and leaves its data alone."""
    from tests.conftest import descendants, wait_gone

    root = sandbox.layout.postgres_root / "pg_physical"
    hold, pidfile = root / "hold-start", root / "start.pid"
    script = root / "slow-start"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ -e "{hold}" ]; then echo $$ > "{pidfile}"; sleep 600; fi\n'
        f'exec /usr/lib/postgresql/15/bin/pg_ctl -D "{root / "data"}" -w -t 60 '
        f'-l "{root / "postgres.log"}" start\n')
    script.chmod(0o755)
    hold.touch()
    pidfile.unlink(missing_ok=True)
    env = physical_env(sandbox, "physical-killed", target={"start_command": [str(script)]})
    before = physical_state(sandbox)
    drill = sandbox.popen("drill", "--env", env)
    try:
        deadline = time.monotonic() + 300
        while not pidfile.exists():  # the snapshot has stopped the target and copied it
            assert drill.poll() is None, drill.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the snapshot never started the target"
            time.sleep(0.1)
        # Every process frozen first (none forks another meanwhile), then all killed.
        tree: set[int] = set()
        while new := {drill.pid, *descendants(drill.pid)} - tree:
            for pid in new:
                os.kill(pid, signal.SIGSTOP)
            tree |= new
        for pid in tree:
            os.kill(pid, signal.SIGKILL)
        drill.wait(timeout=30)
        for pid in tree:
            wait_gone(pid, timeout=10)
        assert not (root / "data" / "postmaster.pid").exists()  # the target is down
    finally:
        hold.unlink(missing_ok=True)
        if drill.poll() is None:
            drill.kill()
            drill.wait()
    # Killed before its disaster: the next operation gives the leases back and starts what
    # the snapshot stopped (the release), with nothing to roll back.
    code, released = sandbox.json("rollback", "--env", env)
    assert code == 0, released
    assert physical_state(sandbox) == before  # up again, and as it was
    assert leases(sandbox) == {}
    [killed] = [json.loads(p.read_text()) for p in
                (sandbox.home / "evidence" / env).glob("*/journal.json")
                if json.loads(p.read_text())["drill_id"] != released["drill_id"]]
    assert killed["status"] == "aborted" and killed["failure"]["phase"] == "snapshot"
    assert "before it changed its targets; their leases were given back" in (
        killed["failure"]["reason"])


def test_backups_verify_checks_the_repository_and_names_a_bad_file_and_a_hole(
        sandbox: Drtool):
    code, journal = sandbox.json("backups", "verify", "--env", "sandbox-physical")
    assert code == 0, journal.get("failure")
    assert journal["operation"] == "verify-backups"
    [check] = checks_named(journal, "backups.repository")
    assert check["target"] == "main" and check["status"] == "passed", check
    assert re.fullmatch(r"[1-9]\d* backup files and [1-9]\d* WAL segments valid, no hole in "
                        r"the archive", check["actual"]), check["actual"]

    # A copy of the repository, with its own configuration: one byte of a backup file
    # changed (the same size: only a checksum tells) and a WAL segment gone from the middle.
    original = repository(sandbox).parent
    segments = wal_after_newest_backup(sandbox, repository(sandbox))
    copy = original.with_name("pgbackrest-copy")  # where the cluster's OS user reaches
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(original, copy, symlinks=True)
    try:
        config = copy / "pgbackrest.conf"
        config.write_text(config.read_text().replace(str(original), str(copy)))
        subprocess.run(["chown", "-R", "postgres:postgres", str(copy)], check=True)
        backup = (copy / "repo" / "backup" / "sandbox" / "latest").resolve()
        rotted = max(backup.glob("pg_data/base/*/*"), key=lambda p: p.stat().st_size)
        named = f"{backup.name}/{rotted.relative_to(backup).as_posix()}"  # as pgBackRest says
        data = bytearray(rotted.read_bytes())
        data[len(data) // 2] ^= 0xFF
        rotted.write_bytes(bytes(data))
        # A hole after the newest backup's start: no recovery from it gets past.
        gone = copy / segments[len(segments) // 2].relative_to(original)
        gone.unlink()
        env = physical_env(sandbox, "physical-bad-repository",
                           component={"pgbackrest_config": str(config)})

        code, journal = sandbox.json("backups", "verify", "--env", env)
    finally:
        shutil.rmtree(copy, ignore_errors=True)

    assert code == 1, journal.get("failure")
    [check] = checks_named(journal, "backups.repository")
    assert check["status"] == "failed"
    assert f"invalid checksum '{named}'" in check["detail"], check["detail"]
    assert f"WAL {gone.name[:24]} missing from the archive" in check["detail"]
    assert journal["failure"]["phase"] == "backups" and journal["failure"]["kind"] == "check"
    code, history = sandbox.json("history", "--env", env)
    assert code == 0 and history[0]["drill_id"] == journal["drill_id"]
    assert history[0]["status"] == "failed"


def test_a_pgbackrest_cluster_is_recovered_onto_its_recovery_side_and_the_recovery_undone(
        sandbox: Drtool):
    # The physical cluster stands in for a rebuilt primary: its recovery side.
    target = {"host": "sandbox-pg-physical",
              "port": str(sandbox.port("pg_physical")),
              "data_dir": str(sandbox.layout.postgres_root / "pg_physical" / "data"),
              "server_log": str(sandbox.layout.postgres_root / "pg_physical" / "postgres.log")}
    env = physical_env(sandbox, "physical-recover", component={"recovery": target})
    code, backup = sandbox.json("backup", "--env", env)
    assert code == 0, backup.get("failure")

    def cluster() -> tuple[int, list[str]]:  # whatever pg_physical holds now (maybe nothing)
        with pg(sandbox, "pg_physical", "postgres") as admin:
            system = admin.execute(
                "SELECT system_identifier FROM pg_control_system()").fetchone()[0]
            return system, sorted(r[0] for r in admin.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate"))

    with pg(sandbox, "pg_physical", "postgres") as admin:  # what only it holds
        admin.autocommit = True
        admin.execute("DROP DATABASE IF EXISTS undo_marker")
        admin.execute("CREATE DATABASE undo_marker")
    before = cluster()
    assert "undo_marker" in before[1]

    code, journal = sandbox.json("recover", "--env", env, "--backup", "latest", "--confirm",
                                 env, "--replace-existing")

    assert code == 0, journal.get("failure")
    assert [p["status"] for p in journal["phases"]] == ["passed"] * 5
    counts = checks_named(journal, "postgres.row_count")
    assert counts and all(c["status"] == "passed" for c in counts)
    with pg(sandbox, "pg_primary", "postgres") as admin:
        primary = admin.execute(
            "SELECT system_identifier FROM pg_control_system()").fetchone()[0]
    assert cluster()[0] == primary  # pg_physical is now a copy of the primary
    assert "undo_marker" not in cluster()[1]

    # The copy of its data directory the recovery kept puts it back as it was.
    code, undo = sandbox.json("recover", "--env", env, "--undo", journal["drill_id"],
                              "--confirm", env)
    assert code == 0, undo.get("failure")
    assert undo["rollback"]["status"] == "passed"
    assert cluster() == before  # the marker is back, and the cluster's own identity
    with pg(sandbox, "pg_physical", "postgres") as admin:
        admin.autocommit = True
        admin.execute("DROP DATABASE undo_marker")
