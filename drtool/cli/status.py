"""drtool status: the newest drill of every environment, whether one is overdue, and how
much data a disaster now would lose (the RPO exposure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from drtool import paths
from drtool.cli.common import FilePath, json_option, print_json
from drtool.config import ENV_NAME, find_inventory
from drtool.core.clock import utc_now
from drtool.core.status import EXCEEDED, NOT_DRILLED, OVERDUE, env_status
from drtool.drill.recovery import record_unrecorded
from drtool.errors import EXIT_FAILED, ConfigError, OrchestrationError
from drtool.ops.exposure import env_exposure
from drtool.report.gather import read_journal
from drtool.report.metrics import write_status_metrics
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
@click.option("--metrics-dir", type=FilePath(file_okay=False, path_type=Path),
              envvar="DRTOOL_METRICS_DIR",
              help="Also write each environment's judgement as Prometheus textfile metrics "
                   "(drtool_status_ENV.prom) into this folder [env: DRTOOL_METRICS_DIR].")
@json_option
def status(env_name: str | None, metrics_dir: Path | None, as_json: bool) -> int:
    """The newest drill of each environment, its verdict and age, and its current RPO
    exposure (now minus the consistency time of its newest backup a passed drill restored).
    Exit 1 when any environment is overdue (no drill passed within drtool_drill_cadence_days)
    or its exposure exceeds its RPO objective, so this command can be a monitoring check
    itself."""
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
        rows = []
        for env in envs:
            links = history.links(env)
            row = env_status(env, [link.record for link, _p in links], _cadence(history, env),
                             now)
            row.update(env_exposure(history, env, now))
            rows.append(row)
    if metrics_dir is not None:
        try:
            for row in rows:
                write_status_metrics(metrics_dir, row)
        except OSError as exc:
            raise OrchestrationError(f"cannot write {exc.filename}: {exc.strerror}") from None
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
        click.echo(f"{row['env']}: {state} ({cadence}); last drill {last}; {passed}; "
                   f"{_exposure_text(row)}")
    failing = any(r["state"] == OVERDUE or r["rpo_state"] == EXCEEDED for r in rows)
    return EXIT_FAILED if failing else 0


def _exposure_text(row: dict[str, Any]) -> str:
    objective = (f"objective {human_seconds(row['rpo_objective_s'])}"
                 if row["rpo_objective_s"] is not None else "no objective")
    if row["rpo_state"] == NOT_DRILLED:
        exposure = "RPO exposure not judged: never drilled"
    elif row["rpo_exposure_s"] is None:
        exposure = "RPO exposure unknown: no backup verified by a passed drill"
    else:
        exposure = (f"RPO exposure {human_seconds(row['rpo_exposure_s'])} (newest verified "
                    f"backup {row['newest_verified_backup']})")
    flag = " EXCEEDED" if row["rpo_state"] == EXCEEDED else ""
    return f"{exposure}, {objective}{flag}"
