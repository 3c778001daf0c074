"""drtool backups list | prune: the backup catalog and its retention."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import click

from drtool import paths
from drtool.cli.common import FilePath, env_option, json_option, load, print_json
from drtool.cli.operations import LOCK_WAIT, run_operation
from drtool.core.clock import iso, utc_now
from drtool.errors import ConfigError
from drtool.ops.logfile import redirect_output
from drtool.store import crypto
from drtool.store.lock import EnvironmentLock
from drtool.store.open import open_store
from drtool.store.retention import decide
from drtool.util.files import atomic_write


@click.group()
def backups() -> None:
    """The backup catalog: list, verify, prune."""


def _size(size: int | None) -> str:
    return f"{size:,} bytes" if size is not None else "-"


@backups.command("list")
@env_option
@json_option
def list_backups(env_name: str, as_json: bool) -> int:
    """List the environment's backups, newest first: id, time, size, location, and whether
    a passed drill verified it."""
    env, _adapter = load(env_name, runs_phases=False, touches_targets=False)
    store = open_store(env)
    found = store.catalog()
    if as_json:
        print_json([{**dataclasses.asdict(s), "verified": s.verified} for s in found])
        return 0
    if not found:
        click.echo(f"no backups in {store.location}")
    for summary in found:
        state = ("INCOMPLETE (no manifest)" if not summary.complete else
                 f"verified by drill {summary.verified_by}" if summary.verified else
                 "not verified")
        click.echo(f"{summary.id}  {summary.consistent_at or summary.created_at or '-'}  "
                   f"{_size(summary.size)}  {summary.location}  {state}")
    return 0


@backups.command("verify")
@env_option
@click.option("--backup", "backup_id", metavar="ID",
              help="Check only this backup of drtool's store (default: every one it holds).")
@click.option("--log", "log_file", type=FilePath(dir_okay=False, path_type=Path),
              help="Send all output to this file, rotated at 5 MB (for cron and timers).")
@LOCK_WAIT
@json_option
def verify_backups(env_name: str, backup_id: str | None, log_file: Path | None,
                   lock_wait: int, as_json: bool) -> int:
    """Read every backup back where it is kept and check it, outside any drill: each file
    of drtool's store against its manifest's sha256, and each repository a method keeps
    with its own tool (`pgbackrest verify`). Nothing is restored; the result is recorded in
    the history like a drill's. Exit 1 when a backup fails its check."""
    if log_file is not None:
        redirect_output(log_file, f"drtool backups verify --env {env_name} (pid {os.getpid()})")
    return run_operation(env_name, "verify-backups", as_json, backup_id, lock_wait=lock_wait)


@backups.command("prune")
@env_option
@click.option("--keep-last", type=click.IntRange(min=1), metavar="N",
              help="Keep the N newest complete backups.")
@click.option("--keep-days", type=click.FloatRange(min=0, min_open=True), metavar="D",
              help="Keep every backup younger than D days.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@json_option
def prune(env_name: str, keep_last: int | None, keep_days: float | None, dry_run: bool,
          as_json: bool) -> int:
    """Remove the backups no rule keeps. The newest verified backup is always kept. What
    was removed is recorded under $DRTOOL_HOME/prunes/ENV/."""
    if keep_last is None and keep_days is None:
        raise ConfigError("backups prune needs --keep-last N, --keep-days D, or both")
    env, _adapter = load(env_name, runs_phases=False, touches_targets=False)
    store = open_store(env)
    lock = EnvironmentLock(paths.drtool_home() / "locks", env.name)
    now = utc_now()
    lock.acquire("prune", f"prune-{now.strftime('%Y%m%dT%H%M%SZ')}")  # no drill meanwhile
    try:
        decisions = decide(store.catalog(), keep_last, keep_days, now)
        removed = []
        for decision in decisions:
            if not decision.keep and not dry_run:
                store.delete(decision.backup.id)
                removed.append(decision.backup.id)
    finally:
        lock.release()
    pruned = [d for d in decisions if not d.keep]
    record: dict[str, Any] = {
        "env": env.name, "at": iso(now), "store": store.location, "dry_run": dry_run,
        "rules": {"keep_last": keep_last, "keep_days": keep_days},
        "kept": [{"id": d.backup.id, "reason": d.reason} for d in decisions if d.keep],
        "pruned": [{"id": d.backup.id, "reason": d.reason, "size": d.backup.size,
                    "consistent_at": d.backup.consistent_at}
                   for d in pruned],
    }
    if not dry_run:
        path = (paths.drtool_home() / "prunes" / env.name /
                f"{now.strftime('%Y%m%dT%H%M%S%fZ')}.json")
        atomic_write(path, json.dumps(record, indent=2) + "\n")
        record["record"] = str(path)
    if as_json:
        print_json(record)
        return 0
    verb = "would remove" if dry_run else "removed"
    for decision in decisions:
        what = "keep  " if decision.keep else f"{verb}"
        click.echo(f"{what}  {decision.backup.id}  {decision.reason}")
    click.echo(f"{env.name}: {verb} {len(pruned)}, kept {len(decisions) - len(pruned)}"
               + (f"; recorded in {record['record']}" if not dry_run else ""))
    return 0


@backups.command("new-key")
@click.argument("path", type=FilePath(dir_okay=False, path_type=Path))
def new_key(path: Path) -> int:
    """Write a new client-side encryption key to PATH (mode 0600; never over an existing
    file). Keep it outside the store, and a copy somewhere safe: without it, the backups it
    sealed cannot be restored. Point drtool_store_s3.encryption_key_file at it."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists; drtool never overwrites a key") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w") as handle:
        handle.write(crypto.new_key())
    key = crypto.load_key(path)
    click.echo(f"{path}: new key {crypto.fingerprint(key)}")
    return 0
