"""What the commands share: loading an environment, exit codes, JSON output."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import click

from drtool import paths
from drtool.adapters.ansible import AnsibleAdapter
from drtool.config import Environment, environment_from_description, find_inventory
from drtool.core.model import ABORTED, PASSED, Journal
from drtool.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_ORCHESTRATION,
    EXIT_PASSED,
    EXIT_USAGE,
    OrchestrationError,
)


def not_text(value: str, allow: str = "") -> str | None:
    """What makes `value` unfit to be shown on one line or written into a journal, report or
    JUnit file (None when nothing): bytes that are not UTF-8 (Python keeps them as lone
    surrogates), or a control character (other than those in `allow`)."""
    if any(unicodedata.category(c) == "Cs" for c in value):
        return "is not valid UTF-8"
    bad = sorted({c for c in value if c not in allow
                  and unicodedata.category(c) in ("Cc", "Zl", "Zp")})
    if bad:
        return f"holds control characters ({', '.join(ascii(c) for c in bad)})"
    return None


def shown(value: str) -> str:
    """`value` as one printable line: undecodable bytes as \\xNN, control characters
    escaped."""
    raw = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(ascii(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
                   for c in raw)


class FilePath(click.Path):
    """A click.Path whose name is UTF-8 text without control characters: drtool prints the
    names it is given and writes them into journals and reports."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            why = not_text(value)
            if why:
                self.fail(f"the file name '{shown(value)}' {why}", param, ctx)
        return super().convert(value, param, ctx)


env_option = click.option("--env", "env_name", required=True, metavar="ENV",
                          help="Environment: an inventory under inventories/ENV.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON on stdout instead of a table.")


def load(env_name: str, runs_phases: bool = True,
         touches_targets: bool = True) -> tuple[Environment, AnsibleAdapter]:
    """Find, read and validate an environment; ConfigError (exit 2) lists every problem.

    With `runs_phases`, an environment that lives in the sandbox must also have every
    sandbox service running (OrchestrationError, exit 3, otherwise).
    """
    inventory = find_inventory(env_name)
    adapter = AnsibleAdapter(paths.content_root(), inventory, paths.runs_dir())
    env = environment_from_description(env_name, inventory, adapter.describe(), touches_targets)
    if runs_phases and env.requires_sandbox:
        from drtool.sandbox import manage  # noqa: PLC0415 - only the sandbox needs it

        box = manage.current()
        # The application and the target Redis are what a drill stops and starts: a drill
        # killed half-way leaves them stopped, and the next operation's rollback starts them.
        stopped = [name for name, _port, pid in box.processes()
                   if pid is None and name not in manage.DRILL_STOPS] if box else []
        if box is None or stopped:
            what = f"not running ({', '.join(stopped)} stopped)" if box else "not set up"
            raise OrchestrationError(f"the sandbox is {what}: start it with `drtool sandbox up`")
    return env, adapter


def exit_code(journal: Journal) -> int:
    """0 passed; 130 aborted; 2 when the production guard refused at preflight (a target is
    a source under another name); 3 when a phase could not run (or preflight found the hosts
    not ready, a phase went over its time limit, or the journal could not be written); 1
    when a check failed."""
    if journal.status == PASSED:
        return EXIT_PASSED
    if journal.status == ABORTED:
        return EXIT_INTERRUPTED
    if journal.failure is not None and journal.failure.kind == "guard":
        return EXIT_USAGE
    if journal.failure is not None and journal.failure.kind == "locked":
        return EXIT_LOCKED  # a target was being drilled under another name: try again later
    if journal.failure is not None and journal.failure.kind in ("orchestration", "preflight",
                                                                 "evidence", "timeout"):
        return EXIT_ORCHESTRATION
    return EXIT_FAILED


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
