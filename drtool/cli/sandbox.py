"""drtool sandbox up | down | status: the embedded local environment."""

from __future__ import annotations

import importlib.util

import click

from drtool.cli.common import json_option, print_json
from drtool.errors import ConfigError
from drtool.sandbox import manage


@click.group()
def sandbox() -> None:
    """The embedded sandbox: PostgreSQL, Redis and an app on this machine."""


def _rows(box: manage.Sandbox) -> list[dict[str, object]]:
    return [{"service": name, "port": port, "pid": pid, "running": pid is not None}
            for name, port, pid in box.processes()]


def _show(box: manage.Sandbox) -> None:
    for row in _rows(box):
        state = f"running (pid {row['pid']})" if row["running"] else "stopped"
        click.echo(f"{row['service']:<14} 127.0.0.1:{row['port']:<6} {state}")
    click.echo(f"state: {box.layout.root}")
    if box.layout.postgres_root.parent != box.layout.root:
        click.echo(f"PostgreSQL clusters: {box.layout.postgres_root} (the postgres user "
                   "cannot enter DRTOOL_HOME)")


@sandbox.command()
@json_option
def up(as_json: bool) -> int:
    """Create, seed and start the sandbox; installs missing packages as root. Idempotent."""
    if importlib.util.find_spec("moto") is None:
        raise ConfigError("the sandbox needs drtool's sandbox extra (its S3 server): "
                          "pip install 'drtool[sandbox]'")
    box = manage.up()
    if box.cleared:
        click.echo(f"drtool: removed the PostgreSQL clusters at {box.cleared}: an earlier "
                   "sandbox at this path left them when its state was deleted, and their "
                   "password went with it", err=True)
    if as_json:
        print_json(_rows(box))
    else:
        _show(box)
    return 0


@sandbox.command()
@click.option("--purge", is_flag=True, help="Also delete the sandbox's data and secrets.")
def down(purge: bool) -> int:
    """Stop every sandbox process by its PID."""
    stopped = manage.down(purge)
    click.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}"
               + ("; sandbox state deleted" if purge else ""))
    return 0


@sandbox.command()
@json_option
def status(as_json: bool) -> int:
    """Show the sandbox's services. Exit 0 when all run, 1 otherwise."""
    box = manage.current()
    if box is None:
        if as_json:
            print_json([])
        else:
            click.echo("the sandbox is not set up: run `drtool sandbox up`")
        return 1
    rows = _rows(box)
    if as_json:
        print_json(rows)
    else:
        _show(box)
    return 0 if all(row["running"] for row in rows) else 1
