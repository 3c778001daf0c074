"""The only module that imports paramiko: drtool's own checks on hosts, over SSH with the
inventory's user, key and known_hosts (unknown host keys are refused), or locally for hosts
with a local connection."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import paramiko

from drtool.core.preflight import Answer

CLOCK = "date +%s.%N"


def known_hosts_file(ssh_args: str) -> str | None:
    """The UserKnownHostsFile named in ansible_ssh_common_args, if any."""
    words = shlex.split(ssh_args or "")
    for index, word in enumerate(words):
        option = word[2:] if word.startswith("-o") and len(word) > 2 else (
            words[index + 1] if word == "-o" and index + 1 < len(words) else "")
        if option.startswith("UserKnownHostsFile="):
            return option.split("=", 1)[1]
    return None


def ask(settings: dict[str, Any], commands: dict[str, str], timeout: float = 15) -> Answer:
    """Run `commands` on one host; never raises: an unreachable host is an Answer too."""
    if settings.get("connection") == "local":
        return _ask_locally(commands, timeout)
    client = paramiko.SSHClient()
    known = known_hosts_file(str(settings.get("ssh_args", "")))
    try:
        client.load_system_host_keys()
        if known and Path(known).is_file():
            client.load_host_keys(known)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(str(settings["address"]), port=int(settings.get("ssh_port") or 22),
                       username=str(settings.get("user") or "root"),
                       key_filename=str(settings["key_file"]) if settings.get("key_file") else None,
                       timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                       allow_agent=False, look_for_keys=not settings.get("key_file"))
    except (paramiko.SSHException, OSError) as exc:
        client.close()
        return Answer(False, f"{type(exc).__name__}: {exc}".strip())
    try:
        answer = Answer(True)
        for name, command in commands.items():
            answer.outputs[name] = _remote(client, command, timeout)
        before = time.time()
        code, output = _remote(client, CLOCK, timeout)
        after = time.time()
        if code == 0:
            answer.clock_offset_s = float(output) - (before + after) / 2
        return answer
    except (paramiko.SSHException, OSError) as exc:
        return Answer(False, f"connection lost: {exc}")
    finally:
        client.close()


def _remote(client: paramiko.SSHClient, command: str, timeout: float) -> tuple[int, str]:
    _stdin, stdout, _stderr = client.exec_command(command, timeout=timeout)
    output = stdout.read().decode(errors="replace").strip()
    return stdout.channel.recv_exit_status(), output.splitlines()[-1] if output else ""


def _ask_locally(commands: dict[str, str], timeout: float) -> Answer:
    answer = Answer(True, clock_offset_s=0.0)
    for name, command in commands.items():
        try:
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                  timeout=timeout, check=False)
            lines = done.stdout.strip().splitlines()
            answer.outputs[name] = (done.returncode, lines[-1] if lines else "")
        except subprocess.TimeoutExpired:
            answer.outputs[name] = (124, "timed out")
    return answer
