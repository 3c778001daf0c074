"""A scheduled drill's log: drtool's own stdout and stderr (and everything it starts) go to a
file it rotates itself, so cron needs no logrotate rule and no shell redirection."""

from __future__ import annotations

import os
import sys
from pathlib import Path

MAX_BYTES = 5 * 1024 * 1024
KEEP = 5


def rotate(path: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
    """When `path` has grown past `max_bytes`, shift it to .1 (.1 to .2 ...), keeping `keep`."""
    try:
        if path.stat().st_size <= max_bytes:
            return
    except FileNotFoundError:
        return
    for index in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
    os.replace(path, path.with_name(f"{path.name}.1"))


def redirect_output(path: Path, header: str) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rotate(path)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    os.write(fd, f"\n=== {header} ===\n".encode())
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
