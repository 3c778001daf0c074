"""Prometheus textfile-collector metrics of an environment's newest drill.

Written with prometheus_client's own textfile writer, which replaces the file atomically, so
node_exporter never reads half a file. One file per environment: drtool_<env>.prom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

import drtool
from drtool.core.clock import parse_iso
from drtool.core.model import ABORTED, FAILED, PASSED, Journal

STATUSES = (PASSED, FAILED, ABORTED)


def metrics_path(folder: Path, env: str) -> Path:
    return folder / f"drtool_{env}.prom"


def write_metrics(folder: Path, journal: Journal, last_success_at: str | None,
                  verified_at: str | None = None) -> Path:
    """Write the metrics of `journal` (a drill that just ended); `last_success_at` is the end
    of the newest passed drill of its environment, this one included, if any;
    `verified_at` the consistency time of its newest verified backup (an alert on
    `time() - drtool_drill_newest_verified_backup_timestamp_seconds >
    drtool_drill_rpo_objective_seconds` is the current RPO exposure exceeded)."""
    registry = CollectorRegistry()
    env = journal.env

    def gauge(name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(f"drtool_drill_{name}", doc, ["env", *labels], registry=registry)

    def stamp(text: str | None) -> float | None:
        moment = parse_iso(text)
        return moment.timestamp() if moment else None

    ended = stamp(journal.ended_at) or stamp(journal.started_at)
    if ended is not None:
        gauge("last_run_timestamp_seconds", "When the newest drill ended (Unix time).").labels(
            env).set(ended)
    success = stamp(last_success_at)
    if success is not None:
        gauge("last_success_timestamp_seconds",
              "When the newest passed drill ended (Unix time).").labels(env).set(success)
    verified = stamp(verified_at)
    if verified is not None:
        gauge("newest_verified_backup_timestamp_seconds",
              "When the newest backup a passed drill restored was consistent (Unix time)."
              ).labels(env).set(verified)
    status = gauge("status", "1 for the newest drill's status, 0 for the others.", "status")
    for name in STATUSES:
        status.labels(env, name).set(1 if journal.status == name else 0)
    gauge("passed", "1 when the newest drill passed, else 0.").labels(env).set(
        1 if journal.status == PASSED else 0)
    started = stamp(journal.started_at)
    if started is not None and ended is not None:
        gauge("duration_seconds", "Wall time of the newest drill.").labels(env).set(
            ended - started)
    for name, value, doc in (
        ("rto_seconds", journal.rto_s, "Recovery time measured by the newest drill."),
        ("rpo_measured_seconds", journal.rpo_measured_s,
         "Data loss measured from the restored data by the newest drill."),
        ("rpo_backup_age_seconds", journal.rpo_backup_age_s,
         "Age of the backup when the newest drill declared its disaster."),
    ):
        if value is not None:  # not measured: no sample, rather than a misleading 0
            gauge(name, doc).labels(env).set(value)
    if journal.objectives is not None:
        gauge("rto_objective_seconds", "The environment's recovery time objective.").labels(
            env).set(journal.objectives.rto_s)
        gauge("rpo_objective_seconds", "The environment's recovery point objective.").labels(
            env).set(journal.objectives.rpo_s)
    phases = gauge("phase_duration_seconds", "Duration of each phase of the newest drill.",
                   "phase")
    for phase in journal.phases:
        if phase.duration_s is not None:
            phases.labels(env, phase.name).set(phase.duration_s)
    checks = gauge("checks", "Checks of the newest drill, by result.", "result")
    checks.labels(env, "passed").set(sum(1 for c in journal.checks if c.passed))
    checks.labels(env, "failed").set(sum(1 for c in journal.checks if not c.passed))
    gauge("info", "The newest drill's id and the drtool version that ran it.", "drill_id",
          "version").labels(env, journal.drill_id, drtool.__version__).set(1)
    folder.mkdir(parents=True, exist_ok=True)
    path = metrics_path(folder, env)
    write_to_textfile(str(path), registry)
    return path


def write_status_metrics(folder: Path, row: dict[str, Any]) -> Path:
    """Write `drtool status`'s judgement of one environment (its row) as
    drtool_status_<env>.prom (a file each, so that `status --env` leaves the others'): the
    current RPO exposure, whether it exceeds the objective, and whether drills are overdue;
    run it as often as the alert should be fresh."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str) -> Gauge:
        return Gauge(f"drtool_status_{name}", doc, ["env"], registry=registry)

    exposure = gauge("rpo_exposure_seconds", "Now minus the consistency time of the newest "
                     "backup a passed drill restored.")
    exceeded = gauge("rpo_exposure_exceeded", "1 when the RPO exposure exceeds the objective "
                     "(or no backup was verified), else 0.")
    objective = gauge("rpo_objective_seconds", "The environment's recovery point objective.")
    overdue = gauge("overdue", "1 when no drill passed within the environment's cadence.")
    env = row["env"]
    if row.get("rpo_exposure_s") is not None:
        exposure.labels(env).set(row["rpo_exposure_s"])
    if row.get("rpo_objective_s") is not None:
        objective.labels(env).set(row["rpo_objective_s"])
        exceeded.labels(env).set(1 if row.get("rpo_state") == "exceeded" else 0)
    overdue.labels(env).set(1 if row.get("state") == "overdue" else 0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"drtool_status_{env}.prom"
    write_to_textfile(str(path), registry)
    return path
