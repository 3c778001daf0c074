"""drtool recover: on the day of a real disaster, run what the drills rehearsed.

The same phases a drill runs after its disaster (integrity and restore, restart, verify),
from a stored backup, onto the components' recovery sides: hosts that may be production
tier, and may be the rebuilt source itself. Never unattended: the plan is printed first and
the environment's name must be typed back on a terminal (or given to --confirm); `drtool
schedule` never installs it.
"""

from __future__ import annotations

import getpass
import os
import sys

import click

from drtool.cli.common import env_option, json_option, load, not_text, print_json
from drtool.cli.operations import check_note, run_operation
from drtool.core.phases import RECOVER
from drtool.drill.plan import build_plan
from drtool.errors import ConfigError
from drtool.report.console import render_plan
from drtool.store import choose
from drtool.store.open import open_store


def check_operator(value: str | None) -> str | None:
    """--operator: one line of at most 100 characters; click.BadParameter otherwise."""
    if value is None:
        return None
    why = not_text(value)
    if why or not value.strip() or len(value) > 100:
        raise click.BadParameter("must be one line of 1 to 100 characters"
                                 + (f": it {why}" if why else ""))
    return value.strip()


def operator_of(given: str | None) -> str:
    """Who runs the recovery: --operator, else the user sudo was run by, else this user."""
    if given:
        return given
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):  # no name for this uid
        return f"uid {os.getuid()}"


def confirm(env_name: str, given: str | None) -> str:
    """The environment's name as the operator confirmed it: --confirm, else typed back on
    a terminal. ConfigError (exit 2, nothing changed) when neither matches."""
    if given is not None:
        if given != env_name:
            raise ConfigError(f"--confirm names {given!r}, not the environment being "
                              f"recovered ({env_name}): nothing was changed")
        return given
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise ConfigError(f"a recovery is confirmed by typing the environment's name on a "
                          f"terminal, or with --confirm {env_name}: nothing was changed")
    typed = click.prompt(f"Type the environment's name ({env_name}) to recover it onto the "
                         "targets above", default="", show_default=False, err=True)
    if typed.strip() != env_name:
        raise ConfigError(f"not confirmed ({typed.strip()!r} is not {env_name}): nothing was "
                          "changed")
    return env_name


@click.command()
@env_option
@click.option("--backup", "backup_spec", default=choose.LATEST_VERIFIED, show_default=True,
              metavar="latest-verified|latest|ID",
              help="The backup to recover from: the newest one a passed drill restored, the "
                   "newest complete one, or the one named.")
@click.option("--confirm", "confirmed", metavar="ENV",
              help="The environment's name, confirming the recovery when no terminal can be "
                   "asked (a runbook's script).")
@click.option("--replace-existing", is_flag=True,
              help="Replace what a recovery target holds even when it is live data (a "
                   "database with rows, a Redis with keys); refused otherwise, saying what "
                   "was found.")
@click.option("--operator", callback=lambda _c, _p, v: check_operator(v), metavar="NAME",
              help="Who runs the recovery, for the journal [default: the user].")
@click.option("--note", metavar="TEXT", callback=lambda _c, _p, v: check_note(v),
              help="Why: the incident, its ticket.")
@click.option("--plan", "plan_only", is_flag=True,
              help="Print what would be restored where, from which backup, and stop.")
@json_option
def recover(env_name: str, backup_spec: str, confirmed: str | None, replace_existing: bool,
            operator: str | None, note: str | None, plan_only: bool, as_json: bool) -> int:
    """Recover ENV from a backup onto its recovery targets, for a real disaster: integrity,
    restore, restart, verify, as its drills rehearsed them. Prints the plan, then asks for
    the environment's name (or takes --confirm). Its safety snapshot is kept; nothing is
    rolled back unasked. Exit 0 recovered and verified, 1 a check failed, 2 refused or not
    confirmed (nothing changed), 3 a step could not run."""
    env, _adapter = load(env_name, runs_phases=not plan_only, recovering=True)
    backup_id, chosen = choose.choose(open_store(env).catalog(), backup_spec, None, env.name)
    plan = build_plan(env, RECOVER)
    if as_json and plan_only:
        print_json({"env": env.name, "operation": RECOVER, "backup": backup_id,
                    "chosen": chosen, "unrecovered": list(env.unrecovered), "plan": plan})
        return 0
    render_plan(env, plan, operation=RECOVER, backup=f"{backup_id} ({chosen})",
                to_stderr=as_json)
    if plan_only:
        return 0
    confirmed = confirm(env.name, confirmed)
    return run_operation(env_name, RECOVER, as_json, backup_id, note=note,
                         confirmed=confirmed, replace_existing=replace_existing,
                         operator=operator_of(operator), chosen_as=chosen)
