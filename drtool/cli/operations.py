"""drtool drill | backup | restore | verify | backups list: the commands that run phases."""

from __future__ import annotations

import click

from drtool.cli.common import env_option, exit_code, json_option, load, print_json
from drtool.drill.engine import Drill
from drtool.report.console import ConsoleProgress, render_summary
from drtool.store.local import LocalStore


def _run(env_name: str, operation: str, as_json: bool, backup_id: str | None = None) -> int:
    env, adapter = load(env_name)
    drill = Drill(env, operation, adapter, ConsoleProgress(), backup_id=backup_id)
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


@click.command()
@env_option
@json_option
def drill(env_name: str, as_json: bool) -> int:
    """Run a full drill: preflight, backup, snapshot, disaster, restore, restart, verify,
    cleanup. Prints progress, then a summary (or the journal with --json)."""
    return _run(env_name, "drill", as_json)


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
    env, _adapter = load(env_name, runs_phases=False)
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


COMMANDS = (drill, backup, restore, verify, backups)
