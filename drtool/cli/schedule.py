"""drtool schedule install | list | remove: drills and backups from cron (or systemd
timers)."""

from __future__ import annotations

from pathlib import Path

import click

from drtool.cli.common import env_option, json_option, print_json
from drtool.config import find_inventory, given_inventory
from drtool.ops import schedule as sched
from drtool.store import choose


@click.group()
def schedule() -> None:
    """Run drills and backups on a schedule, from the user's crontab or systemd timers."""


@schedule.command("install")
@env_option
@click.option("--drill-cron", "drill_cron", metavar="EXPR",
              help="Five-field cron expression for drills, such as '0 5 * * 1' (Mondays "
                   "05:00).")
@click.option("--cron", "cron", metavar="EXPR", help="The same as --drill-cron.")
@click.option("--backup-cron", "backup_cron", metavar="EXPR",
              help="Cron expression for backups (`drtool backup`), such as '0 * * * *'.")
@click.option("--verify-cron", "verify_cron", metavar="EXPR",
              help="Cron expression for checks of every backup (`drtool backups verify`), "
                   "such as '30 3 * * *'.")
@click.option("--drill-backup", type=click.Choice([choose.FRESH, *choose.CHOICES]),
              help="What a scheduled drill restores: a fresh backup of its own, or one the "
                   "store holds (`drill --backup`). Default: latest when ENV's backups are "
                   "scheduled (--backup-cron, now or before), else fresh.")
@click.option("--metrics-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Passed on to every drill: where to write Prometheus metrics.")
@click.option("--systemd", "use_systemd", is_flag=True,
              help="Write a systemd service and timer pair instead of a crontab entry.")
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where --systemd writes the units (default: /etc/systemd/system for root, "
                   "else ~/.config/systemd/user).")
@json_option
def install(env_name: str, drill_cron: str | None, cron: str | None, backup_cron: str | None,
            verify_cron: str | None, drill_backup: str | None, metrics_dir: Path | None,
            use_systemd: bool, unit_dir: Path | None, as_json: bool) -> int:
    """Schedule drills of ENV, backups of ENV, checks of its backups, or any of them.
    Replaces the environment's earlier
    entry of each job installed, if any."""
    if cron is not None and drill_cron is not None:
        raise click.UsageError("--cron and --drill-cron are the same option: give one")
    drill_cron = drill_cron if drill_cron is not None else cron
    if drill_cron is None and backup_cron is None and verify_cron is None:
        raise click.UsageError("give --drill-cron (or --cron), --backup-cron, --verify-cron, "
                               "or several")
    if drill_backup and drill_cron is None:
        raise click.UsageError("--drill-backup goes with --drill-cron")
    if unit_dir is not None and not use_systemd:
        raise click.UsageError("--unit-dir goes with --systemd")
    for expression in (drill_cron, backup_cron, verify_cron):  # all checked, then written
        if expression is not None:
            sched.check_cron(expression)
            if use_systemd:
                sched.on_calendar(expression)
    find_inventory(env_name)  # an unknown environment is refused before anything is written
    # An inventory given by path is given to every job the same way.
    given = given_inventory(env_name)
    inventory = [arg for source in (given.sources if given else ())
                 for arg in ("--inventory", str(source))]
    metrics = ["--metrics-dir", str(metrics_dir.resolve())] if metrics_dir else []
    folder = unit_dir or sched.default_unit_dir()
    backups_scheduled = backup_cron is not None or sched.has_backup_schedule(
        env_name, folder if use_systemd else None)
    picked = drill_backup or (choose.LATEST if backups_scheduled else choose.FRESH)
    # A job that starts while the other runs (an hourly backup, a weekly drill) waits.
    wait = ["--lock-wait", str(sched.LOCK_WAIT_S)]
    jobs = [(job, expression, inventory + extra) for job, expression, extra in (
        ("backup", backup_cron, wait),
        ("verify-backups", verify_cron, wait),
        ("drill", drill_cron,
         wait + metrics + ([] if picked == choose.FRESH else ["--backup", picked])))
        if expression is not None]
    if use_systemd:
        installed = [(job, sched.systemd_units(env_name, expression, folder, extra, job),
                      expression) for job, expression, extra in jobs]
        if as_json:
            print_json([{"env": env_name, "job": job, "units": [str(u) for u in units],
                         "env_file": str(sched.env_file(env_name)),
                         "on_calendar": sched.on_calendar(expression)}
                        for job, units, expression in installed])
        else:
            scope = "" if folder == Path("/etc/systemd/system") else " --user"
            for _job, units, _expression in installed:
                for unit in units:
                    click.echo(str(unit))
            timers = " ".join(units[1].name for _job, units, _e in installed)
            click.echo(f"enable with: systemctl{scope} daemon-reload && "
                       f"systemctl{scope} enable --now {timers}")
        return 0
    entries = [sched.install(env_name, expression, extra, job)
               for job, expression, extra in jobs]
    if as_json:
        print_json([vars(e) for e in entries])
    else:
        for entry in entries:
            what = {"backup": "backups", "verify-backups": "checks of every backup"}.get(
                entry.job) or ("drills" if picked == choose.FRESH
                               else f"drills of the {picked} backup")
            click.echo(f"{env_name}: {what} at '{entry.schedule}' from the crontab; log in "
                       f"{sched.log_file(env_name, entry.job)}")
        click.echo(f"variables in {sched.env_file(env_name)} (mode 0600)")
    return 0


@schedule.command("list")
@json_option
def list_entries(as_json: bool) -> int:
    """The drill schedules in the user's crontab."""
    found = sched.entries()
    if as_json:
        print_json([vars(e) for e in found])
    elif not found:
        click.echo("no drill or backup is scheduled in the crontab")
    for entry in found if not as_json else []:
        state = "" if entry.enabled else " (disabled)"
        click.echo(f"{entry.env}: {entry.job} {entry.schedule}{state}")
    return 0


@schedule.command("remove")
@env_option
def remove(env_name: str) -> int:
    """Remove ENV's drill and backup schedules from the crontab; the rest of it is left as
    it was.
    Exit 2 when ENV has neither an inventory nor a schedule (an unknown environment)."""
    removed = sched.remove(env_name)
    if not removed:
        find_inventory(env_name)  # ConfigError (exit 2) for an unknown environment
    click.echo(f"{env_name}: removed {removed} crontab entr{'y' if removed == 1 else 'ies'}")
    return 0
