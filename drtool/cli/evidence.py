"""drtool evidence verify: recompute the history's hash chain and its journals' hashes."""

from __future__ import annotations

import click

from drtool import paths
from drtool.cli.common import json_option, print_json
from drtool.config import ENV_NAME
from drtool.drill.recovery import record_unrecorded
from drtool.errors import EXIT_FAILED, ConfigError
from drtool.store.history import History


@click.group()
def evidence() -> None:
    """The tamper-evident drill history."""


@evidence.command("verify")
@click.option("--env", "env_name", metavar="ENV", help="Only this environment's records.")
@json_option
def verify_chain(env_name: str | None, as_json: bool) -> int:
    """Check every record's hash and its journal's sha256; name the first record that does
    not match. Exit 0 when every chain holds, 1 otherwise."""
    if env_name is not None and not ENV_NAME.match(env_name):
        raise ConfigError(f"not an environment name: {env_name!r}")
    results = []
    with History(paths.history_db()) as history:
        envs = [env_name] if env_name else history.envs()
        for env in envs:
            record_unrecorded(env, history)  # a killed drill is recorded before judging
            checked, broken = history.verify(env)
            results.append({"env": env, "records": checked, "intact": broken is None,
                            "first_break": broken.describe() if broken else None})
    if as_json:
        print_json(results)
    else:
        if not results:
            click.echo("no drills recorded yet")
        for result in results:
            state = "chain intact" if result["intact"] else f"BROKEN at {result['first_break']}"
            click.echo(f"{result['env']}: {result['records']} records, {state}")
    return EXIT_FAILED if any(not r["intact"] for r in results) else 0
