"""Every subprocess drtool itself starts goes through here (commands are argv tuples)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from drtool.errors import OrchestrationError


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = 600,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` and capture its output as text.

    Raises OrchestrationError naming the command when it cannot start, times out, or (with
    `check`) exits non-zero; the error carries the last line of its stderr.
    """
    full_env = dict(os.environ, **env) if env else None
    try:
        done = subprocess.run(
            list(argv), env=full_env, cwd=cwd, timeout=timeout, capture_output=True,
            text=True, input=input_text, check=False,
        )
    except FileNotFoundError as exc:
        raise OrchestrationError(f"{argv[0]}: command not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise OrchestrationError(f"{argv[0]} did not finish within {timeout} s") from exc
    if check and done.returncode != 0:
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or [""])[-1]
        raise OrchestrationError(f"{argv[0]} failed (exit {done.returncode}): {last}")
    return done


def as_user(argv: Sequence[str], user: str | None) -> list[str]:
    """Prefix `argv` so it runs as `user` (when drtool runs as root), else unchanged."""
    if user and os.geteuid() == 0:
        return ["runuser", "-u", user, "--", *argv]
    return list(argv)
