"""Locks: one operation per environment, and one drill per restore target.

The locks are the kernel's (flock, through the filelock package), so a drill that is killed
releases them with its process; nothing has to guess from timestamps or PIDs. Beside each
lock an owner file says who holds it, for the message a refused operation prints.

- The environment lock lives under DRTOOL_HOME/locks: it orders the operations of one
  environment (and is how `history` or `report` tell a running drill from a killed one).
- Target locks live in one folder every drtool on this machine shares, whatever its
  DRTOOL_HOME (/run/lock/drtool, or DRTOOL_LOCK_DIR): a PostgreSQL or Redis target is
  locked by where it listens, before any phase, and by the machine it runs on, once the
  preflight has asked it, so that two environments (or two homes) naming the same target
  cannot drill it at once. Two controllers are kept apart by a lock file on the target's
  host (see the drtool.drill.target_lock module).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock

from drtool.core.clock import iso, utc_now
from drtool.errors import LockedError
from drtool.util.files import atomic_write


def _who(owner: dict[str, Any] | None, with_env: bool = False) -> str:
    if not owner:
        return "another drtool process"
    env = f" of {owner.get('env')}" if with_env else ""
    return (f"{owner.get('operation', 'an operation')} {owner.get('drill_id', '')}{env} "
            f"(pid {owner.get('pid')}, started {owner.get('started_at')})").replace("  ", " ")


def _read_owner(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _owner(operation: str, drill_id: str, env: str, **more: Any) -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "operation": operation,
                       "env": env, "drill_id": drill_id, "started_at": iso(utc_now()), **more},
                      indent=2) + "\n"


@dataclass
class EnvironmentLock:
    """Held from acquire() to release(); `stale` holds the previous owner when its owner
    file was left behind by an operation that ended without releasing (it was killed)."""

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
            raise LockedError(f"{self.env} is busy: {_who(_read_owner(self.owner_file))} holds "
                              "its lock; one drill per environment at a time") from None
        self._lock = lock
        # The lock was free, so whoever wrote an owner file is gone: release() removes it.
        previous = _read_owner(self.owner_file)
        if previous and previous.get("pid") != os.getpid():
            self.stale = previous
        # For the refusal's message only: the flock is the lock. A full home must not stop
        # the operation that would roll back.
        with contextlib.suppress(OSError):
            atomic_write(self.owner_file, _owner(operation, drill_id, self.env))
        return self

    def release(self) -> None:
        if self._lock is not None:
            self.owner_file.unlink(missing_ok=True)
            self._lock.release()
            self._lock = None


def lock_held(folder: Path, env: str) -> bool:
    """Whether some process, in any PID namespace of this kernel, holds `env`'s lock. Read
    from /proc/locks, without taking the lock (taking it, even briefly, could refuse a drill
    starting at that moment)."""
    return flock_held(folder / f"{env}.lock")


def flock_held(path: Path) -> bool:
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return False
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        if "FLOCK" in fields and len(fields) >= 6 and fields[5] == wanted:
            return True
    return False


def controller_lock_dir() -> Path:
    """The folder every drtool on this machine shares for target locks."""
    if os.environ.get("DRTOOL_LOCK_DIR"):
        return Path(os.environ["DRTOOL_LOCK_DIR"])
    for base in (Path("/run/lock"), Path(tempfile.gettempdir())):
        if os.access(base, os.W_OK | os.X_OK):
            return base / "drtool"
    return Path(tempfile.gettempdir()) / "drtool"


@dataclass
class TargetLocks:
    """Locks on restore targets, by key (e.g. "postgres 10.0.0.5:5432"), held until
    release(). acquire() takes every key or none: a busy one raises LockedError naming the
    target and its holder."""

    folder: Path = field(default_factory=controller_lock_dir)
    held: dict[str, filelock.BaseFileLock] = field(default_factory=dict)

    def _paths(self, key: str) -> tuple[Path, Path]:
        name = "target-" + hashlib.sha256(key.encode()).hexdigest()[:24]
        return self.folder / f"{name}.lock", self.folder / f"{name}.owner.json"

    def acquire(self, keys: Iterable[str], operation: str, drill_id: str, env: str) -> None:
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            # Every user's drtool locks here: sticky and writable by all, like /run/lock.
            self.folder.chmod(0o1777)
        taken = []
        try:
            for key in sorted(set(keys) - set(self.held)):
                lock_path, owner_path = self._paths(key)
                lock = filelock.FileLock(str(lock_path), timeout=0, mode=0o666)
                try:
                    lock.acquire()
                except filelock.Timeout:
                    raise LockedError(
                        f"restore target {key} is busy: {_who(_read_owner(owner_path), True)} is "
                        "drilling it; one drill per target at a time") from None
                taken.append(key)
                self.held[key] = lock
                # For the message only; another user's owner file, or no room, is no matter.
                with contextlib.suppress(OSError):
                    atomic_write(owner_path, _owner(operation, drill_id, env, target=key))
        except BaseException:
            for key in taken:
                self._release(key)
            raise

    def _release(self, key: str) -> None:
        lock = self.held.pop(key)
        self._paths(key)[1].unlink(missing_ok=True)
        lock.release()

    def release(self) -> None:
        for key in list(self.held):
            self._release(key)
