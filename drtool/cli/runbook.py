"""drtool runbook: the recovery procedure of an environment, for the day of a real disaster,
proven by its newest passed drill."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click

from drtool import paths
from drtool.cli.common import FilePath, env_option, json_option, load, print_json
from drtool.cli.report import GENERATED_BY, formats_of
from drtool.core.clock import utc_now
from drtool.drill.recovery import record_unrecorded
from drtool.errors import ConfigError, StoreError
from drtool.report import gather, render, runbook
from drtool.store import choose
from drtool.store.base import BackupSummary
from drtool.store.history import History
from drtool.store.open import open_store


def newest_backup(catalog: list[BackupSummary]) -> BackupSummary | None:
    """The backup a recovery takes by default (`drtool recover`'s own rule: the newest a
    drill verified), else the newest complete one (the runbook says it is not verified)."""
    for spec in (choose.LATEST_VERIFIED, choose.LATEST):
        try:
            picked, _how = choose.choose(catalog, spec)
        except ConfigError:  # none of that kind
            continue
        return next(b for b in catalog if b.id == picked)
    return None


def manifest_sha256(location: str) -> str | None:
    """The sha256 of a backup's manifest kept on this machine; None elsewhere (S3)."""
    path = Path(location) / "manifest.json"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@click.command("runbook")
@env_option
@click.option("--format", "format_list", default="html,md", show_default=True, metavar="LIST",
              help="Comma-separated formats: html, md, json, pdf.")
@click.option("--out", "out_dir", type=FilePath(file_okay=False, path_type=Path),
              help="Folder to write into (default: $DRTOOL_HOME/runbooks/ENV).")
@json_option
def runbook_command(env_name: str, format_list: str, out_dir: Path | None,
                    as_json: bool) -> int:
    """Write the recovery runbook of ENV: contacts, objectives and what the drills measured,
    the backup to recover from and where it is, then every step of a recovery onto the
    recovery targets with the commands it runs on which host and how long each took at the
    newest passed drill (and its median over the quarter). Exit 0 when written, 1 when
    written but no passed drill within the cadence proves it (the runbook says so at its
    top), 2 for bad arguments or an environment that declares no recovery side."""
    formats = formats_of(format_list)
    env, _adapter = load(env_name, runs_phases=False, touches_targets=False, recovering=True)
    store = open_store(env)
    now = utc_now()
    try:
        chosen = newest_backup(store.catalog())
    except StoreError as exc:
        raise ConfigError(f"cannot read the backup store of {env.name}: {exc.message}") from None
    backup: dict[str, Any] | None = None
    manifest = None
    if chosen is not None:
        manifest = store.read_manifest(chosen.id)
        backup = {"id": chosen.id, "consistent_at": chosen.consistent_at, "size": chosen.size,
                  "verified_by": chosen.verified_by, "location": chosen.location,
                  "manifest_sha256": manifest_sha256(chosen.location)}
    with History(paths.history_db()) as history:
        record_unrecorded(env.name, history)
        records = gather.recorded(history, env.name)
    data = runbook.build(env, records, backup, manifest,
                         str(store.backup_path(chosen.id)) if chosen else None, now,
                         GENERATED_BY)
    folder = out_dir or paths.drtool_home() / "runbooks" / env.name
    try:
        written = render.write(data, formats, folder, f"runbook-{env.name}")
    except OSError as exc:
        raise ConfigError(f"cannot write the runbook into {folder}: "
                          f"{exc.strerror or exc}") from None
    if as_json:
        print_json({"files": [str(p) for p in written], "proven": data["proven"],
                    "backup": (data["backup"] or {}).get("id")})
    else:
        for path in written:
            click.echo(str(path))
    if data["proven"]["stale"]:
        click.echo(f"drtool: the runbook of {env.name} is not proven: "
                   f"{data['proven']['why']}", err=True)
        return 1
    return 0
