"""drtool report: quarterly DR evidence reports, and reports of single drills."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
import yaml

import drtool
from drtool import paths
from drtool.cli.common import (
    FilePath,
    json_option,
    load,
    not_text,
    print_json,
    shown,
    vault_options,
)
from drtool.config import ENV_NAME, find_inventory
from drtool.core.clock import utc_now
from drtool.drill.recovery import record_unrecorded
from drtool.errors import EXIT_FAILED, ConfigError
from drtool.report import gather, model, render
from drtool.store.history import History
from drtool.util.files import atomic_write

GENERATED_BY = {"drtool": drtool.__version__}


def formats_of(value: str) -> list[str]:
    chosen = [f.strip().lower() for f in value.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in render.FORMATS]
    if unknown or not chosen:
        raise ConfigError(f"unknown report format {', '.join(unknown) or repr(value)} "
                          f"(choose from {', '.join(render.FORMATS)})")
    return list(dict.fromkeys(chosen))


def _remediation(path: Path | None) -> dict[str, str]:
    """Remediation notes: a YAML mapping of drill id to text, read as UTF-8. ConfigError
    (exit 2, one line) when the file cannot be read, decoded or parsed, or holds anything
    else (a control character, but for a line break or a tab, included)."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read remediation notes {shown(str(path))}: not UTF-8 text "
                          f"(byte {exc.start + 1} is {exc.object[exc.start]:#04x})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read remediation notes {shown(str(path))}: "
                          f"{exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read remediation notes {shown(str(path))}: not YAML: "
                          f"{_yaml_reason(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in data.items()):
        raise ConfigError(f"remediation notes {shown(str(path))} must map drill ids to text, "
                          "one per line (`20261122T051530Z-3fa2c1: restarted the replica`)")
    for key, text in data.items():
        why = not_text(key) or not_text(text, allow="\n\t")
        if why:
            raise ConfigError(f"remediation notes {shown(str(path))}: the note of "
                              f"'{shown(key)}' {why}")
    return data


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: what is wrong and where (line and column, from 1)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return shown(f"{exc.problem}{where}")
    return shown(" ".join(str(exc).split()))


@click.command()
@click.option("--env", "env_name", metavar="ENV", help="Quarterly report of this environment.")
@vault_options
@click.option("--quarter", metavar="YYYY-Qn",
              help="Quarter to report on, such as 2026-Q4 (default: the current quarter).")
@click.option("--drill", "drill_id", metavar="ID", help="Report one drill instead.")
@click.option("--format", "format_list", default=",".join(render.FORMATS), show_default=True,
              metavar="LIST", help="Comma-separated formats: html, md, json, pdf.")
@click.option("--out", "out_dir", type=FilePath(file_okay=False, path_type=Path),
              help="Folder to write into (default: $DRTOOL_HOME/reports/ENV).")
@click.option("--remediation", "remediation_file", metavar="FILE",
              type=FilePath(dir_okay=False, path_type=Path),
              help="YAML mapping failed or aborted drill ids to their remediation notes.")
@click.option("--copy-evidence", is_flag=True,
              help="Also copy the written files to the environment's Object Lock bucket "
                   "(drtool_evidence_s3) and record their version ids.")
@json_option
def report(env_name: str | None, quarter: str | None, drill_id: str | None, format_list: str,
           out_dir: Path | None, remediation_file: Path | None, copy_evidence: bool,
           as_json: bool) -> int:
    """Write a DR evidence report: a quarter of one environment's drills (--env), or one
    drill (--drill). Exit 0 when written, 1 when written but the evidence chain is broken
    (the report says where), 2 for bad arguments, 3 when the PDF could not be printed or
    the copy to the evidence bucket failed."""
    if (env_name is None) == (drill_id is None):
        raise click.UsageError("give either --env (a quarterly report) or --drill (one drill)")
    if drill_id is not None and quarter is not None:
        raise click.UsageError("--quarter goes with --env, not with --drill")
    formats = formats_of(format_list)
    notes = _remediation(remediation_file)
    now = utc_now()
    with History(paths.history_db()) as history:
        if drill_id is not None:
            env, data, basename = _one_drill(history, drill_id, notes, now)
        else:
            env, data, basename = _quarter(history, str(env_name), quarter, notes, now)
    folder = out_dir or paths.drtool_home() / "reports" / env
    try:
        written = render.write(data, formats, folder, basename)
    except OSError as exc:
        raise ConfigError(f"cannot write the report into {folder}: "
                          f"{exc.strerror or exc}") from None
    intact = data["chain"]["intact"]
    copies = _copy_to_evidence_bucket(env, written, folder, basename) if copy_evidence else []
    if as_json:
        print_json({"files": [str(p) for p in written], "chain_intact": intact,
                    "headline": data.get("headline"), "evidence_copies": copies})
    else:
        for path in written:
            click.echo(str(path))
        for copy in copies:
            click.echo(f"copied to {copy['url']} version {copy['version_id']} "
                       f"({copy['mode']} until {copy['retain_until']})")
    if not intact:
        click.echo(f"drtool: the evidence chain of {env} is broken at "
                   f"{data['chain']['first_break']}; the report says so", err=True)
        return EXIT_FAILED
    return 0


def _copy_to_evidence_bucket(env: str, written: list[Path], folder: Path,
                             basename: str) -> list[dict[str, Any]]:
    """Copy the report's files under Object Lock; keep the version ids beside them."""
    from drtool.store.evidence_copy import copy_evidence  # noqa: PLC0415 - boto3

    environment, _adapter = load(env, runs_phases=False, touches_targets=False)
    if environment.evidence_s3 is None:
        raise ConfigError(f"the report was written, but {env} has no drtool_evidence_s3 "
                          "bucket to copy it to")
    copies = copy_evidence(environment.evidence_s3, env, "reports", written)
    atomic_write(folder / f"{basename}.evidence-copies.json",
                 json.dumps(copies, indent=2) + "\n")
    return copies


def _one_drill(history: History, drill_id: str, notes: dict[str, str], now: dt.datetime
               ) -> tuple[str, dict[str, Any], str]:
    if not_text(drill_id):  # no recorded drill has such an id; the history cannot be asked
        raise ConfigError(f"no drill '{shown(drill_id)}' is recorded (see `drtool history "
                          "--env ENV`)")
    env = gather.find_drill(history, drill_id)
    if env is None:
        raise ConfigError(f"no drill {drill_id!r} is recorded (see `drtool history --env ENV`)")
    item = next(r for r in gather.recorded(history, env) if r.record["drill_id"] == drill_id)
    data = model.drill_report(item, gather.chain(history, env, now), now, GENERATED_BY, notes)
    return env, data, f"{env}-{drill_id}"


def _quarter(history: History, env: str, quarter: str | None, notes: dict[str, str],
             now: dt.datetime) -> tuple[str, dict[str, Any], str]:
    if not ENV_NAME.match(env):
        raise ConfigError(f"not an environment name: {env!r}")
    try:
        period = model.parse_quarter(quarter) if quarter else model.quarter_of(now)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    record_unrecorded(env, history)  # a killed drill counts, as aborted
    if env not in history.envs():
        find_inventory(env)  # an unknown environment is an error; a quiet one is reported
    data = model.quarterly_report(env, period, gather.recorded(history, env),
                                  gather.chain(history, env, now), now, GENERATED_BY, notes)
    written = paths.drtool_home() / "runbooks" / env / f"runbook-{env}.html"
    if data["runbook"] is not None and written.is_file():
        data["runbook"]["file"] = str(written)  # the newest `drtool runbook` wrote
    return env, data, f"{env}-{period.label}"
