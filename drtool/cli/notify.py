"""drtool notify test: send a test message to every endpoint an environment configures."""

from __future__ import annotations

import dataclasses

import click

from drtool.cli.common import env_option, json_option, load, print_json
from drtool.errors import EXIT_FAILED, EXIT_PASSED, ConfigError
from drtool.ops import notify as notifying


@click.group()
def notify() -> None:
    """Notifications: webhooks and a healthchecks-style ping, set by drtool_notify."""


@notify.command("test")
@env_option
@json_option
def test(env_name: str, as_json: bool) -> int:
    """Send a test message (marked as such, no drill runs) to every webhook and the
    healthchecks URL of ENV. Exit 0 when all were delivered, 1 when any was not."""
    env, _adapter = load(env_name, runs_phases=False, touches_targets=False)
    if not env.notify.configured:
        raise ConfigError(f"{env_name}: no notification is configured (set drtool_notify in "
                          "its inventory)")
    journal = notifying.trial_journal(env_name)
    sent = notifying.deliver_all(notifying.end_messages(env.notify, journal, "(no journal)"),
                                 env.notify)
    if as_json:
        print_json([dataclasses.asdict(s) for s in sent])
    for record in sent if not as_json else []:
        how = f" ({record.format})" if record.format else ""
        outcome = ("delivered" if record.status == "delivered" else
                   f"not delivered after {record.attempts} attempts: {record.error}")
        click.echo(f"{record.kind}{how} {record.target}: {outcome}")
    return EXIT_PASSED if all(s.status == "delivered" for s in sent) else EXIT_FAILED
