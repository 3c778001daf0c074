"""drtool run by operations: two drills at once, metrics and JUnit from a real drill, status,
and a schedule that a real cron daemon (Debian's, started here) runs."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Drtool, alive, copy_inventory, wait_gone

pytestmark = pytest.mark.integration

# A copy of the sandbox with its cluster alone: what is run here (locks, metrics, status,
# schedules) does not depend on the estate, and a drill of it is quicker.
ENV = "sandbox-ops"


@pytest.fixture(scope="module", autouse=True)
def ops_inventory(sandbox: Drtool) -> None:
    copy_inventory(sandbox, ENV, {}, keep={"main"})


def journals(drtool: Drtool) -> set[str]:
    folder = drtool.home / "evidence" / ENV
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def owner_pid(drtool: Drtool) -> int | None:
    try:
        return json.loads((drtool.home / "locks" / f"{ENV}.owner.json").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def test_two_drills_started_together_one_runs_one_is_refused(sandbox: Drtool, tmp_path):
    before = journals(sandbox)
    first = sandbox.popen("drill", "--env", ENV, "--metrics-dir", str(tmp_path),
                          "--junit", str(tmp_path / "drill.xml"), "--json")
    # Wait for the owner file to name the first drill: one left by a drill an earlier test
    # killed may be there already, and starting the second drill then would race the first.
    deadline = time.monotonic() + 120
    while owner_pid(sandbox) != first.pid:
        assert time.monotonic() < deadline and first.poll() is None, "no lock was taken"
        time.sleep(0.05)
    second = sandbox("drill", "--env", ENV)
    out, err = first.communicate(timeout=600)

    assert second.returncode == 75, second.stderr
    assert second.stderr.count("\n") == 1 and f"{ENV} is busy: drill " in second.stderr
    assert first.returncode == 0, err
    journal = json.loads(out)
    assert journals(sandbox) - before == {journal["drill_id"]}  # the refused one wrote nothing
    assert not (sandbox.home / "locks" / f"{ENV}.owner.json").exists()

    # Its metrics, parsed by Prometheus' own parser, say what its journal says.
    samples = {(s.name, s.labels.get("phase") or s.labels.get("status")): s.value
               for family in text_string_to_metric_families(
                   (tmp_path / f"drtool_{ENV}.prom").read_text()) for s in family.samples}
    assert samples[("drtool_drill_rto_seconds", None)] == journal["rto_s"]
    assert samples[("drtool_drill_rpo_measured_seconds", None)] == journal["rpo_measured_s"]
    assert samples[("drtool_drill_status", "passed")] == 1
    for phase in journal["phases"]:
        assert samples[("drtool_drill_phase_duration_seconds", phase["name"])] == phase[
            "duration_s"]
    # Its JUnit XML is beside the journal and where --junit asked.
    beside = sandbox.home / "evidence" / ENV / journal["drill_id"] / "junit.xml"
    assert beside.read_text() == (tmp_path / "drill.xml").read_text()
    assert f'tests="{len(journal["phases"]) + len(journal["checks"])}"' in beside.read_text()
    assert 'failures="0"' in beside.read_text()

    status = sandbox("status", "--env", ENV)
    assert status.stdout.startswith(f"{ENV}: ok (every 7 d)")
    # The current RPO exposure: this drill's backup is the newest one a drill verified.
    code, (row,) = sandbox.json("status", "--env", ENV)
    assert row["newest_verified_backup"] == journal["backup"]["id"]
    consistent = dt.datetime.fromisoformat(journal["backup"]["consistent_at"])
    age = (dt.datetime.now(dt.UTC) - consistent).total_seconds()
    # Measured before `age` and rounded to a tenth of a second: up to 0.05 s over it.
    assert age - 30 < row["rpo_exposure_s"] <= age + 0.05, (row, age)
    exceeded = row["rpo_exposure_s"] > 120  # the sandbox's RPO objective
    assert (row["rpo_state"], code) == (("exceeded", 1) if exceeded else ("ok", 0))
    assert samples[("drtool_drill_newest_verified_backup_timestamp_seconds", None)] == (
        consistent.timestamp())


def crontab() -> tuple[int, str]:
    """`crontab -l`'s exit code and listing: 1 and '' when the user has no crontab."""
    done = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


def stuck(drtool: Drtool, path: Path) -> str:
    """Why a scheduled job's journal still says running: where it is, what its log says,
    and which of its processes still run."""
    journal = json.loads(path.read_text())
    where = [f"{p['name']} {p['status']}" for p in journal["phases"]]
    tasks = [task for phase in journal["phases"] for task in phase.get("tasks") or []]
    last = [f"{t['name']} on {t['host']}: {t['status']} at {t['ended_at']}" for t in tasks[-3:]]
    ps = subprocess.run(["ps", "-wweo", "pid,ppid,stat,etimes,args", "--sort", "pid"],
                        capture_output=True, text=True, check=False).stdout
    mine = [line for line in ps.splitlines() if f"--env {ENV}" in line
            or "ansible" in line or "pg_" in line]
    logs = " | ".join(f"{p.name}: {p.read_text()[-1500:]}"
                      for p in (drtool.home / "logs").glob("*.log"))
    return (f"the scheduled {journal['operation']} {journal['drill_id']} did not finish: "
            f"phases {where}; last tasks {last}; processes {mine}; logs {logs}")


