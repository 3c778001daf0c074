"""Secrets never land anywhere. One phase (a real ansible-playbook run through AnsibleAdapter)
whose user says ANSIBLE_VERBOSITY=3, or whose run raises, leaves no secret in its artifacts;
and a backup and a restore run by such a user, with credentials in their environment, leave
none in any file under DRTOOL_HOME, nor in drtool's output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drtool.errors import OrchestrationError
from tests.ansible_probe import Probe, artifacts_text, probe_runner
from tests.conftest import Drtool

pytestmark = pytest.mark.integration

# In the user's environment: what ansible-runner would copy into its `command` artifact.
AWS_SECRET = "aws-S3CRET-from-the-users-shell"
HOOK_URL = "https://hooks.example/services/T0KEN-from-the-users-shell"


# -- one phase, on this machine --------------------------------------------------------------

SECRET = "pr0be-s3cret-VALUE"


@pytest.fixture
def probe(tmp_path: Path) -> Probe:
    return probe_runner(tmp_path)


LEAKY = [{"name": "A password through environment:, the way drtool no longer does it",
          "ansible.builtin.command": {"argv": ["/bin/true"]},
          "environment": {"PGPASSWORD": SECRET}, "no_log": True}]


def test_a_users_ansible_verbosity_does_not_reach_the_artifacts(probe, tmp_path, monkeypatch):
    # At -vvv Ansible prints each module's command line with its environment: this task's
    # password would be in stdout and job_events. drtool runs every phase at verbosity 0.
    monkeypatch.setenv("ANSIBLE_VERBOSITY", "3")
    monkeypatch.setenv("ANSIBLE_DEBUG", "1")
    run = probe(LEAKY)
    assert run.status == "successful"
    text = artifacts_text(tmp_path)
    assert "TASK [A password through environment:" in text  # the output is there to search
    assert SECRET not in text
    command = json.loads((tmp_path / "artifacts" / "probe" / "command").read_text())
    assert command["env"]["ANSIBLE_VERBOSITY"] == "0"


def test_a_users_ansible_log_and_callbacks_get_no_copy_of_a_phase(probe, tmp_path, monkeypatch):
    # Ansible's own log is written outside drtool's artifacts, where nothing scrubs it.
    log = tmp_path / "users-ansible.log"
    monkeypatch.setenv("ANSIBLE_LOG_PATH", str(log))
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", "ansible.builtin.tree")
    monkeypatch.setenv("ANSIBLE_CALLBACK_TREE_DIR", str(tmp_path / "tree"))
    run = probe(LEAKY)
    assert run.status == "successful"
    assert not log.exists()
    assert not (tmp_path / "tree").exists()


def test_a_run_that_raises_still_scrubs_its_command_artifact(probe, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)

    def fail(_event: dict[str, Any], record: Any) -> None:
        if record is not None:
            # Not an OSError: ansible-runner swallows those from an event handler.
            raise RuntimeError("the journal could not be saved")

    with pytest.raises(OrchestrationError, match="the journal could not be saved"):
        probe([{"name": "Anything", "ansible.builtin.command": {"argv": ["/bin/true"]}}], fail)
    command = tmp_path / "artifacts" / "probe" / "command"
    assert command.is_file() and SECRET not in command.read_text()
    assert json.loads(command.read_text())["env"]["AWS_SECRET_ACCESS_KEY"] == (
        "<withheld by drtool>")


# -- drtool itself, against the sandbox ------------------------------------------------------

def files_holding(home: Path, secrets: dict[str, str]) -> list[str]:
    """Every file under `home` holding one of the secrets, as "path: name", except those the
    sandbox's own services need them in: its secrets folder and Redis's requirepass."""
    allowed = {home / "sandbox" / server / "redis.conf" for server in (
        "redis-primary", "redis-target", "redis-queue-primary", "redis-queue-target")}
    found = []
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path in allowed or (home / "sandbox" / "secrets") in path.parents:
            continue
        data = path.read_bytes()
        found += [f"{path.relative_to(home)}: {name}" for name, value in secrets.items()
                  if value.encode() in data]
    return found


def test_a_backup_and_restore_at_verbosity_3_write_no_secret_anywhere(sandbox: Drtool):
    secrets = {"postgres password": sandbox.secret("postgres_password"),
               "redis password": sandbox.secret("redis_password"),
               "AWS secret": AWS_SECRET, "webhook URL": HOOK_URL}
    before = files_holding(sandbox.home, secrets)
    assert before == [], before  # the sandbox keeps its secrets where they belong
    user = Drtool(sandbox.home, {**sandbox.env, "ANSIBLE_VERBOSITY": "3",
                                 "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                                 "DRTOOL_HOOK_URL": HOOK_URL})

    code, backup = user.json("backup", "--env", "sandbox")
    assert code == 0, backup.get("failure")
    # The restore phase runs pg_restore with the password: the task a -vvv run used to
    # print, with PGPASSWORD=..., into artifacts/restore/stdout and job_events.
    restored = user("restore", "--env", "sandbox", "--backup", backup["backup"]["id"], "--json")
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert json.loads(restored.stdout)["status"] == "passed"

    # The runs' artifacts are there to be searched, verbose output included.
    artifacts = sandbox.home / "evidence" / "sandbox" / backup["drill_id"] / "artifacts"
    assert (artifacts / "backup" / "stdout").stat().st_size > 0
    assert files_holding(sandbox.home, secrets) == []
    for name, value in secrets.items():
        assert value not in restored.stdout + restored.stderr, name
