"""Processes known by their PID (a pidfile, postmaster.pid): is one running, stop one and
wait for it. Never by name. Imports nothing of drtool."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    """True when `pid` runs. A zombie (exited, not yet reaped by whoever adopted it) has
    stopped: it is not alive."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return True  # no procfs: trust the signal probe
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def read_pid(path: Path) -> int | None:
    """The PID on the first line of a pidfile, or None (no file, no number)."""
    try:
        first = path.read_text(encoding="utf-8").split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def live_pid(path: Path) -> int | None:
    """The PID a pidfile names while that process runs; None otherwise."""
    pid = read_pid(path)
    return pid if pid_alive(pid) else None


def stop_pid(pid: int | None, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Signal `pid` and wait for it to exit; SIGKILL after `timeout`. True if it was running."""
    if pid is None or not pid_alive(pid):
        return False
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.05)
        _reap(pid)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        os.waitpid(pid, os.WNOHANG)
