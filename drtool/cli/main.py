"""The `drtool` command. Only entry_point() calls sys.exit; everything returns an int."""

from __future__ import annotations

import os
import sys

import click

from drtool import __version__
from drtool.cli import (
    backups,
    evidence,
    history,
    lab,
    notify,
    operations,
    report,
    sandbox,
    schedule,
    status,
)
from drtool.errors import EXIT_INTERRUPTED, EXIT_ORCHESTRATION, EXIT_USAGE, DrtoolError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="drtool")
def cli() -> None:
    """Disaster-recovery drills: back up, destroy, restore, verify, and prove it.

    Exit codes: 0 passed, 1 a drill/restore/verify ran and failed a check or objective,
    2 usage or configuration error, 3 a phase could not run, 75 another operation holds the
    environment's lock, 130 interrupted.
    """


for command in (*operations.COMMANDS, *history.COMMANDS, *report.COMMANDS, *status.COMMANDS,
                *schedule.COMMANDS, *notify.COMMANDS, *backups.COMMANDS, evidence.evidence,
                sandbox.sandbox, lab.lab):
    cli.add_command(command)


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
        click.echo(f"drtool: error: {exc.message}", err=True)
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
