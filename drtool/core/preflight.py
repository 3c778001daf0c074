"""drtool's own preflight: what each host must answer before a drill changes anything, and
how its answers are judged. Pure: commands are built as strings, answers judged as data;
adapters/ssh.py runs them."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from drtool.core.model import FAILED, PASSED, Check

MAX_CLOCK_SKEW_S = 2.0
DISK_FACTOR = 1.5
TARGETS = ("pg_restore_target", "redis_restore_target")


@dataclass
class Answer:
    """What one host answered: whether it was reached, each command's exit code and output,
    and its clock's offset from this machine's (seconds, network delay removed)."""

    reached: bool
    error: str = ""
    outputs: dict[str, tuple[int, str]] = field(default_factory=dict)
    clock_offset_s: float | None = None


def _port_check(address: str, port: int) -> str:
    # bash's /dev/tcp: no extra tool needed on the host to see a port answer.
    return f"timeout 5 bash -c {shlex.quote(f'</dev/tcp/{address}/{port}')}"


def _free_kib(path: str) -> str:
    folder = shlex.quote(path.rsplit("/", 1)[0] or "/")
    return (f"p={folder}; while [ ! -d \"$p\" ]; do p=$(dirname \"$p\"); done; "
            "df -Pk \"$p\" | awk 'NR==2 {print $4}'")


def commands_for(host: str, settings: dict[str, Any]) -> dict[str, str]:
    """The commands `host` must run, by check name, from its described settings."""
    groups = settings.get("groups", [])
    bin_dir = settings.get("postgres_bin_dir", "/usr/lib/postgresql/15/bin")
    wanted = {"tools.tar": "command -v tar"}
    if settings.get("become"):
        wanted["become"] = "sudo -n true"
    if any(g.startswith("pg_") for g in groups):
        wanted["tools.postgres"] = " && ".join(
            f"test -x {shlex.quote(f'{bin_dir}/{tool}')}" for tool in ("pg_dump", "pg_restore"))
        wanted["service.postgres"] = _port_check(settings["postgres_host"],
                                                 int(settings["postgres_port"]))
    if "pg_restore_target" in groups:
        wanted["version.pg_restore"] = f"{shlex.quote(f'{bin_dir}/pg_restore')} --version"
    if any(g.startswith("redis_") for g in groups):
        wanted["service.redis"] = _port_check(settings["redis_host"], int(settings["redis_port"]))
    if any(g in TARGETS for g in groups):
        wanted["disk.free_kib"] = _free_kib(str(settings.get("backup_path") or "/"))
    return wanted


def major_version(text: str) -> int | None:
    """The major version in 'pg_restore (PostgreSQL) 15.8' or '15.8 (Debian ...)'."""
    match = re.search(r"(\d+)(?:\.\d+)+", text)  # the first dotted version in the text
    return int(match.group(1)) if match else None


def judge(answers: dict[str, Answer], backup_size: int | None) -> list[Check]:
    """Every preflight check, passed or failed, for every host; nothing stops at the first."""
    checks: list[Check] = []

    def add(name: str, host: str, expected: Any, actual: Any, ok: bool, detail: str = "") -> None:
        checks.append(Check(f"preflight.{name}", host, expected, actual,
                            PASSED if ok else FAILED, detail))

    offsets = {}
    for host, answer in sorted(answers.items()):
        add("reachable", host, "reached over ssh with its user and key",
            "reached" if answer.reached else answer.error, answer.reached)
        if not answer.reached:
            continue
        if answer.clock_offset_s is not None:
            offsets[host] = answer.clock_offset_s
        for name, (code, output) in sorted(answer.outputs.items()):
            if name == "disk.free_kib":
                free = int(output) * 1024 if output.isdigit() else None
                need = int(backup_size * DISK_FACTOR) if backup_size else None
                add("disk", host, f">= {need} bytes free" if need else "space to restore into",
                    free, free is not None and (need is None or free >= need),
                    "" if need else "no earlier backup to size against")
            elif name == "version.pg_restore":
                add("pg_restore", host, "installed", output or f"exit {code}", code == 0)
            else:
                add(name, host, "exit 0", f"exit {code}" + (f": {output}" if output else ""),
                    code == 0)
    if offsets:
        spread = max([*offsets.values(), 0.0]) - min([*offsets.values(), 0.0])
        add("clock_skew", "all hosts", f"< {MAX_CLOCK_SKEW_S} s", round(spread, 3),
            spread < MAX_CLOCK_SKEW_S, "between the hosts and this machine")
    return checks


def pg_restore_check(target: str, pg_restore_version: str, source: str,
                     server_version: str) -> Check:
    """pg_restore on the target must be at least the source server's major version."""
    have, need = major_version(pg_restore_version), major_version(server_version)
    ok = have is not None and need is not None and have >= need
    return Check("preflight.pg_restore_version", target, f">= {need} (server on {source})",
                 have, PASSED if ok else FAILED)
