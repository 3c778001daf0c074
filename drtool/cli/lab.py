"""drtool lab up | down | status: real SSH hosts in network namespaces."""

from __future__ import annotations

import click

from drtool.cli.common import json_option, print_json
from drtool.lab import layout, manage


@click.group()
def lab() -> None:
    """A lab of SSH hosts in network namespaces (root only): `--env lab` drills over SSH."""


def _show(rows: list[dict[str, object]]) -> None:
    for row in rows:
        sshd = f"sshd {row['sshd_pid']}" if row["sshd_pid"] else "sshd stopped"
        service = f"service {row['service_pid']}" if row["service_pid"] else "service stopped"
        part = f"{row['kind']} {row['component']} {row['side']}"
        click.echo(f"{row['host']:<18} {row['address']:<14} {part:<21} {sshd:<12} {service}")


@lab.command()
@json_option
def up(as_json: bool) -> int:
    """Create the namespaces, start sshd and the services, write inventories/lab."""
    box = manage.up()
    rows = box.status()
    if as_json:
        print_json(rows)
    else:
        _show(rows)
        click.echo("inventory: --env lab")
    return 0


@lab.command()
@click.option("--purge", is_flag=True, help="Also delete the lab's data, keys and inventory.")
def down(purge: bool) -> int:
    """Stop every lab process by PID and delete its namespaces and links."""
    stopped = manage.down(purge)
    click.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}"
               + ("; lab state deleted" if purge else ""))
    return 0


@lab.command()
@json_option
def status(as_json: bool) -> int:
    """Show the lab's hosts. Exit 0 when every sshd and service runs, 1 otherwise."""
    box = layout.current()
    rows = box.status() if box else []
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("the lab is not set up: run `drtool lab up`")
    else:
        _show(rows)
    return 0 if rows and all(r["sshd_pid"] and r["service_pid"] for r in rows) else 1
