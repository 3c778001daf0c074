"""One operation per environment at a time: a file lock under DRTOOL_HOME/locks.

The lock is the kernel's (flock, through the filelock package), so a drill that is killed
releases it with its process; nothing has to guess from timestamps. Beside the lock, an owner
file says who holds it. An owner file left by a process that is gone is a stale lock: it is
taken over, and the caller is told whose it was.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from drtool.core.clock import iso, utc_now
from drtool.drill.recovery import process_running
from drtool.errors import LockedError
from drtool.store.local import atomic_write


@dataclass
class EnvironmentLock:
    """Held from acquire() to release(); `stale` holds the previous owner when it was taken
    over from a process that is gone."""

    folder: Path
    env: str
    stale: dict[str, Any] | None = None
    _lock: filelock.BaseFileLock | None = None

    @property
    def owner_file(self) -> Path:
        return self.folder / f"{self.env}.owner.json"

    def acquire(self, operation: str, drill_id: str) -> EnvironmentLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.folder / f"{self.env}.lock"), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            owner = self._owner()
            who = (f"{owner.get('operation', 'an operation')} {owner.get('drill_id', '')} "
                   f"(pid {owner.get('pid')}, started {owner.get('started_at')})"
                   if owner else "another drtool process")
            raise LockedError(f"{self.env} is busy: {who.strip()} holds its lock; "
                              "one drill per environment at a time") from None
        self._lock = lock
        previous = self._owner()
        if previous and previous.get("pid") != os.getpid() and not process_running(
                previous.get("pid")):
            self.stale = previous
        atomic_write(self.owner_file, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "operation": operation,
            "drill_id": drill_id, "started_at": iso(utc_now())}, indent=2) + "\n")
        return self

    def release(self) -> None:
        if self._lock is not None:
            self.owner_file.unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def _owner(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.owner_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None
