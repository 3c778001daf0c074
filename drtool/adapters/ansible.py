"""The only module that imports ansible_runner: run one playbook (one drill phase), turn its
events into task records, and hand back what the roles published with set_stats."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
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
    "ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACK_PLUGINS", "ANSIBLE_VERBOSITY", "ANSIBLE_DEBUG",
    "ANSIBLE_DISPLAY_ARGS_TO_STDOUT", "ANSIBLE_KEEP_REMOTE_FILES", "DRTOOL_PAYLOAD_CACHE",
})
WITHHELD = "<withheld by drtool>"
RUNNER_COMMAND = re.compile(r'\{\s*"command"')  # how runner's json.dump of it begins

# Settings a user's environment may carry that make Ansible write more than a task's masked
# result: -vvv shows each module's environment and command line (a password given through
# `environment:` included), debug output shows far more, task arguments in the headers are
# not masked, and kept remote files hold every module argument. A phase runs with all off.
QUIET = {"ANSIBLE_VERBOSITY": "0", "ANSIBLE_DEBUG": "0", "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "0",
         "ANSIBLE_KEEP_REMOTE_FILES": "0",
         # Nor may a user's log file get a copy of what drtool scrubs.
         "ANSIBLE_LOG_PATH": "/dev/null"}
# ...or a user's extra callbacks (they write files of their own, the tree callback the whole
# results): removed from the environment runner copies, as they cannot be set to "none".
UNSET = ("ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_WHITELIST")


# Module payloads shared between runs (see the drtool.drill.payload_cache callback): a
# folder per make-up, under the run's scratch folder, its time set at every run that uses it.
# Those of another make-up (an upgrade) are deleted once no run has used them for this long:
# a drtool of the old version still running would otherwise lose its folder mid-run.
PAYLOAD_CACHE_KEPT_S = 7 * 86400
# Settings by which a user's environment points Ansible at other module code than the
# checkout's: the key could not name it, so with any of them set nothing is shared.
OTHER_MODULE_CODE = ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS", "ANSIBLE_LIBRARY",
                     "ANSIBLE_MODULE_UTILS")


def payload_key(content_root: Path) -> str:
    """What the payloads Ansible builds are made of, as a short hash: ansible-core's version
    and where it is installed (its builtin modules and module_utils), the bytecode version of
    the Python that compiles them (the payload_cache callback adds their bytecode), and every
    file of the drtool.drill collection's plugins. Payloads hold code only, never a task's
    arguments."""
    from ansible import release  # noqa: PLC0415 - a small module; ansible itself is not loaded

    digest = hashlib.sha256(f"{release.__version__}\0{Path(release.__file__).parent}".encode()
                            + b"\0" + importlib.util.MAGIC_NUMBER)
    plugins = content_root / "collections" / "ansible_collections" / "drtool" / "drill" / "plugins"
    for path in sorted(plugins.rglob("*.py")):
        digest.update(b"\0" + str(path.relative_to(plugins)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


_PAYLOAD_KEYS: dict[Path, str] = {}


def payload_cache(scratch: Path, content_root: Path) -> Path | None:
    """The folder of shared module payloads for runs whose scratch folder is `scratch`, marked
    as used now; older make-ups' folders beside it are deleted once unused for
    PAYLOAD_CACHE_KEPT_S. None (nothing shared) when the environment points Ansible at other
    module code (OTHER_MODULE_CODE)."""
    if any(os.environ.get(name) for name in OTHER_MODULE_CODE):
        return None
    key = _PAYLOAD_KEYS.get(content_root) or _PAYLOAD_KEYS.setdefault(
        content_root, payload_key(content_root))
    root = scratch / "payloads"
    folder = root / key
    if folder.is_dir():
        with contextlib.suppress(OSError):
            os.utime(folder)
    else:
        with contextlib.suppress(OSError):
            for other in root.iterdir():
                if other.name != key and time.time() - other.stat().st_mtime > PAYLOAD_CACHE_KEPT_S:
                    shutil.rmtree(other, ignore_errors=True)
    return folder


class _Unset:
    """UNSET's variables out of os.environ while any run is under way (runs may go side by
    side, in threads): the first run in takes them out, the last one out puts them back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs = 0
        self.kept: dict[str, str] = {}

    def __enter__(self) -> None:
        with self.lock:
            if self.runs == 0:
                self.kept = {name: os.environ.pop(name) for name in UNSET if name in os.environ}
            self.runs += 1

    def __exit__(self, *_exc: object) -> None:
        with self.lock:
            self.runs -= 1
            if self.runs == 0:
                os.environ.update(self.kept)
                self.kept = {}


