"""drtool evidence verify: recompute the history's hash chain and its journals' hashes, and
(with --anchors) check it against the anchors in the Object Lock bucket."""

from __future__ import annotations

from typing import Any

import click

from drtool import paths
from drtool.cli.common import json_option, load, print_json, vault_options
from drtool.config import ENV_NAME, find_inventory
from drtool.core import chain
from drtool.drill.recovery import record_unrecorded
from drtool.errors import EXIT_FAILED, ConfigError
from drtool.report.model import plural
from drtool.store.history import History


@click.group()
def evidence() -> None:
    """The tamper-evident drill history."""


@evidence.command("verify")
@click.option("--env", "env_name", metavar="ENV", help="Only this environment's records.")
@vault_options
@click.option("--anchors", "check_anchors", is_flag=True,
              help="Also read the chain's anchors back from the environment's Object Lock "
                   "bucket (drtool_evidence_s3): shows the newest records cut off. Needs --env.")
@json_option
def verify_chain(env_name: str | None, check_anchors: bool, as_json: bool) -> int:
    """Check every record's hash and its journal's sha256; name the first record that does
    not match. Exit 0 when every chain holds, 1 otherwise, 2 for an environment with
    neither an inventory nor records, 3 when the bucket cannot be read."""
    if env_name is not None and not ENV_NAME.match(env_name):
        raise ConfigError(f"not an environment name: {env_name!r}")
    if check_anchors and env_name is None:
        raise click.UsageError("--anchors needs --env: the anchors are in that environment's "
                               "drtool_evidence_s3 bucket")
    results = []
    with History(paths.history_db()) as history:
        envs = [env_name] if env_name else history.envs()
        for env in envs:
            record_unrecorded(env, history)  # a killed drill is recorded before judging
            if env not in history.envs():
                find_inventory(env)  # ConfigError (exit 2) for an unknown environment
            checked, broken = history.verify(env)
            result: dict[str, Any] = {"env": env, "records": checked}
            if check_anchors:
                anchored = _check_anchors(env, history)
                anchor_break = anchored.pop("break")
                result["anchors"] = anchored
                broken = broken or anchor_break
            result.update(intact=broken is None,
                          first_break=broken.describe() if broken else None)
            results.append(result)
    if as_json:
        print_json(results)
    else:
        if not results:
            click.echo("no drills recorded yet")
        for result in results:
            state = "chain intact" if result["intact"] else f"BROKEN at {result['first_break']}"
            click.echo(f"{result['env']}: {plural(result['records'], 'record')}, {state}"
                       + _anchor_line(result.get("anchors")))
    return EXIT_FAILED if any(not r["intact"] for r in results) else 0


def _check_anchors(env: str, history: History) -> dict[str, Any]:
    """Read every anchor of `env` back from its evidence bucket and hold the history to
    them; StoreError (exit 3) when the bucket cannot be read."""
    from drtool.store.anchor import chain_prefix, read_anchors  # noqa: PLC0415 - boto3

    environment, _adapter = load(env, runs_phases=False, touches_targets=False)
    settings = environment.evidence_s3
    if settings is None:
        raise ConfigError(f"{env} has no drtool_evidence_s3 bucket: its chain is not anchored")
    found = read_anchors(settings, env)
    links = [entry for entry, _path in history.links(env)]
    newest = max((a["seq"] for a in found if "invalid" not in a), default=None)
    return {"where": f"s3://{settings.connection.bucket}/{chain_prefix(settings, env)}",
            "checked": len(found), "newest_anchored_seq": newest,
            "records_after_newest_anchor": sum(1 for e in links
                                               if newest is None or e.seq > newest),
            "break": chain.first_anchor_break(links, found)}


def _anchor_line(anchors: dict[str, Any] | None) -> str:
    if anchors is None:
        return ""
    after = anchors["records_after_newest_anchor"]
    return (f"; {plural(anchors['checked'], 'anchor')} in {anchors['where']}"
            + (f", {plural(after, 'newer record')} not anchored" if after else ""))
