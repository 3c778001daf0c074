"""What the commands share: loading an environment, exit codes, JSON output."""

from __future__ import annotations

import json
from typing import Any

import click

from drtool import paths
from drtool.adapters.ansible import AnsibleAdapter
from drtool.config import Environment, environment_from_description, find_inventory
from drtool.core.model import ABORTED, PASSED, Journal
from drtool.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_ORCHESTRATION,
    EXIT_PASSED,
    EXIT_USAGE,
    OrchestrationError,
)

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
    not ready); 1 when a check failed."""
    if journal.status == PASSED:
        return EXIT_PASSED
    if journal.status == ABORTED:
        return EXIT_INTERRUPTED
    if journal.failure is not None and journal.failure.kind == "guard":
        return EXIT_USAGE
    if journal.failure is not None and journal.failure.kind in ("orchestration", "preflight"):
        return EXIT_ORCHESTRATION
    return EXIT_FAILED


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
