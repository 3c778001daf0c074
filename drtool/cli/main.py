"""The `drtool` command. Only entry_point() calls sys.exit; everything returns an int."""

from __future__ import annotations

import importlib
import os
import sys

import click

from drtool.errors import (
    EXIT_INTERRUPTED,
    EXIT_ORCHESTRATION,
    EXIT_USAGE,
    ConfigError,
    DrtoolError,
)

# Each command and where it is defined (drtool.cli.MODULE:ATTRIBUTE), imported only when it
# runs (or `--help` lists them all): `drtool history` does not pay for Ansible, paramiko or
# the sandbox, and every drtool process starts about half a second sooner.
COMMANDS = {
    "drill": "operations:drill", "backup": "operations:backup",
    "restore": "operations:restore", "verify": "operations:verify",
    "rollback": "operations:rollback", "validate": "operations:validate",
    "recover": "recover:recover", "runbook": "runbook:runbook_command",
    "history": "history:history", "report": "report:report", "status": "status:status",
    "schedule": "schedule:schedule", "notify": "notify:notify", "backups": "backups:backups",
    "evidence": "evidence:evidence", "sandbox": "sandbox:sandbox", "lab": "lab:lab",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name, on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attribute = where.split(":")
        command: click.Command = getattr(importlib.import_module(f"drtool.cli.{module}"),
                                         attribute)
        return command


def show_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--version: drtool's version, then each tool's it runs with on this controller, one
    `name version` a line (what a bug report needs; a drill's journal records drtool's,
    Python's and Ansible's, and the servers' it met, in tool_versions)."""
    if not value or ctx.resilient_parsing:
        return
    from drtool.drill.versions import installed_versions  # noqa: PLC0415 - only when asked

    versions = installed_versions()
    click.echo(f"drtool {versions.pop('drtool')}")
    for name, version in versions.items():
        click.echo(f"  {name} {version}")
    ctx.exit(0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=show_versions, help="Show drtool's version and its tools', and exit.")
def cli() -> None:
    """Disaster-recovery drills: back up, destroy, restore, verify, and prove it.

    Exit codes: 0 passed, 1 a drill/restore/verify ran and failed a check or objective,
    2 usage or configuration error, 3 a phase could not run, 75 another operation holds the
    environment's lock, 130 interrupted.
    """


def main(argv: list[str] | None = None) -> int:
    """Run drtool with `argv`; return the exit code. One line on stderr for any error."""
    try:
        result = cli.main(args=argv, prog_name="drtool", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        return EXIT_USAGE
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"drtool: error: {exc.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.exceptions.Abort:
        return EXIT_INTERRUPTED
    except DrtoolError as exc:
        lines = exc.lines() if isinstance(exc, ConfigError) else [exc.message]
        click.echo("\n".join([f"drtool: error: {lines[0]}", *lines[1:]]), err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug, not the user's input: one line, traceback on request
        if os.environ.get("DRTOOL_DEBUG"):
            raise
        click.echo(f"drtool: internal error: {type(exc).__name__}: {exc} "
                   "(set DRTOOL_DEBUG=1 for the traceback)", err=True)
        return EXIT_ORCHESTRATION
    return result if isinstance(result, int) else 0


def entry_point() -> None:
    sys.exit(main())