_UNSET = _Unset()

# A failed task's reason keeps this much of a tool's own output: the end, where the error is.
OUTPUT_TAIL = 1000
# "name=value" or "name: value" where the name says secret; URLs' user:password@.
SECRET_SETTING = re.compile(
    r"(?i)(\b[\w-]*(?:pass(?:word|wd)?|secret(?:[_-]access[_-]key)?|api[_-]?key|requirepass"
    r"|masterauth))(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&|]+)")
URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")


@dataclass
class TaskFailure:
    host: str
    task: str
    message: str
    unreachable: bool
    result: dict[str, Any]
    component: str | None = None  # the component the run was for, when it was for one


@dataclass
class PlaybookRun:
    """What one playbook run produced."""

    status: str  # successful, failed, canceled, timeout
    rc: int
    tasks: list[TaskRecord] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # set_stats data, merged over hosts
    failures: list[TaskFailure] = field(default_factory=list)
    # What ansible-playbook said it stopped on when no task failed (it could not load the
    # inventory or a playbook: a vault it cannot open, a YAML error), redacted; "" otherwise.
    error: str = ""


def task_record(event: dict[str, Any]) -> TaskRecord | None:
    """Turn a runner_on_* event into a TaskRecord; None for every other event."""
    status = TASK_EVENTS.get(event.get("event", ""))
    if status is None:
        return None
    data = event.get("event_data", {})
    result = data.get("res") or {}
    if status == "ok" and result.get("changed"):
        status = "changed"
    message: str | None = None
    if status in ("failed", "unreachable"):
        message = failure_reason(result)
    else:  # drtool's own modules may say in a line what they chose (a snapshot's method)
        note = result.get("drtool_note")
        message = redact_secrets(one_line(note)) if isinstance(note, str) and note else None
    return TaskRecord(
        host=data.get("host", ""), name=data.get("task", ""), action=data.get("task_action", ""),
        status=status, started_at=data.get("start"), ended_at=data.get("end"),
        duration_s=round(data["duration"], 3) if data.get("duration") is not None else None,
        message=message,
    )


def failure_reason(result: dict[str, Any]) -> str:
    """Why a task failed, on one line, from its result: the module's msg, plus the tail of a
    command's stderr (or stdout) when msg says no more than "non-zero return code", or of
    the module's own output on a MODULE FAILURE; for a loop, the first failed item's. Values
    that look like secrets become ***; Ansible has already masked every no_log parameter."""
    if result.get("censored"):
        return "the task's output is hidden (no_log: true)"
    message = one_line(str(result.get("msg") or ""))
    items = result.get("results")
    items = items if isinstance(items, list) else []
    failed = [item for item in items if isinstance(item, dict) and item.get("failed")]
    if failed:
        first = failed[0]
        label = first.get("_ansible_item_label", first.get("item"))
        if not isinstance(label, str | int | float) or len(str(label)) > 60:
            label = f"#{items.index(first) + 1}"  # a structure may hold anything: no quote
        count = f" ({len(failed)} of {len(items)} failed)" if len(failed) > 1 else ""
        message = f"item {label}{count}: {failure_reason(first)}"
    if message.startswith("MODULE FAILURE"):
        message, output = "MODULE FAILURE", result.get("module_stderr") or result.get(
            "module_stdout")
    elif result.get("rc") not in (None, 0):
        output = result.get("stderr") or result.get("stdout")
    else:
        output = None
    # Masked before it is cut: a secret cut in half would no longer look like one.
    details = tail(redact_secrets(one_line(str(output or ""))))
    if details and details not in message:
        message = f"{message}: {details}" if message else details
    return redact_secrets(message)


PLAYBOOK_ERROR = re.compile(r"^(?:\[ERROR\]: |ERROR! )(.+)$", re.MULTILINE)


