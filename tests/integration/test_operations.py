"""drtool run by operations: two drills at once, metrics and JUnit from a real drill, status,
and a schedule that a real cron daemon (Debian's, started here) runs."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Drtool, alive, wait_gone

pytestmark = pytest.mark.integration


def journals(drtool: Drtool) -> set[str]:
    folder = drtool.home / "evidence" / "sandbox"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def owner_pid(drtool: Drtool) -> int | None:
    try:
        return json.loads((drtool.home / "locks" / "sandbox.owner.json").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def test_two_drills_started_together_one_runs_one_is_refused(sandbox: Drtool, tmp_path):
    before = journals(sandbox)
    first = sandbox.popen("drill", "--env", "sandbox", "--metrics-dir", str(tmp_path),
                          "--junit", str(tmp_path / "drill.xml"), "--json")
    # Wait for the owner file to name the first drill: one left by a drill an earlier test
    # killed may be there already, and starting the second drill then would race the first.
    deadline = time.monotonic() + 120
    while owner_pid(sandbox) != first.pid:
        assert time.monotonic() < deadline and first.poll() is None, "no lock was taken"
        time.sleep(0.05)
    second = sandbox("drill", "--env", "sandbox")
    out, err = first.communicate(timeout=600)

    assert second.returncode == 75, second.stderr
    assert second.stderr.count("\n") == 1 and "sandbox is busy: drill " in second.stderr
    assert first.returncode == 0, err
    journal = json.loads(out)
    assert journals(sandbox) - before == {journal["drill_id"]}  # the refused one wrote nothing
    assert not (sandbox.home / "locks" / "sandbox.owner.json").exists()

    # Its metrics, parsed by Prometheus' own parser, say what its journal says.
    samples = {(s.name, s.labels.get("phase") or s.labels.get("status")): s.value
               for family in text_string_to_metric_families(
                   (tmp_path / "drtool_sandbox.prom").read_text()) for s in family.samples}
    assert samples[("drtool_drill_rto_seconds", None)] == journal["rto_s"]
    assert samples[("drtool_drill_rpo_measured_seconds", None)] == journal["rpo_measured_s"]
    assert samples[("drtool_drill_status", "passed")] == 1
    for phase in journal["phases"]:
        assert samples[("drtool_drill_phase_duration_seconds", phase["name"])] == phase[
            "duration_s"]
    # Its JUnit XML is beside the journal and where --junit asked.
    beside = sandbox.home / "evidence" / "sandbox" / journal["drill_id"] / "junit.xml"
    assert beside.read_text() == (tmp_path / "drill.xml").read_text()
    assert f'tests="{len(journal["phases"]) + len(journal["checks"])}"' in beside.read_text()
    assert 'failures="0"' in beside.read_text()

    status = sandbox("status", "--env", "sandbox")
    assert status.returncode == 0 and status.stdout.startswith("sandbox: ok (every 7 d)")


def crontab() -> tuple[int, str]:
    """`crontab -l`'s exit code and listing: 1 and '' when the user has no crontab."""
    done = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


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


def test_cron_runs_an_installed_schedule_and_remove_restores_the_crontab(sandbox: Drtool,
                                                                         cron_daemon):
    before_tab, before = crontab(), journals(sandbox)
    hook = "https://hooks.example/services/T0KEN-of-the-schedule-test"  # never called
    installing = Drtool(sandbox.home, {**sandbox.env, "DRTOOL_TEST_HOOK_URL": hook})
    installed = installing("schedule", "install", "--env", "sandbox", "--cron", "* * * * *")
    assert installed.returncode == 0, installed.stderr
    listed = sandbox("schedule", "list", "--json")
    entry = next(e for e in json.loads(listed.stdout) if e["env"] == "sandbox")
    assert entry["schedule"] == "* * * * *" and str(sandbox.home) in entry["command"]
    # The secret-looking variable is in the 0600 file the line reads, not in the crontab.
    assert hook not in crontab()[1] and "T0KEN" not in entry["command"]
    env_file = sandbox.home / "schedules" / "drill-sandbox.env"
    assert hook in env_file.read_text() and env_file.stat().st_mode & 0o777 == 0o600
    try:
        deadline = time.monotonic() + 130  # the next minute starts it
        while not journals(sandbox) - before:
            assert time.monotonic() < deadline, "cron did not start a drill within two minutes"
            time.sleep(0.5)
    finally:
        removed = sandbox("schedule", "remove", "--env", "sandbox")
    assert removed.returncode == 0 and "removed 1 crontab entry" in removed.stdout
    assert crontab() == before_tab
    assert not env_file.exists()  # removed with the entry

    (drill_id,) = journals(sandbox) - before
    path = sandbox.home / "evidence" / "sandbox" / drill_id / "journal.json"
    deadline = time.monotonic() + 300
    while json.loads(path.read_text())["status"] == "running":
        assert time.monotonic() < deadline, "the scheduled drill did not finish"
        time.sleep(0.5)
    history = sandbox("history", "--env", "sandbox", "--json")
    record = next(r for r in json.loads(history.stdout) if r["drill_id"] == drill_id)
    assert record["status"] == "passed", record
    log = (sandbox.home / "logs" / "drill-sandbox.log").read_text()
    assert "=== drtool drill --env sandbox (pid" in log and "Verdict   PASSED" in log
    for secret in (sandbox.secret("postgres_password"), sandbox.secret("redis_password")):
        assert secret not in log and secret not in entry["command"]
    for child in [p for p in Path("/proc").glob("[0-9]*") if p.name.isdigit()]:
        try:
            cmdline = (child / "cmdline").read_bytes()
        except OSError:
            continue
        if b"drill\x00--env\x00sandbox\x00--log" in cmdline:
            wait_gone(int(child.name))
