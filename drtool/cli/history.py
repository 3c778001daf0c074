"""drtool history: the journals an environment's drills left."""

from __future__ import annotations

import click

from drtool import paths
from drtool.cli.common import env_option, json_option, print_json
from drtool.config import ENV_NAME
from drtool.drill.journal_writer import load_journals
from drtool.errors import ConfigError
from drtool.report.console import seconds


@click.command()
@env_option
@json_option
def history(env_name: str, as_json: bool) -> int:
    """List every drill, backup, restore and verify run on ENV, oldest first."""
    if not ENV_NAME.match(env_name):
        raise ConfigError(f"not an environment name: {env_name!r}")
    found = load_journals(paths.evidence_dir(env_name))
    if as_json:
        print_json([
            {"drill_id": j.drill_id, "operation": j.operation, "status": j.status,
             "started_at": j.started_at, "ended_at": j.ended_at, "rto_s": j.rto_s,
             "rpo_backup_age_s": j.rpo_backup_age_s, "rpo_measured_s": j.rpo_measured_s,
             "failure": vars(j.failure) if j.failure else None, "journal": str(path)}
            for path, j in found
        ])
        return 0
    if not found:
        click.echo(f"no drills recorded for {env_name}")
    for _path, j in found:
        failure = f"  {j.failure.phase}: {j.failure.reason}" if j.failure else ""
        click.echo(f"{j.drill_id}  {j.operation:<7} {j.status:<7} {j.started_at}  "
                   f"RTO {seconds(j.rto_s)}  RPO {seconds(j.rpo_measured_s)}{failure}")
    return 0


COMMANDS = (history,)
