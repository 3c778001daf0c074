"""drtool drill | backup | restore | verify | backups list: the commands that run phases."""

from __future__ import annotations

import click

from drtool.cli.common import env_option, exit_code, json_option, load, print_json
from drtool.drill.engine import Drill
from drtool.drill.phases import TOUCHES_TARGETS
from drtool.drill.plan import build_plan
from drtool.report.console import ConsoleProgress, render_plan, render_summary
from drtool.store.local import LocalStore


def _run(env_name: str, operation: str, as_json: bool, backup_id: str | None = None,
         note: str | None = None) -> int:
    env, adapter = load(env_name, touches_targets=operation in TOUCHES_TARGETS)
    drill = Drill(env, operation, adapter, ConsoleProgress(), backup_id=backup_id, note=note)
    journal = drill.run()
    if as_json:
        print_json(journal.to_dict())
    else:
        render_summary(journal, drill.writer.path)
    code = exit_code(journal)
    if code and journal.failure is not None:
        where = f" at {journal.failure.phase}" if journal.failure.phase else ""
        click.echo(f"drtool: {operation} {journal.status}{where}: {journal.failure.reason}",
                   err=True)
    return code


def check_note(value: str | None) -> str | None:
    """A note is one line of at most 500 characters (it is shown in reports as given)."""
    if value is not None and (len(value) > 500 or "\n" in value or "\r" in value):
        raise click.BadParameter("must be one line of at most 500 characters")
    return value


@click.command()
@env_option
@click.option("--plan", "plan_only", is_flag=True,
              help="Print the ordered plan (phases, hosts, what is destroyed where) and stop.")
@click.option("--note", metavar="TEXT", callback=lambda _c, _p, v: check_note(v),
              help="A line for the journal and reports: why this drill ran (a ticket, a "
                   "change).")
@json_option
def drill(env_name: str, plan_only: bool, note: str | None, as_json: bool) -> int:
    """Run a full drill: preflight, backup, snapshot, disaster, restore, restart, verify,
    cleanup. Prints progress, then a summary (or the journal with --json)."""
    if plan_only:
        env, _adapter = load(env_name, runs_phases=False)
        plan = build_plan(env, "drill")
        if as_json:
            print_json({"env": env.name, "tier": env.tier, "plan": plan})
        else:
            render_plan(env, plan)
        return 0
    return _run(env_name, "drill", as_json, note=note)


@click.command()
@env_option
@json_option
def backup(env_name: str, as_json: bool) -> int:
    """Back up the environment's primaries into its backup store."""
    return _run(env_name, "backup", as_json)


@click.command()
@env_option
@click.option("--backup", "backup_id", required=True, metavar="ID", help="Backup to restore.")
@json_option
def restore(env_name: str, backup_id: str, as_json: bool) -> int:
    """Restore a backup into the restore targets, after checking every file's sha256.
    The targets are snapshotted first and rolled back if the restore fails."""
    return _run(env_name, "restore", as_json, backup_id)


@click.command()
@env_option
@click.option("--backup", "backup_id", required=True, metavar="ID",
              help="Backup whose manifest the targets are judged against.")
@json_option
def verify(env_name: str, backup_id: str, as_json: bool) -> int:
    """Verify what the restore targets hold against a backup's manifest."""
    return _run(env_name, "verify", as_json, backup_id)


@click.group()
def backups() -> None:
    """The backup catalog."""


@backups.command("list")
@env_option
@json_option
def list_backups(env_name: str, as_json: bool) -> int:
    """List the environment's backups, newest first."""
    env, _adapter = load(env_name, runs_phases=False, touches_targets=False)
    found = LocalStore(env.store_root).list()
    if as_json:
        print_json([vars(summary) for summary in found])
        return 0
    if not found:
        click.echo(f"no backups in {env.store_root}")
    for summary in found:
        state = "complete" if summary.complete else "INCOMPLETE (no manifest)"
        size = f"{summary.size:,} bytes" if summary.size is not None else "-"
        click.echo(f"{summary.id}  {summary.consistent_at or '-'}  {size}  "
                   f"{summary.location}  {state}")
    return 0


@click.command()
@env_option
@json_option
def validate(env_name: str, as_json: bool) -> int:
    """Check an environment's inventory and report every problem at once, with the file and
    key. Exit 0 when it can be drilled (or, for a production tier, backed up), 2 otherwise."""
    from drtool import paths  # noqa: PLC0415
    from drtool.adapters.ansible import AnsibleAdapter  # noqa: PLC0415
    from drtool.config import check_environment, find_inventory, render  # noqa: PLC0415

    inventory = find_inventory(env_name)
    described = AnsibleAdapter(paths.content_root(), inventory, paths.runs_dir()).describe()
    settings, problems, refusals = check_environment(env_name, described)
    production = settings["tier"] == "production"
    lines = [render(inventory, p) for p in problems]
    refused = [render(inventory, p) for p in refusals]
    ok = not lines and (production or not refused)
    if as_json:
        print_json({"env": env_name, "inventory": str(inventory), "valid": ok,
                    "tier": settings["tier"], "problems": lines, "drills_refused": refused})
    else:
        for line in lines:
            click.echo(f"problem: {line}")
        for line in refused:
            click.echo(f"drills refused: {line}")
        if ok:
            hosts = sum(len(h) for h in settings["groups"].values())
            what = "can be backed up; drills are refused (tier production)" if production else (
                "can be drilled")
            click.echo(f"{env_name}: {inventory}: {hosts} hosts, {what}")
    return 0 if ok else 2


COMMANDS = (drill, backup, restore, verify, backups, validate)
