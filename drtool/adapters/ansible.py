"""The only module that imports ansible_runner: run one playbook (one drill phase), turn its
events into task records, and hand back what the roles published with set_stats."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drtool import paths
from drtool.core.model import TaskRecord
from drtool.errors import ConfigError, OrchestrationError

TASK_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}

# Environment variables whose values may be kept in the `command` artifact. Everything else
# ansible-runner copied from drtool's environment is withheld: it may hold credentials.
KEPT_ENV = frozenset({
    "PATH", "HOME", "LANG", "LC_ALL", "DRTOOL_HOME", "DRTOOL_SANDBOX_PORT_BASE",
    "ANSIBLE_CONFIG", "ANSIBLE_LOCAL_TEMP", "ANSIBLE_SSH_CONTROL_PATH_DIR", "ANSIBLE_NOCOLOR",
    "ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACK_PLUGINS",
})


@dataclass
class TaskFailure:
    host: str
    task: str
    message: str
    unreachable: bool
    result: dict[str, Any]


@dataclass
class PlaybookRun:
    """What one playbook run produced."""

    status: str  # successful, failed, canceled, timeout
    rc: int
    tasks: list[TaskRecord] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # set_stats data, merged over hosts
    failures: list[TaskFailure] = field(default_factory=list)


def task_record(event: dict[str, Any]) -> TaskRecord | None:
    """Turn a runner_on_* event into a TaskRecord; None for every other event."""
    status = TASK_EVENTS.get(event.get("event", ""))
    if status is None:
        return None
    data = event.get("event_data", {})
    result = data.get("res") or {}
    if status == "ok" and result.get("changed"):
        status = "changed"
    message = result.get("msg") if status in ("failed", "unreachable") else None
    return TaskRecord(
        host=data.get("host", ""), name=data.get("task", ""), action=data.get("task_action", ""),
        status=status, started_at=data.get("start"), ended_at=data.get("end"),
        duration_s=round(data["duration"], 3) if data.get("duration") is not None else None,
        message=str(message) if message is not None else None,
    )


class AnsibleAdapter:
    """Runs drtool's playbooks against one inventory with drtool's ansible.cfg."""

    def __init__(self, content_root: Path, inventory: Path, scratch: Path) -> None:
        self.content_root = content_root
        self.inventory = inventory
        self.scratch = scratch
        # ssh ControlPersist sockets; a drill gives itself a folder of its own (see
        # use_control_dir) so that closing its masters never cuts another drill's.
        self.control_dir = scratch / "cp" / "shared"

    def use_control_dir(self, name: str) -> None:
        self.control_dir = self.scratch / "cp" / name

    def close_ssh_masters(self) -> int:
        """Ask every persisted ssh master of this adapter to exit; return how many did."""
        return close_ssh_masters(self.control_dir)

    def _envvars(self) -> dict[str, str]:
        bindir = str(Path(sys.executable).parent)
        tmp = self.scratch / "ansible-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {
            # ansible-playbook lives next to this interpreter, venv activated or not.
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "ANSIBLE_CONFIG": str(self.content_root / "ansible.cfg"),
            "ANSIBLE_LOCAL_TEMP": str(tmp),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.control_dir),
            "ANSIBLE_NOCOLOR": "1",
            # Inventories find drtool's state (and the sandbox its secrets) through this.
            "DRTOOL_HOME": str(paths.drtool_home()),
        }
        if "DRTOOL_SANDBOX_PORT_BASE" in os.environ:
            env["DRTOOL_SANDBOX_PORT_BASE"] = os.environ["DRTOOL_SANDBOX_PORT_BASE"]
        return env

    def run(
        self,
        playbook: str,
        extravars: dict[str, Any],
        artifact_dir: Path,
        on_event: Callable[[dict[str, Any], TaskRecord | None], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> PlaybookRun:
        """Run playbooks/<playbook>.yml; return its status, tasks, stats and failures.

        Raises OrchestrationError when ansible-runner itself cannot start.
        """
        import ansible_runner  # noqa: PLC0415 - keep CLI start-up fast for other commands

        result = PlaybookRun(status="failed", rc=-1)
        stats: dict[str, Any] = {}

        def handle(event: dict[str, Any]) -> bool:
            record = task_record(event)
            if record is not None:
                result.tasks.append(record)
                if record.status in ("failed", "unreachable"):
                    data = event.get("event_data", {})
                    if not data.get("ignore_errors"):
                        result.failures.append(TaskFailure(
                            host=record.host, task=record.name, message=record.message or "",
                            unreachable=record.status == "unreachable",
                            result=data.get("res") or {},
                        ))
            if event.get("event") == "playbook_on_stats":
                stats.update(event.get("event_data", {}).get("artifact_data") or {})
            if on_event is not None:
                on_event(event, record)
            return True

        # A fresh private data dir per run: runner writes envvars/extravars files there and
        # would silently reuse them on the next run. It may hold extravars, so it is deleted.
        self.scratch.mkdir(parents=True, exist_ok=True)
        private = tempfile.mkdtemp(prefix="runner-", dir=self.scratch)
        try:
            runner = ansible_runner.run(
                private_data_dir=private,
                project_dir=str(self.content_root),
                playbook=str(self.content_root / "playbooks" / f"{playbook}.yml"),
                inventory=str(self.inventory),
                extravars=extravars,
                envvars=self._envvars(),
                artifact_dir=str(artifact_dir.parent),
                ident=artifact_dir.name,
                rotate_artifacts=0,
                quiet=True,
                event_handler=handle,
                cancel_callback=cancelled or (lambda: False),
                suppress_env_files=True,
            )
        except Exception as exc:  # noqa: BLE001 - runner raises bare exceptions on bad input
            raise OrchestrationError(f"ansible-runner could not run {playbook}: {exc}") from exc
        finally:
            shutil.rmtree(private, ignore_errors=True)
        scrub_command_artifact(artifact_dir / "command")
        result.status, result.rc, result.stats = runner.status, runner.rc, stats
        return result

    def describe(self) -> dict[str, dict[str, Any]]:
        """Every host's settings as Ansible resolves them ({host: {...}}), from
        playbooks/describe.yml, which connects to no host. Raises ConfigError when the
        inventory cannot be resolved (a bad template, a missing variable)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="describe-", dir=self.scratch))
        try:
            run = self.run("describe", {"drtool_env": self.inventory.name,
                                        "drtool_backup_id": "BACKUP_ID",
                                        "drtool_store_backup_path": "STORE_PATH",
                                        "drtool_drill_id": "DRILL_ID"},
                           scratch / "describe")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if run.status != "successful":
            why = "; ".join(f"{f.host}: {f.message}" for f in run.failures) or run.status
            raise ConfigError(f"inventory {self.inventory}: Ansible cannot resolve it: {why}")
        return dict(run.stats.get("drtool_describe", {}))


def close_ssh_masters(folder: Path) -> int:
    """Ask every ssh master whose control socket lies under `folder` to exit, then delete
    the folder; return how many exited."""
    from drtool.adapters.execute import run  # noqa: PLC0415

    closed = 0
    if folder.is_dir():
        for socket_path in sorted(p for p in folder.rglob("*") if p.is_socket()):
            done = run(["ssh", "-O", "exit", "-o", f"ControlPath={socket_path}", "drtool"],
                       check=False, timeout=15)
            closed += done.returncode == 0
        shutil.rmtree(folder, ignore_errors=True)
    return closed


def scrub_command_artifact(path: Path) -> None:
    """Rewrite runner's `command` artifact so that it keeps only harmless env values."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    env = data.get("env") or {}
    data["env"] = {
        key: value if key in KEPT_ENV else "<withheld by drtool>"
        for key, value in sorted(env.items())
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
