"""drtool recover: on the day of a real disaster, run what the drills rehearsed.

The same phases a drill runs after its disaster (integrity and restore, restart, verify),
from a stored backup, onto the components' recovery sides: hosts that may be production
tier, and may be the rebuilt source itself. Never unattended: the plan is printed first and
the environment's name must be typed back on a terminal (or given to --confirm); `drtool
schedule` never installs it.

`drtool recover --undo ID` puts a recovery's targets back as its safety snapshot found them
(a wrong backup, a wrong environment): the same confirmation, the rollback playbook, and a
journal of its own (operation `undo-recover`) that names the recovery it undid.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

import click

from drtool import paths
from drtool.cli.common import env_option, json_option, load, not_text, print_json
from drtool.cli.operations import check_note, run_operation
from drtool.core import rollback
from drtool.core.model import RUNNING, Journal
from drtool.core.phases import RECOVER, UNDO_RECOVER
from drtool.drill.journal_writer import load_journals
from drtool.drill.plan import build_plan
from drtool.drill.scope import scope_of
from drtool.errors import ConfigError
from drtool.report.console import render_plan
from drtool.store import choose
from drtool.store.open import open_store
from drtool.util.process import pid_alive


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


def confirm(env_name: str, given: str | None, doing: str = "recover it onto") -> str:
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
    typed = click.prompt(f"Type the environment's name ({env_name}) to {doing} the targets "
                         "above", default="", show_default=False, err=True)
    if typed.strip() != env_name:
        raise ConfigError(f"not confirmed ({typed.strip()!r} is not {env_name}): nothing was "
                          "changed")
    return env_name


def undo_target(env_name: str, recovery_id: str) -> Journal:
    """The journal of the recovery `--undo` names; ConfigError (exit 2, nothing changed)
    when it cannot be undone, saying why."""
    journals = [journal for _path, journal in load_journals(paths.evidence_dir(env_name))]
    # A recovery whose journal says running and whose process is gone was killed: the undo
    # closes it first (holding the environment's lock, where that is sure).
    killed = [j.drill_id for j in journals if j.status == RUNNING and not pid_alive(j.pid)]
    problem = rollback.undo_problem(recovery_id, journals, killed)
    if problem:
        raise ConfigError(f"cannot undo {recovery_id} of {env_name}: {problem}; nothing was "
                          "changed")
    return next(j for j in journals if j.drill_id == recovery_id)


def undo_plan(recovery: Journal) -> dict[str, Any]:
    """What `--undo` does, from the recovery's journal: the targets it restored onto."""
    components = [{"name": c.get("name"), "kind": c.get("kind"), "target": c.get("target")}
                  for c in (recovery.scope or {}).get("components", [])
                  if isinstance(c, dict) and c.get("target")]
    return {"env": recovery.env, "operation": UNDO_RECOVER, "undoes": recovery.drill_id,
            "recovery": {"started_at": recovery.started_at, "status": recovery.status,
                         "operator": recovery.operator, "note": recovery.note,
                         "backup": recovery.backup.id if recovery.backup else None},
            "components": components}


def print_undo_plan(plan: dict[str, Any], to_stderr: bool) -> None:
    said = plan["recovery"]
    by = f" by {said['operator']}" if said.get("operator") else ""
    lines = [f"Plan to undo recovery {plan['undoes']} of {plan['env']} ({said['status']}, "
             f"started {said['started_at']}{by}, from backup {said['backup']}): each target "
             "it restored onto is put back as its safety snapshot found it, then its services "
             "resumed; nothing has been changed."]
    for component in plan["components"]:  # a journal's scope names each target's host
        lines.append(f"   {component['name']} ({component['kind']}) on {component['target']}")
    click.echo("\n".join(lines), err=to_stderr)


@click.command()
@env_option
@click.option("--backup", "backup_spec", metavar="latest-verified|latest|ID",
              help="The backup to recover from: the newest one a passed drill restored (the "
                   "default: latest-verified), the newest complete one, or the one named.")
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
@click.option("--undo", "undo_id", metavar="RECOVERY_ID",
              help="Undo that recovery instead: put its targets back as its safety snapshot "
                   "found them (the newest recovery first).")
@json_option
def recover(env_name: str, backup_spec: str | None, confirmed: str | None, replace_existing: bool,
            operator: str | None, note: str | None, plan_only: bool, undo_id: str | None,
            as_json: bool) -> int:
    """Recover ENV from a backup onto its recovery targets, for a real disaster: integrity,
    restore, restart, verify, as its drills rehearsed them. Prints the plan, then asks for
    the environment's name (or takes --confirm). Its safety snapshot is kept; nothing is
    rolled back unasked; --undo puts it back. Exit 0 recovered (or undone) and verified, 1 a
    check failed, 2 refused or not confirmed (nothing changed), 3 a step could not run."""
    if undo_id is not None:
        if backup_spec is not None or replace_existing:
            raise click.UsageError("--undo puts a recovery's targets back from its own safety "
                                   "snapshot: it takes no --backup or --replace-existing")
        return undo(env_name, undo_id, confirmed, operator, note, plan_only, as_json)
    backup_spec = backup_spec or choose.LATEST_VERIFIED
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


def undo(env_name: str, recovery_id: str, confirmed: str | None, operator: str | None,
         note: str | None, plan_only: bool, as_json: bool) -> int:
    """`drtool recover --undo`: the plan, the confirmation, then the rollback of the
    recovery's targets from its safety snapshot, in a journal of its own."""
    env, _adapter = load(env_name, runs_phases=not plan_only, recovering=True)
    recovery = undo_target(env.name, recovery_id)
    drift = rollback.undo_drift(recovery.scope, scope_of(env, {}))
    if drift:
        raise ConfigError(f"cannot undo {recovery_id} of {env.name}: the recovery targets "
                          f"changed since it ran ({'; '.join(drift)}): its snapshot is of "
                          "the targets it restored onto; nothing was changed")
    plan = undo_plan(recovery)
    if as_json and plan_only:
        print_json(plan)
        return 0
    print_undo_plan(plan, to_stderr=as_json)
    if plan_only:
        return 0
    confirmed = confirm(env.name, confirmed, "put back")
    return run_operation(env_name, UNDO_RECOVER, as_json, note=note, confirmed=confirmed,
                         operator=operator_of(operator), undoes=recovery)