@pytest.fixture
def cron_daemon():
    """Debian's cron, in the foreground, stopped by its PID at the end."""
    binary = shutil.which("cron")
    assert binary, "cron is not installed: scripts/bootstrap installs it"
    running = subprocess.run(["pgrep", "-x", "cron"], capture_output=True, check=False)
    assert running.returncode == 1, "another cron daemon is running; stop it for this test"
    daemon = subprocess.Popen([binary, "-f", "-L", "15"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    assert daemon.poll() is None, daemon.stdout.read() if daemon.stdout else ""
    yield daemon
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=30)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
    assert not alive(daemon.pid)


def test_cron_runs_the_backup_schedule_then_a_drill_of_its_backup_and_remove_restores_it(
        sandbox: Drtool, cron_daemon):
    """The production setup: backups on one schedule, drills of the newest of them on
    another, both from the crontab, each with its own log."""
    # A backup older than the schedule: a drill that takes the lock first restores it.
    assert sandbox("backup", "--env", ENV).returncode == 0
    before_tab, before = crontab(), journals(sandbox)
    hook = "https://hooks.example/services/T0KEN-of-the-schedule-test"  # never called
    installing = Drtool(sandbox.home, {**sandbox.env, "DRTOOL_TEST_HOOK_URL": hook})
    if time.localtime().tm_sec > 40:  # cron reads the new crontab at the next minute
        time.sleep(62 - time.localtime().tm_sec)
    minute = time.time() // 60 * 60

    def at(minutes: int) -> str:  # a cron expression for that minute from now (local time)
        moment = time.localtime(minute + 60 * minutes)
        return f"{moment.tm_min} {moment.tm_hour} * * *"

    # Both in the same minute, as an hourly backup and a weekly drill meet: one waits.
    installed = installing("schedule", "install", "--env", ENV, "--backup-cron", at(1),
                           "--drill-cron", at(1))
    assert installed.returncode == 0, installed.stderr
    assert "drills of the latest backup at" in installed.stdout
    listed = sandbox("schedule", "list", "--json")
    entries = {e["job"]: e for e in json.loads(listed.stdout) if e["env"] == ENV}
    assert {job: e["schedule"] for job, e in entries.items()} == {"backup": at(1),
                                                                  "drill": at(1)}
    assert f"drill --env {ENV} --log" in entries["drill"]["command"]
    assert "--backup latest" in entries["drill"]["command"]
    # The secret-looking variable is in the 0600 file the lines read, not in the crontab.
    assert hook not in crontab()[1] and "T0KEN" not in listed.stdout
    env_file = sandbox.home / "schedules" / f"drill-{ENV}.env"
    assert hook in env_file.read_text() and env_file.stat().st_mode & 0o777 == 0o600
    try:
        deadline = minute + 60 * 5
        while len(journals(sandbox) - before) < 2:
            assert time.time() < deadline, (
                f"cron did not start a backup and a drill: {journals(sandbox) - before}; "
                + " | ".join(p.read_text()[-600:] for p in (sandbox.home / "logs").glob("*.log")))
            time.sleep(0.5)
    finally:
        removed = sandbox("schedule", "remove", "--env", ENV)
    assert removed.returncode == 0 and "removed 2 crontab entries" in removed.stdout
    assert crontab() == before_tab
    assert not env_file.exists()  # removed with the entries

    made = {}
    for drill_id in journals(sandbox) - before:
        path = sandbox.home / "evidence" / ENV / drill_id / "journal.json"
        deadline = time.monotonic() + 300
        while json.loads(path.read_text())["status"] == "running":
            assert time.monotonic() < deadline, stuck(sandbox, path)
            time.sleep(0.5)
        journal = json.loads(path.read_text())
        made[journal["operation"]] = journal
    assert set(made) == {"backup", "drill"}
    assert made["backup"]["status"] == made["drill"]["status"] == "passed"
    assert made["drill"]["backup"]["chosen"] == "latest"
    # Whichever took the lock first, the other waited for it (--lock-wait) and ran after:
    # a drill behind the backup restored the backup the schedule had just made.
    drill, backup = made["drill"], made["backup"]
    if drill["backup"]["id"] == backup["backup"]["id"]:
        assert drill["phases"][0]["started_at"] >= backup["ended_at"]
    else:
        assert backup["phases"][0]["started_at"] >= drill["ended_at"]
    for job in ("backup", "drill"):
        log = (sandbox.home / "logs" / f"{job}-{ENV}.log").read_text()
        assert f"=== drtool {job} --env {ENV} (pid" in log
        for secret in (sandbox.secret("postgres_password"), sandbox.secret("redis_password")):
            assert secret not in log and secret not in entries[job]["command"]
    assert "Verdict   PASSED" in (sandbox.home / "logs" / f"drill-{ENV}.log").read_text()
    for child in [p for p in Path("/proc").glob("[0-9]*") if p.name.isdigit()]:
        try:
            cmdline = (child / "cmdline").read_bytes()
        except OSError:
            continue
        if any(f"{job}\x00--env\x00{ENV}\x00--log".encode() in cmdline
               for job in ("drill", "backup")):
            wait_gone(int(child.name))
