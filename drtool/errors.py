"""The one error hierarchy: every error a user can cause carries its exit code.

The CLI catches DrtoolError once, prints its message (on one line; several problems one a
line under a summary) and exits with its code; nothing else in drtool calls sys.exit.
"""

from __future__ import annotations

EXIT_PASSED = 0
EXIT_FAILED = 1  # the drill (or restore, verify) ran and failed a check or an objective
EXIT_USAGE = 2  # bad command line or configuration; a production guard refusal
EXIT_ORCHESTRATION = 3  # a phase could not run: Ansible, a host or a service failed
EXIT_LOCKED = 75  # another operation holds the environment's lock (sysexits' EX_TEMPFAIL)
EXIT_INTERRUPTED = 130  # stopped by SIGINT or SIGTERM; the journal says "aborted"


class DrtoolError(Exception):
    """An error with a one-line message for the user and the exit code it ends with."""

    exit_code = EXIT_ORCHESTRATION

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(DrtoolError):
    """The inventory, an environment or an argument is wrong (exit 2)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.summary = message
        self.problems = problems or []
        if self.problems:
            message = message + ": " + "; ".join(self.problems)
        super().__init__(message)

    def lines(self) -> list[str]:
        """How a terminal shows it: one line, or, with several problems, a one-line summary
        and a problem a line under it (`message` keeps all on one line, for logs)."""
        if len(self.problems) < 2:
            return [self.message]
        return [f"{self.summary} ({len(self.problems)} problems):",
                *(f"  {problem}" for problem in self.problems)]


class CheckFailed(DrtoolError):
    """Something was measured and found wrong: integrity, counts, objectives (exit 1)."""

    exit_code = EXIT_FAILED


class OrchestrationError(DrtoolError):
    """A phase, a service or a host could not do its work (exit 3)."""

    exit_code = EXIT_ORCHESTRATION


class LockedError(DrtoolError):
    """Another drtool operation is running on the environment (exit 75: try again later)."""

    exit_code = EXIT_LOCKED


class StoreError(OrchestrationError):
    """The backup store (or the evidence bucket) could not be reached or refused an
    operation (exit 3); the message names the object or bucket."""
