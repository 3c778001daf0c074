"""drtool schedule install | list | remove: drills from cron (or systemd timers)."""

from __future__ import annotations

from pathlib import Path

import click

from drtool.cli.common import env_option, json_option, print_json
from drtool.config import find_inventory
from drtool.ops import schedule as sched


@click.group()
def schedule() -> None:
    """Run drills on a schedule, from the user's crontab or a systemd timer."""


@schedule.command("install")
@env_option
@click.option("--cron", "expression", required=True, metavar="EXPR",
              help="Five-field cron expression, such as '0 5 * * 1' (Mondays 05:00).")
@click.option("--metrics-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Passed on to every drill: where to write Prometheus metrics.")
@click.option("--systemd", "use_systemd", is_flag=True,
              help="Write a systemd service and timer pair instead of a crontab entry.")
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where --systemd writes the units (default: /etc/systemd/system for root, "
                   "else ~/.config/systemd/user).")
@json_option
def install(env_name: str, expression: str, metrics_dir: Path | None, use_systemd: bool,
            unit_dir: Path | None, as_json: bool) -> int:
    """Schedule drills of ENV. Replaces the environment's earlier entry, if any."""
    find_inventory(env_name)  # an unknown environment is refused before anything is written
    extra = ["--metrics-dir", str(metrics_dir.resolve())] if metrics_dir else []
    if use_systemd:
        folder = unit_dir or sched.default_unit_dir()
        units = sched.systemd_units(env_name, expression, folder, extra)
        if as_json:
            print_json({"env": env_name, "units": [str(u) for u in units],
                        "env_file": str(sched.env_file(env_name)),
                        "on_calendar": sched.on_calendar(expression)})
        else:
            for unit in units:
                click.echo(str(unit))
            scope = "" if folder == Path("/etc/systemd/system") else " --user"
            click.echo(f"enable it with: systemctl{scope} daemon-reload && "
                       f"systemctl{scope} enable --now {units[1].name}")
        return 0
    if unit_dir is not None:
        raise click.UsageError("--unit-dir goes with --systemd")
    entry = sched.install(env_name, expression, extra)
    if as_json:
        print_json(vars(entry))
    else:
        click.echo(f"{env_name}: drills at '{entry.schedule}' from the crontab; log in "
                   f"{sched.log_file(env_name)}; variables in {sched.env_file(env_name)} "
                   "(mode 0600)")
    return 0


@schedule.command("list")
@json_option
def list_entries(as_json: bool) -> int:
    """The drill schedules in the user's crontab."""
    found = sched.entries()
    if as_json:
        print_json([vars(e) for e in found])
    elif not found:
        click.echo("no drill is scheduled in the crontab")
    for entry in found if not as_json else []:
        state = "" if entry.enabled else " (disabled)"
        click.echo(f"{entry.env}: {entry.schedule}{state}")
    return 0


@schedule.command("remove")
@env_option
def remove(env_name: str) -> int:
    """Remove ENV's drill schedule from the crontab; the rest of it is left as it was.
    Exit 2 when ENV has neither an inventory nor a schedule (an unknown environment)."""
    removed = sched.remove(env_name)
    if not removed:
        find_inventory(env_name)  # ConfigError (exit 2) for an unknown environment
    click.echo(f"{env_name}: removed {removed} crontab entr{'y' if removed == 1 else 'ies'}")
    return 0


COMMANDS = (schedule,)
