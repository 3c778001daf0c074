"""drtool history: the recorded drills of an environment, from the chained history."""

from __future__ import annotations

import click

from drtool import paths
from drtool.cli.common import env_option, json_option, print_json
from drtool.config import ENV_NAME, find_inventory
from drtool.drill.recovery import record_unrecorded
from drtool.errors import ConfigError
from drtool.report.console import seconds
from drtool.store.history import History


@click.command()
@env_option
@json_option
def history(env_name: str, as_json: bool) -> int:
    """List every drill, backup, restore and verify run on ENV, oldest first (drills found
    interrupted are recorded as aborted first).

    ENV is known when it has an inventory or recorded runs: the records of an environment
    whose inventory was removed are still listed. Exit 2 for an unknown ENV."""
    if not ENV_NAME.match(env_name):
        raise ConfigError(f"not an environment name: {env_name!r}")
    with History(paths.history_db()) as recorded:
        record_unrecorded(env_name, recorded)
        if env_name not in recorded.envs():
            find_inventory(env_name)  # ConfigError (exit 2) for an unknown environment
        anchors = recorded.anchors(env_name)
        rows = [dict(link.record, seq=link.seq, hash=link.hash, journal=str(path),
                     anchor=anchors.get(link.drill_id))
                for link, path in recorded.links(env_name)]
    if as_json:
        print_json(rows)
        return 0
    if not rows:
        click.echo(f"no drills recorded for {env_name}")
    for row in rows:
        failure = row.get("failure") or {}
        why = f"  {failure.get('phase')}: {failure.get('reason')}" if failure else ""
        click.echo(f"{row['drill_id']}  {row['operation']:<7} {row['status']:<7} "
                   f"{row['started_at']}  RTO {seconds(row['rto_s'])}  "
                   f"RPO {seconds(row['rpo_measured_s'])}{why}")
    return 0
