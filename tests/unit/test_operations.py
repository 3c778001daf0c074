"""Running drtool as a good citizen: status and overdue, metrics, JUnit XML, the environment
lock, schedules (cron expressions, systemd units) and the rotated log."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from drtool.cli.main import main
from drtool.core.model import Check, Failure, Journal, Objectives, PhaseRecord
from drtool.core.status import env_status
from drtool.errors import EXIT_LOCKED, ConfigError, LockedError
from drtool.ops import logfile, schedule
from drtool.paths import content_root
from drtool.report.junit import junit_xml
from drtool.report.metrics import write_metrics
from drtool.store.lock import EnvironmentLock

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 22, 12, tzinfo=UTC)


def record(drill_id: str, days_ago: float, status: str = "passed", operation: str = "drill"):
    when = (NOW - dt.timedelta(days=days_ago)).isoformat()
    return {"drill_id": drill_id, "operation": operation, "status": status,
            "started_at": when, "ended_at": when}


def test_an_environment_is_overdue_without_a_pass_within_its_cadence():
    records = [record("a", 10), record("b", 3, "failed"), record("c", 1, operation="backup")]
    late = env_status("staging", records, 7, NOW)
    assert (late["state"], late["last_drill"], late["last_status"]) == ("overdue", "b", "failed")
    assert late["last_passed_drill"] == "a" and late["last_passed_age_s"] == 10 * 86400
    fine = env_status("staging", records, 14, NOW)
    assert fine["state"] == "ok" and fine["next_due_at"].startswith("2026-11-26T12:00")
    assert env_status("staging", [], 7, NOW)["state"] == "overdue"  # never passed
    assert env_status("staging", records, None, NOW)["state"] == "no cadence"


def journal(status: str = "passed") -> Journal:
    j = Journal("20261122T050000Z-abc123", "staging", "drill", "2026-11-22T05:00:00+00:00",
                status=status, ended_at="2026-11-22T05:01:40+00:00",
                objectives=Objectives(300, 120), rto_s=42.5, rpo_measured_s=6.0,
                rpo_backup_age_s=5.0,
                phases=[PhaseRecord("backup", "passed", duration_s=4.0),
                        PhaseRecord("restore", "failed" if status == "failed" else "passed",
                                    duration_s=9.5, error="restore broke"),
                        PhaseRecord("verify", "skipped" if status == "failed" else "passed")],
                checks=[Check("postgres.row_count", "t:public.orders", 10, 10, "passed"),
                        Check("redis.key_count", "r:db0", 5, 4, "failed")])
    if status == "failed":
        j.failure = Failure("restore", "restore broke", "orchestration")
        j.rto_s = None
    return j


def test_metrics_are_a_valid_textfile_with_every_figure(tmp_path):
    path = write_metrics(tmp_path, journal(), "2026-11-22T05:01:40+00:00")
    assert path.name == "drtool_staging.prom"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(path.read_text())
               for s in family.samples}

    def value(name, **labels):
        return samples[(name, tuple(sorted({"env": "staging", **labels}.items())))]

    end = dt.datetime(2026, 11, 22, 5, 1, 40, tzinfo=UTC).timestamp()
    assert value("drtool_drill_last_run_timestamp_seconds") == end
    assert value("drtool_drill_last_success_timestamp_seconds") == end
    assert value("drtool_drill_status", status="passed") == 1
    assert value("drtool_drill_status", status="failed") == 0
    assert value("drtool_drill_rto_seconds") == 42.5
    assert value("drtool_drill_rpo_measured_seconds") == 6.0
    assert value("drtool_drill_rpo_backup_age_seconds") == 5.0
    assert value("drtool_drill_rto_objective_seconds") == 300
    assert value("drtool_drill_phase_duration_seconds", phase="restore") == 9.5
    assert value("drtool_drill_checks", result="failed") == 1
    assert value("drtool_drill_duration_seconds") == 100
    assert not list(tmp_path.glob("*.tmp*"))  # written through a temporary file, renamed


def test_an_unmeasured_rto_is_absent_not_zero(tmp_path):
    text = write_metrics(tmp_path, journal("failed"), None).read_text()
    assert "drtool_drill_rto_seconds" not in text.replace("# HELP drtool_drill_rto_seconds", "")
    assert "last_success_timestamp" not in text
    assert 'drtool_drill_status{env="staging",status="failed"} 1.0' in text


def test_junit_has_a_case_per_phase_and_per_check(tmp_path):
    suite = ET.fromstring(junit_xml(journal("failed"))).find("testsuite")  # noqa: S314
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["backup", "restore", "verify",
                                              "postgres.row_count t:public.orders",
                                              "redis.key_count r:db0"]
    assert cases[1].find("error").get("message") == "restore broke"
    assert cases[2].find("skipped") is not None
    assert cases[4].find("failure").get("message") == "expected 5, actual 4"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("5", "1", "1", "1")


def test_a_second_holder_of_the_lock_is_refused_naming_the_first(tmp_path):
    first = EnvironmentLock(tmp_path, "staging").acquire("drill", "d-1")
    code = ("import sys; from pathlib import Path; from drtool.store.lock import EnvironmentLock;"
            "from drtool.errors import LockedError\n"
            "try:\n EnvironmentLock(Path(sys.argv[1]), 'staging').acquire('drill', 'd-2')\n"
            "except LockedError as e:\n print(e.message); sys.exit(e.exit_code)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == EXIT_LOCKED == 75
    assert "staging is busy: drill d-1 (pid" in done.stdout
    first.release()
    again = EnvironmentLock(tmp_path, "staging").acquire("drill", "d-3")
    assert again.stale is None  # released properly: nothing stale
    again.release()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    code = ("import os, sys; from pathlib import Path; from drtool.store.lock import "
            "EnvironmentLock\nEnvironmentLock(Path(sys.argv[1]), 'staging').acquire('drill', "
            "'d-killed')\nos.kill(os.getpid(), 9)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=60, check=False)
    assert done.returncode == -9
    owner = json.loads((tmp_path / "staging.owner.json").read_text())
    assert owner["drill_id"] == "d-killed"
    lock = EnvironmentLock(tmp_path, "staging").acquire("drill", "d-next")
    assert lock.stale is not None and lock.stale["drill_id"] == "d-killed"
    with pytest.raises(LockedError):
        EnvironmentLock(tmp_path, "staging").acquire("drill", "d-third")  # same process, too
    lock.release()


@pytest.mark.parametrize(("cron", "calendar"), [
    ("0 5 * * 1", "Mon *-*-* 5:0:00"),
    ("*/15 * * * *", "*-*-* *:0/15:00"),
    ("30 2 1 */3 *", "*-1/3-1 2:30:00"),
    ("0 */6 */2 * *", "*-*-1/2 0/6:0:00"),
    ("0 6 * * 1-5", "Mon..Fri *-*-* 6:0:00"),
    ("0 0,12 * * 0", "Sun *-*-* 0,12:0:00"),
])
def test_cron_expressions_become_systemd_calendars(cron, calendar):
    assert schedule.on_calendar(cron) == calendar
    # systemd's own parser agrees that it is a calendar (it is on this machine kind).
    done = subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0 and "Normalized form" in done.stdout, done.stderr


def test_schedules_systemd_cannot_express_are_refused():
    for cron, why in (("0 5 1 * 1", "both day of month and day of week"),
                      ("0 5 * * */2", r"day-of-week '\*/2'")):
        with pytest.raises(ConfigError, match=why):
            schedule.on_calendar(cron)


@pytest.mark.parametrize("bad", ["* * *", "61 * * * *", "0 5 * * 8", "every monday", ""])
def test_invalid_cron_expressions_are_refused(bad, capsys):
    assert main(["schedule", "install", "--env", "sandbox", "--cron", bad, "--systemd",
                 "--unit-dir", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a valid cron expression" in err


HOOK_URL = "https://hooks.example/services/T0KEN-in-the-url"
S3_SECRET = "s3cr3t-Access-Key-Value"


def secret_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("DRTOOL_HOME", str(home))
    monkeypatch.setenv("DRTOOL_HOOK_URL", HOOK_URL)  # what an inventory's env lookup reads
    monkeypatch.setenv("DRTOOL_S3_SECRET", S3_SECRET)
    monkeypatch.setenv("AWS_PROFILE", "drill profile's 'name'")  # quotes must survive


def assert_private_env_file(path: Path) -> None:
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    text = path.read_text()
    assert HOOK_URL in text and S3_SECRET in text


def test_systemd_units_run_the_drill_with_absolute_paths(tmp_path, monkeypatch, capsys):
    secret_environment(monkeypatch, tmp_path / "home")
    assert main(["schedule", "install", "--env", "sandbox", "--cron", "0 5 * * 1",
                 "--systemd", "--unit-dir", str(tmp_path)]) == 0
    service = (tmp_path / "drtool-drill-sandbox.service").read_text()
    timer = (tmp_path / "drtool-drill-sandbox.timer").read_text()
    # No secret in the units (mode 0644, readable by all): they are in the 0600 file.
    for text in (service, timer):
        assert HOOK_URL not in text and S3_SECRET not in text and "T0KEN" not in text
    env_file = tmp_path / "home" / "schedules" / "drill-sandbox.env"
    assert f"EnvironmentFile={env_file}\n" in service
    assert_private_env_file(env_file)
    # A stop gives drtool (alone) time to roll back before everything is killed.
    assert "KillMode=mixed\n" in service and "TimeoutStopSec=900\n" in service
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no",
                             str(tmp_path / "drtool-drill-sandbox.service")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    argv = start.removeprefix("ExecStart=").split()
    assert os.path.isabs(argv[0]) and argv[0].endswith("drtool") and os.access(argv[0], os.X_OK)
    assert argv[1:4] == ["drill", "--env", "sandbox"]
    assert f"--log {tmp_path}/home/logs/drill-sandbox.log" in start
    assert f"Environment=DRTOOL_HOME={tmp_path}/home" in service
    assert "OnCalendar=Mon *-*-* 5:0:00" in timer and "Persistent=true" in timer
    assert "enable --now drtool-drill-sandbox.timer" in capsys.readouterr().out


def test_a_schedule_installed_with_a_vault_id_passes_it_on_in_its_private_file(
        tmp_path, monkeypatch):
    secret_environment(monkeypatch, tmp_path / "home")
    script = tmp_path / "vault-pass.sh"
    script.write_text("#!/bin/sh\necho pw\n")
    script.chmod(0o700)
    # The option sets the variable in this process: registered here (then unset), so it
    # goes afterwards.
    monkeypatch.setenv("ANSIBLE_VAULT_IDENTITY_LIST", "registered")
    monkeypatch.delenv("ANSIBLE_VAULT_IDENTITY_LIST")
    assert main(["schedule", "install", "--env", "sandbox", "--cron", "0 5 * * 1",
                 "--systemd", "--unit-dir", str(tmp_path), "--vault-id",
                 f"prod@{script}"]) == 0
    service = (tmp_path / "drtool-drill-sandbox.service").read_text()
    assert str(script) not in service
    env_file = tmp_path / "home" / "schedules" / "drill-sandbox.env"
    assert f"ANSIBLE_VAULT_IDENTITY_LIST=prod@{script}\n" in env_file.read_text()


def test_a_schedule_of_an_inventory_given_by_path_gives_every_job_that_path(tmp_path,
                                                                           monkeypatch):
    secret_environment(monkeypatch, tmp_path / "home")
    inventory = tmp_path / "estate" / "prod-eu"
    shutil.copytree(content_root() / "inventories" / "sandbox", inventory)
    assert main(["schedule", "install", "--env", "estate", "-i", str(inventory / "hosts.yml"),
                 "-i", str(inventory), "--cron", "0 5 * * 1", "--backup-cron", "0 * * * *",
                 "--systemd", "--unit-dir", str(tmp_path)]) == 0
    for job in ("drill", "backup"):
        service = (tmp_path / f"drtool-{job}-estate.service").read_text()
        argv = next(line for line in service.splitlines()
                    if line.startswith("ExecStart=")).split()
        assert argv[2:4] == ["--env", "estate"]
        assert " ".join(argv).count(" --inventory ") == 2
        assert f"--inventory {inventory}/hosts.yml --inventory {inventory} " in " ".join(argv)


def test_limit_is_refused_naming_why(capsys):
    assert main(["drill", "--env", "sandbox", "--limit", "sandbox-pg-target"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("drtool: error: Invalid value for '--limit': drtool runs on the "
                          "whole environment"), err
    assert err.count("\n") == 1


def test_the_cron_line_carries_no_secret_and_gives_the_drill_every_variable(tmp_path,
                                                                           monkeypatch):
    secret_environment(monkeypatch, tmp_path / "home")
    # A stand-in for drtool that records the environment and arguments cron gives it.
    seen = tmp_path / "seen.json"
    fake = tmp_path / "bin" / "drtool"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, "
                    f"open({str(seen)!r}, 'w'))\n")
    fake.chmod(0o755)
    monkeypatch.setattr(schedule, "drtool_executable", lambda: str(fake))

    env_file = schedule.write_env_file("sandbox")
    line = schedule.command_for("sandbox")
    assert HOOK_URL not in line and S3_SECRET not in line and "T0KEN" not in line
    assert_private_env_file(env_file)
    # Run it as cron does: /bin/sh -c LINE with cron's few variables.
    done = subprocess.run(["/bin/sh", "-c", line], env={"PATH": "/usr/bin:/bin",
                                                        "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    got = json.loads(seen.read_text())
    assert got["argv"][:3] == ["drill", "--env", "sandbox"]
    assert got["env"]["DRTOOL_HOOK_URL"] == HOOK_URL and got["env"]["DRTOOL_S3_SECRET"] == (
        S3_SECRET)
    assert got["env"]["AWS_PROFILE"] == "drill profile's 'name'"
    assert got["env"]["DRTOOL_HOME"] == str(tmp_path / "home")
    assert got["env"]["PATH"].split(os.pathsep)[0] == str(fake.parent)


def test_a_schedule_for_an_unknown_environment_is_refused(capsys):
    assert main(["schedule", "install", "--env", "atlantis", "--cron", "0 5 * * 1"]) == 2
    assert "unknown environment 'atlantis'" in capsys.readouterr().err


def test_the_log_is_rotated_past_its_size_keeping_five(tmp_path):
    log = tmp_path / "drill.log"
    for round_ in range(7):
        log.write_text(f"round {round_}\n" + "x" * 100)
        logfile.rotate(log, max_bytes=50, keep=5)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["drill.log.1", "drill.log.2", "drill.log.3", "drill.log.4", "drill.log.5"]
    assert (tmp_path / "drill.log.1").read_text().startswith("round 6")
    assert (tmp_path / "drill.log.5").read_text().startswith("round 2")
    small = tmp_path / "small.log"
    small.write_text("short")
    logfile.rotate(small, max_bytes=50)
    assert small.read_text() == "short"


def test_status_exits_1_when_an_environment_is_overdue(tmp_path, monkeypatch, capsys):
    from drtool import paths
    from drtool.drill.journal_writer import JournalWriter
    from drtool.store.history import History, record_of

    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    old = journal()
    old.scope = {"cadence_days": 7}
    old.started_at = old.ended_at = "2020-01-01T00:00:00+00:00"
    writer = JournalWriter(paths.evidence_dir("staging") / old.drill_id, old)
    writer.save()
    with History(paths.history_db()) as history:
        history.append(record_of(old), writer.path)
    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("staging: OVERDUE (every 7 d); last drill 20261122T050000Z-abc123")
    assert main(["status", "--env", "staging", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)[0]["state"] == "overdue"
    assert main(["status", "--env", "atlantis"]) == 2


def test_a_systemd_unit_of_the_environment_keeps_its_env_file(tmp_path, monkeypatch):
    # `schedule remove` deletes the crontab entry's env file only when no unit reads it.
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "home"))
    user = tmp_path / "user-units"
    user.mkdir()
    assert schedule.unit_files("sandbox", (tmp_path / "none", user)) == []
    schedule.systemd_units("sandbox", "0 5 * * 1", user)
    assert schedule.unit_files("sandbox", (tmp_path / "none", user)) == [
        user / "drtool-drill-sandbox.service"]
    assert schedule.unit_files("other", (user,)) == []


def test_a_backup_schedule_and_a_drill_schedule_of_its_backups_are_installed_apart(
        tmp_path, monkeypatch, capsys):
    secret_environment(monkeypatch, tmp_path / "home")
    assert main(["schedule", "install", "--env", "sandbox", "--backup-cron", "0 * * * *",
                 "--drill-cron", "30 5 * * 1", "--systemd", "--unit-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.endswith(
        "enable --now drtool-backup-sandbox.timer drtool-drill-sandbox.timer\n")

    def exec_start(job: str) -> list[str]:
        service = (tmp_path / f"drtool-{job}-sandbox.service").read_text()
        assert HOOK_URL not in service and S3_SECRET not in service
        line = next(x for x in service.splitlines() if x.startswith("ExecStart="))
        return line.removeprefix("ExecStart=").split()[1:]

    home = tmp_path / "home"
    assert exec_start("backup") == ["backup", "--env", "sandbox", "--log",
                                    f"{home}/logs/backup-sandbox.log", "--lock-wait", "3600"]
    # Drills restore the newest backup the schedule made, waiting for a backup that runs.
    assert exec_start("drill") == ["drill", "--env", "sandbox", "--log",
                                   f"{home}/logs/drill-sandbox.log", "--lock-wait", "3600",
                                   "--backup", "latest"]
    assert "OnCalendar=*-*-* *:0:00" in (tmp_path / "drtool-backup-sandbox.timer").read_text()
    assert schedule.unit_files("sandbox", (tmp_path,)) == [
        tmp_path / "drtool-drill-sandbox.service", tmp_path / "drtool-backup-sandbox.service"]
    # The checks of every backup, on a schedule of their own.
    assert main(["schedule", "install", "--env", "sandbox", "--verify-cron", "30 3 * * *",
                 "--systemd", "--unit-dir", str(tmp_path)]) == 0
    assert exec_start("verify-backups") == [
        "backups", "verify", "--env", "sandbox", "--log",
        f"{home}/logs/verify-backups-sandbox.log", "--lock-wait", "3600"]
    assert "Description=drtool check of every backup of sandbox" in (
        tmp_path / "drtool-verify-backups-sandbox.service").read_text()
    (tmp_path / "drtool-verify-backups-sandbox.service").unlink()
    # Alone, a drill schedule makes its own backups, unless told which to restore.
    assert main(["schedule", "install", "--env", "sandbox", "--cron", "0 5 * * 1",
                 "--drill-backup", "random", "--systemd", "--unit-dir", str(tmp_path)]) == 0
    assert exec_start("drill")[-2:] == ["--backup", "random"]
    # Installed again alone, it still drills the backups the schedule makes...
    assert main(["schedule", "install", "--env", "sandbox", "--cron", "0 5 * * 1",
                 "--systemd", "--unit-dir", str(tmp_path)]) == 0
    assert exec_start("drill")[-2:] == ["--backup", "latest"]
    # ...and without a backup schedule, it makes its own.
    (tmp_path / "drtool-backup-sandbox.service").unlink()
    assert main(["schedule", "install", "--env", "sandbox", "--cron", "0 5 * * 1",
                 "--systemd", "--unit-dir", str(tmp_path)]) == 0
    assert "--backup" not in exec_start("drill")


@pytest.mark.parametrize(("args", "says"), [
    ([], "give --drill-cron (or --cron), --backup-cron, --verify-cron, or several"),
    (["--verify-cron", "30 3 * *"], "not a valid cron expression"),
    (["--cron", "0 5 * * 1", "--drill-cron", "0 5 * * 1"], "the same option"),
    (["--backup-cron", "0 * * * *", "--drill-backup", "latest"], "goes with --drill-cron"),
    (["--drill-cron", "0 5 * * 1", "--backup-cron", "0 * * *"], "not a valid cron expression"),
    (["--drill-cron", "0 5 * * 1", "--drill-backup", "oldest"], "'oldest' is not one of"),
])
def test_a_schedule_that_cannot_be_installed_writes_nothing(args, says, tmp_path, monkeypatch,
                                                            capsys):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "home"))
    units = tmp_path / "units"
    assert main(["schedule", "install", "--env", "sandbox", *args, "--systemd",
                 "--unit-dir", str(units)]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and err.count("\n") == 1
    assert not units.exists() and not (tmp_path / "home" / "schedules").exists()


def test_the_rpo_exposure_is_the_age_of_the_newest_verified_backup():
    from drtool.core.status import newest_verified, rpo_exposure

    def drill(at_days: float, status: str, backup: str, consistent_days: float):
        consistent = (NOW - dt.timedelta(days=consistent_days)).isoformat()
        return record(f"d{at_days}", at_days, status), {"id": backup, "consistent_at": consistent}

    newest_first = [drill(0.1, "failed", "bk-new", 0.11),   # failed: proves nothing
                    drill(1, "passed", "bk-old", 5),        # a random drill of an old backup
                    drill(2, "passed", "bk-mid", 2.01),     # the newest verified
                    drill(9, "passed", "bk-older", 9.01)]   # started before it: the end
    def stops_in_time():  # the walk stops at the fourth: it started before bk-mid was made
        yield from newest_first
        raise AssertionError("read past a drill older than the newest verified backup")

    assert newest_verified(stops_in_time()) == (
        "bk-mid", (NOW - dt.timedelta(days=2.01)).isoformat(timespec="milliseconds"))
    found = rpo_exposure(newest_verified(iter(newest_first)), 3 * 86400, NOW)
    assert (found["rpo_exposure_s"], found["rpo_state"]) == (round(2.01 * 86400, 1), "ok")
    assert rpo_exposure(("bk-mid", found["newest_verified_backup_at"]), 86400, NOW)[
        "rpo_state"] == "exceeded"
    assert rpo_exposure(None, 86400, NOW)["rpo_state"] == "exceeded"  # nothing verified
    assert rpo_exposure(None, None, NOW)["rpo_state"] == "no objective"
    # Backups only (a production tier): nothing a drill proved, nothing to judge.
    assert rpo_exposure(None, 86400, NOW, drilled=False)["rpo_state"] == "not drilled"


def test_status_exits_1_when_the_newest_verified_backup_is_older_than_the_rpo_objective(
        tmp_path, monkeypatch, capsys):
    from drtool import paths
    from drtool.core.model import BackupRef
    from drtool.drill.journal_writer import JournalWriter
    from drtool.store.history import History, record_of

    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    now = dt.datetime.now(UTC)
    made = journal()
    made.scope = {"cadence_days": 7}  # a drill passed within its cadence: not overdue
    made.started_at = made.ended_at = (now - dt.timedelta(hours=1)).isoformat()
    made.objectives = Objectives(300, 1800)  # RPO objective: 30 min
    made.backup = BackupRef("bk-20261122T020000Z-aaaaaa",
                            (now - dt.timedelta(hours=3)).isoformat(), "/store/manifest.json")
    writer = JournalWriter(paths.evidence_dir("staging") / made.drill_id, made)
    writer.save()
    with History(paths.history_db()) as history:
        history.append(record_of(made), writer.path)

    assert main(["status", "--env", "staging", "--json", "--metrics-dir", str(tmp_path)]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["state"], row["rpo_state"]) == ("ok", "exceeded")
    assert row["newest_verified_backup"] == "bk-20261122T020000Z-aaaaaa"
    assert 3 * 3600 - 60 < row["rpo_exposure_s"] < 3 * 3600 + 60
    samples = {s.name: s.value for family in text_string_to_metric_families(
        (tmp_path / "drtool_status_staging.prom").read_text()) for s in family.samples}
    assert samples["drtool_status_rpo_exposure_exceeded"] == 1
    assert samples["drtool_status_overdue"] == 0
    assert samples["drtool_status_rpo_objective_seconds"] == 1800
    assert main(["status", "--env", "staging"]) == 1
    assert "RPO exposure 3 h (newest verified backup bk-20261122T020000Z-aaaaaa), objective " \
           "30 min EXCEEDED" in capsys.readouterr().out
