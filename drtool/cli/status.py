"""drtool status: the newest drill of every environment, and whether one is overdue."""

from __future__ import annotations

import click

from drtool import paths
from drtool.cli.common import json_option, print_json
from drtool.config import ENV_NAME, find_inventory
from drtool.core.clock import utc_now
from drtool.core.status import OVERDUE, env_status
from drtool.drill.recovery import record_unrecorded
from drtool.errors import EXIT_FAILED, ConfigError
from drtool.report.gather import read_journal
from drtool.report.model import human_seconds
from drtool.store.history import History


def _cadence(history: History, env: str) -> float | None:
    """The cadence the newest journal with a scope recorded (its inventory's, then)."""
    for _link, path in reversed(history.links(env)):
        scope = (read_journal(path) or {}).get("scope")
        if isinstance(scope, dict):
            value = scope.get("cadence_days")
            return float(value) if value else None
    return None


@click.command()
@click.option("--env", "env_name", metavar="ENV", help="Only this environment.")
@json_option
def status(env_name: str | None, as_json: bool) -> int:
    """The newest drill of each environment, its verdict and age. Exit 1 when any
    environment is overdue: no drill passed within its cadence (drtool_drill_cadence_days),
    so this command can be a monitoring check itself."""
    now = utc_now()
    with History(paths.history_db()) as history:
        if env_name is not None:
            if not ENV_NAME.match(env_name):
                raise ConfigError(f"not an environment name: {env_name!r}")
            record_unrecorded(env_name, history)
            if env_name not in history.envs():
                find_inventory(env_name)
            envs = [env_name]
        else:
            envs = history.envs()
            for env in envs:
                record_unrecorded(env, history)
        rows = [env_status(env, [link.record for link, _p in history.links(env)],
                           _cadence(history, env), now) for env in envs]
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("no drills recorded yet")
    for row in rows if not as_json else []:
        last = (f"{row['last_drill']} {row['last_status']}, {human_seconds(row['last_age_s'])} "
                "ago" if row["last_drill"] else "never drilled")
        cadence = f"every {row['cadence_days']:g} d" if row["cadence_days"] else "no cadence"
        state = row["state"].upper() if row["state"] == OVERDUE else row["state"]
        passed = (f"last pass {human_seconds(row['last_passed_age_s'])} ago"
                  if row["last_passed_drill"] else "never passed")
        click.echo(f"{row['env']}: {state} ({cadence}); last drill {last}; {passed}")
    return EXIT_FAILED if any(r["state"] == OVERDUE for r in rows) else 0


COMMANDS = (status,)