def playbook_error(stdout: Path) -> str:
    """The errors ansible-playbook printed in its stdout artifact (its `[ERROR]:` and
    `ERROR!` lines), on one line and redacted; "" when there are none or no file."""
    try:
        text = stdout.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return tail(redact_secrets(" | ".join(m.strip() for m in PLAYBOOK_ERROR.findall(text))))


def one_line(text: str) -> str:
    """Every non-blank line of `text`, stripped, joined by " | "."""
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


def redact_secrets(text: str) -> str:
    """`text` with the value of every "password=...", "secret: ..." and the like, and every
    URL's password, replaced by ***."""
    text = SECRET_SETTING.sub(lambda m: f"{m[1]}{m[2]}***", text)
    return URL_PASSWORD.sub(lambda m: f"{m[1]}***@", text)


class AnsibleAdapter:
    """Runs drtool's playbooks against one inventory with drtool's ansible.cfg."""

    def __init__(self, content_root: Path, inventory: Path | Sequence[Path], scratch: Path,
                 env_name: str | None = None) -> None:
        self.content_root = content_root
        # One source or several (-i given more than once), passed on as ansible-playbook -i.
        self.sources = (inventory,) if isinstance(inventory, Path) else tuple(inventory)
        self.inventory = self.sources[0]
        # What playbooks see as drtool_env: the environment's name (default: the folder's).
        self.env_name = env_name or self.inventory.name
        self.scratch = scratch
        # ssh ControlPersist sockets; a drill gives itself a folder of its own (see
        # use_control_dir) so that closing its masters never cuts another drill's.
        self.control_dir = control_dir("shared")

    def use_control_dir(self, name: str) -> None:
        self.control_dir = control_dir(name)

    def close_ssh_masters(self) -> int:
        """Ask every persisted ssh master of this adapter to exit; return how many did."""
        return close_ssh_masters(self.control_dir)

    def _writable_scratch(self) -> Path:
        """The scratch folder, or, when DRTOOL_HOME is full, one in the system's temporary
        folder: a rollback must be able to run when nothing more fits in the home."""
        try:
            self.scratch.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.scratch) as probe:
                probe.write(b"\0" * 65536)
                probe.flush()
                os.fsync(probe.fileno())
            return self.scratch
        except OSError:
            fallback = paths.fallback_dir() / "run"
            fallback.mkdir(mode=0o700, parents=True, exist_ok=True)
            return fallback

    def _envvars(self, scratch: Path) -> dict[str, str]:
        bindir = str(Path(sys.executable).parent)
        tmp = scratch / "ansible-tmp"
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
            # ansible-runner copies drtool's whole environment: a user's ANSIBLE_VERBOSITY=3
            # would otherwise reach every phase and its artifacts.
            **QUIET,
        }
        payloads = payload_cache(scratch, self.content_root)
        if payloads is not None:
            env["DRTOOL_PAYLOAD_CACHE"] = str(payloads)
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
        run_id: str | None = None,
        timeout_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        limit: list[str] | None = None,
    ) -> PlaybookRun:
        """Run playbooks/<playbook>.yml; return its status, tasks, stats and failures.
        With `run_id`, ansible-playbook and every process below it carry DRTOOL_RUN_ID, so
        that playbooks/reap.yml can stop them after a cancel or a kill. With `timeout_s`,
        the run is stopped as a cancel is once it has taken that long on `monotonic`, and
        its status is "timeout" (what it started on the hosts is the caller's to reap).
        With `limit`, only those inventory hosts run the plays (every host still sees the
        others' variables).

        Raises OrchestrationError when ansible-runner itself cannot start.
        """
        import ansible_runner  # noqa: PLC0415 - keep CLI start-up fast for other commands

        result = PlaybookRun(status="failed", rc=-1)
        stats: dict[str, Any] = {}
        started, timed_out = monotonic(), False

        def stop() -> bool:
            # Runner asks every few seconds (its pexpect_timeout, 5 s). Its own `timeout`
            # measures on the wall clock, which a step of the system clock fools.
            nonlocal timed_out
            if cancelled is not None and cancelled():
                return True
            timed_out = timeout_s is not None and monotonic() - started >= timeout_s
            return timed_out

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
        scratch = self._writable_scratch()  # probed once a run: it writes and fsyncs
        private = tempfile.mkdtemp(prefix="runner-", dir=scratch)
        try:
            with _UNSET:
                runner = ansible_runner.run(
                    private_data_dir=private,
                    project_dir=str(self.content_root),
                    playbook=str(self.content_root / "playbooks" / f"{playbook}.yml"),
                    inventory=[str(source) for source in self.sources],
                    extravars=extravars,
                    envvars=self._envvars(scratch) | ({"DRTOOL_RUN_ID": run_id} if run_id else {}),
                    artifact_dir=str(artifact_dir.parent),
                    ident=artifact_dir.name,
                    rotate_artifacts=0,
                    quiet=True,
                    event_handler=handle,
                    cancel_callback=stop,
                    suppress_env_files=True,
                    limit=",".join(limit) if limit else None,
                )
        except Exception as exc:  # noqa: BLE001 - runner raises bare exceptions on bad input
            raise OrchestrationError(f"ansible-runner could not run {playbook}: {exc}") from exc
        finally:
            shutil.rmtree(private, ignore_errors=True)
            # Runner writes it before ansible-playbook starts: scrub it however the run ended.
            scrub_command_artifact(artifact_dir / "command")
        result.status, result.rc, result.stats = runner.status, runner.rc, stats
        if timed_out and runner.status == "canceled":
            result.status = "timeout"
        if result.status == "failed" and not result.failures:
            result.error = playbook_error(artifact_dir / "stdout")
        return result

    def describe(self, recovering: bool = False) -> dict[str, dict[str, Any]]:
        """Every host's settings as Ansible resolves them ({host: {...}}), from
        playbooks/describe.yml, which connects to no host; `recovering`: as a recovery
        resolves them (drtool_target_side: recovery). Raises ConfigError when the
        inventory cannot be resolved (a bad template, a missing variable)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="describe-", dir=self.scratch))
        try:
            run = self.run("describe", {"drtool_env": self.env_name,
                                        "drtool_backup_id": "BACKUP_ID",
                                        "drtool_store_backup_path": "STORE_PATH",
                                        "drtool_drill_id": "DRILL_ID",
                                        **({"drtool_target_side": "recovery"}
                                           if recovering else {})},
                           scratch / "describe")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if run.status != "successful":
            why = "; ".join(f"{f.host}: {f.message}" for f in run.failures) or run.error \
                or run.status
            where = ", ".join(str(source) for source in self.sources)
            raise ConfigError(f"inventory {where}: Ansible cannot resolve it: {why}")
        return dict(run.stats.get("drtool_describe", {}))


def control_dir(name: str) -> Path:
    """The folder of one drill's ssh control sockets (see paths.ssh_control_root), made
    private to this user."""
    root = paths.ssh_control_root()
    root.parent.mkdir(mode=0o700, exist_ok=True)
    return root / hashlib.sha256(name.encode()).hexdigest()[:8]


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


def scrub_artifacts(folder: Path) -> int:
    """Scrub every ansible-runner `command` artifact under `folder` (see
    scrub_command_artifact), such as those a killed run left unscrubbed; return how many
    were rewritten. Safe while other runs are going: runner never reads the file back."""
    scrubbed = 0
    if folder.is_dir():
        for path in sorted(folder.rglob("command")):
            scrubbed += path.is_file() and scrub_command_artifact(path)
    return scrubbed


def scrub_command_artifact(path: Path) -> bool:
    """Rewrite runner's `command` artifact so that it keeps only harmless env values; one
    cut short by a kill (not JSON) keeps nothing. Files that are no such artifact are left
    alone. Returns whether the file was rewritten."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if not RUNNER_COMMAND.match(text):
        return False
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("env"), dict):
        env = data["env"]
        if all(key in KEPT_ENV or value == WITHHELD for key, value in env.items()):
            return False  # nothing to withhold, or scrubbed already
        data["env"] = {key: value if key in KEPT_ENV else WITHHELD
                       for key, value in sorted(env.items())}
    else:  # cut short by a kill: any part of the environment may be in it
        data = {"command": None, "env": {}, "withheld": "cut short; withheld by drtool"}
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError:
        # No room for the scrubbed copy (a full disk): the secrets must go all the same.
        tmp.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    return True
