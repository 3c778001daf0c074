"""drtool drill | backup | restore | verify | validate: the commands that run phases."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from drtool import components as kinds
from drtool import paths
from drtool.cli.common import (
    FilePath,
    env_option,
    exit_code,
    json_option,
    load,
    not_text,
    print_json,
)
from drtool.components import methods
from drtool.components import postgres as postgres_kind
from drtool.core.clock import utc_now
from drtool.core.identity import CHECK as GUARD_CHECK
from drtool.core.model import PASSED, Journal
from drtool.core.phases import RECOVER, RECOVERY_SIDE, TOUCHES_TARGETS
from drtool.drill.engine import Drill
from drtool.drill.plan import build_plan
from drtool.errors import ConfigError, LockedError
from drtool.ops.exposure import env_exposure
from drtool.ops.logfile import redirect_output
from drtool.report.console import ConsoleProgress, render_plan, render_summary
from drtool.report.junit import junit_xml
from drtool.report.metrics import write_metrics
from drtool.store import choose
from drtool.store.history import History
from drtool.store.lock import lock_held
from drtool.store.open import open_store
from drtool.util.files import atomic_write


@dataclass(frozen=True)
class Outputs:
    """Where a drill's results go besides the journal: metrics and JUnit XML."""

    metrics_dir: Path | None = None
    junit: Path | None = None


LOCK_WAIT = click.option(
    "--lock-wait", type=click.IntRange(min=0), default=0, metavar="SECONDS",
    help="When another drill or backup of ENV runs, wait up to SECONDS for it to end "
         "(a schedule's jobs wait an hour); default: refuse at once (exit 75).")


def run_operation(env_name: str, operation: str, as_json: bool, backup_id: str | None = None,
         note: str | None = None, outputs: Outputs | None = None,
         seed: int | None = None, lock_wait: int = 0,
         target_time: dt.datetime | None = None,
         recovery: tuple[str, str] | None = None,
         confirmed: str | None = None, replace_existing: bool = False,
         operator: str | None = None, chosen_as: str | None = None,
         undoes: Journal | None = None) -> int:
    env, adapter = load(env_name, touches_targets=operation in TOUCHES_TARGETS,
                        recovering=operation in RECOVERY_SIDE)
    # The option that asked for a recovery target, named in the refusal.
    option = "--target-time" if target_time is not None else None if recovery is None else (
        {"time": "--target-time", "lsn": "--target-lsn"}.get(recovery[0], "--to"))
    if option is not None and not any(
            methods.is_physical(postgres_kind.method_of(c))
            for c in kinds.of_family(env.components, "postgres")):
        raise ConfigError(f"{option} sets where a cluster of a physical method recovers to, "
                          f"and {env.name} has none (method: pgbackrest)")
    # With --lock-wait, an operation that finds the environment's lock held (by a drill or a
    # backup that started first) waits for it to be free, polling /proc/locks, and only then
    # picks its backup: a drill of the latest backup behind a scheduled backup restores the
    # one that just ended. A start that still loses the lock (refused before it wrote
    # anything) waits again.
    deadline, waiting, shown = time.monotonic() + lock_wait, False, None
    locks = paths.drtool_home() / "locks"
    while True:
        while lock_wait and lock_held(locks, env.name) and time.monotonic() < deadline:
            if not waiting:
                click.echo(f"drtool: {env.name} is busy; waiting up to {lock_wait} s for its "
                           "lock", err=True)
                waiting = True
            time.sleep(2)
        # A recovery's backup was chosen before its plan was confirmed: exactly that one.
        spec, chosen = backup_id, chosen_as
        if operation == "drill" and backup_id is not None:
            spec, chosen = choose.choose(open_store(env).catalog(), backup_id, seed, env.name)
        drill = Drill(env, operation, adapter, ConsoleProgress(), backup_id=spec, note=note,
                      chosen=chosen, target_time=target_time, recovery=recovery,
                      confirmed=confirmed, replace_existing=replace_existing,
                      operator=operator, undoes=undoes)
        if chosen not in (None, choose.NAMED) and spec != shown:
            doing = "recovering from" if operation == RECOVER else "drilling"
            click.echo(f"drtool: {doing} backup {spec} ({chosen})", err=True)
            shown = spec
        try:
            journal = drill.run()
            break
        except LockedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)  # taken in the moment between the look and the try: look again
    if drill.lock.stale:
        owner = drill.lock.stale
        click.echo(f"drtool: took over the lock of {env.name} left by "
                   f"{owner.get('operation')} {owner.get('drill_id')} (pid {owner.get('pid')}, "
                   "no longer running)", err=True)
    journal_path = drill.writer.path
    if drill.writer.problem is not None:
        journal_path = drill.writer.fallback or journal_path
        click.echo(f"drtool: the journal could not be written at {drill.writer.path}: "
                   f"{drill.writer.problem.strerror or drill.writer.problem}; "
                   + (f"its last state is at {drill.writer.fallback}, and the next operation on "
                      f"{env.name} puts it in place" if drill.writer.fallback else
                      "it could not be written anywhere else either"), err=True)
    else:
        _write_outputs(journal, drill.writer.folder, outputs or Outputs())
    if as_json:
        print_json(journal.to_dict())
        if drill.anchor_problem:
            click.echo(f"drtool: warning: {drill.anchor_problem}", err=True)
    else:
        render_summary(journal, journal_path, anchor=drill.anchor,
                       anchor_problem=drill.anchor_problem)
    code = exit_code(journal)
    if code and journal.failure is not None:
        click.echo("\n".join(failure_lines(operation, journal)), err=True)
    return code


def failure_lines(operation: str, journal: Journal) -> list[str]:
    """What stderr says of a failed operation: one line, or, when the production guard
    refused several targets (each a source under another name), a summary and a refusal a
    line under it. The journal keeps the reason on one line."""
    failure = journal.failure
    if failure is None:
        return []
    where = f" at {failure.phase}" if failure.phase else ""
    said = f"drtool: {operation} {journal.status}{where}"
    refused = [c.describe() for c in journal.checks
               if failure.kind == "guard" and c.name == GUARD_CHECK and not c.passed]
    if len(refused) < 2:
        return [f"{said}: {failure.reason}"]
    return [f"{said}: the production guard refused {len(refused)} targets:",
            *(f"  {line}" for line in refused)]


def _write_outputs(journal: Journal, folder: Path, outputs: Outputs) -> None:
    """JUnit XML beside the journal (and at --junit), metrics into --metrics-dir. A file that
    cannot be written is reported; the drill's result stands."""
    text = junit_xml(journal)
    targets = [folder / "junit.xml", *([outputs.junit] if outputs.junit else [])]
    try:
        for target in targets:
            atomic_write(target, text)
        if outputs.metrics_dir is not None and journal.operation == "drill":
            with History(paths.history_db()) as history:
                passed = [link.record for link, _p in history.links(journal.env)
                          if link.record.get("operation") == "drill"
                          and link.record.get("status") == PASSED]
                exposure = env_exposure(history, journal.env, utc_now())
            write_metrics(outputs.metrics_dir, journal,
                          passed[-1].get("ended_at") if passed else None,
                          exposure["newest_verified_backup_at"])
    except OSError as exc:
        click.echo(f"drtool: could not write {exc.filename}: {exc.strerror}", err=True)


def check_target_time(value: str | None) -> dt.datetime | None:
    """--target-time: an ISO-8601 time with its zone, in the past; click.BadParameter
    (exit 2) otherwise."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"must be an ISO-8601 time such as 2026-12-06T03:38:00Z, "
                                 f"got {value!r}") from None
    if moment.tzinfo is None:
        raise click.BadParameter(f"needs its time zone (2026-12-06T03:38:00Z, or +01:00), "
                                 f"got {value!r}")
    if moment >= utc_now():
        raise click.BadParameter(f"{value} is not in the past")
    return moment.astimezone(dt.UTC)


def check_lsn(value: str | None) -> str | None:
    """--target-lsn: a WAL position as PostgreSQL writes it (0/3000060); click.BadParameter
    (exit 2) otherwise."""
    if value is None:
        return None
    if not re.fullmatch(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}", value.strip()):
        raise click.BadParameter(f"must be a WAL position such as 0/3000060, got {value!r}")
    return value.strip().upper()


def check_note(value: str | None) -> str | None:
    """A note is one line of at most 500 characters of UTF-8 text without control
    characters (it is shown in reports and the JUnit XML as given); click.BadParameter
    (exit 2) otherwise."""
    if value is None:
        return value
    why = not_text(value)
    if why or len(value) > 500:
        raise click.BadParameter("must be one line of at most 500 characters"
                                 + (f": it {why}" if why else ""))
    return value


@click.command()
@env_option
@click.option("--plan", "plan_only", is_flag=True,
              help="Print the ordered plan (phases, hosts, what is destroyed where) and stop.")
@click.option("--note", metavar="TEXT", callback=lambda _c, _p, v: check_note(v),
              help="A line for the journal and reports: why this drill ran (a ticket, a "
                   "change).")
@click.option("--backup", "backup_spec", metavar="latest|random|random-verified|ID",
              help="Drill a backup the store holds (one `drtool backup` made, from cron) "
                   "instead of making a fresh one: the newest, one picked at random among "
                   "the complete (or the verified) ones, or the one named.")
@click.option("--seed", type=int, metavar="N",
              help="Make the pick of --backup random reproducible.")
@click.option("--target-time", metavar="TIME", callback=lambda _c, _p, v: check_target_time(v),
              help="Recover the physically backed-up clusters to this point in time (ISO-8601 "
                   "with its zone) instead of one the drill sets now; their counts are then "
                   "not comparable, and the verify proves no data newer than TIME came back.")
@click.option("--metrics-dir", type=FilePath(file_okay=False, path_type=Path),
              envvar="DRTOOL_METRICS_DIR",
              help="Write Prometheus textfile metrics (drtool_ENV.prom) into this folder "
                   "[env: DRTOOL_METRICS_DIR].")
@click.option("--junit", "junit_file", type=FilePath(dir_okay=False, path_type=Path),
              help="Also write the drill's JUnit XML here (it is always beside the journal).")
@click.option("--log", "log_file", type=FilePath(dir_okay=False, path_type=Path),
              help="Send all output to this file, rotated at 5 MB (for cron and timers).")
@LOCK_WAIT
@json_option
def drill(env_name: str, plan_only: bool, note: str | None, backup_spec: str | None,
          seed: int | None, target_time: dt.datetime | None, metrics_dir: Path | None,
          junit_file: Path | None, log_file: Path | None, lock_wait: int,
          as_json: bool) -> int:
    """Run a full drill: preflight, snapshot, backup, disaster, restore, restart, verify,
    cleanup. Prints progress, then a summary (or the journal with --json)."""
    if seed is not None and backup_spec not in (choose.RANDOM, choose.RANDOM_VERIFIED):
        raise click.BadParameter("only picks with --backup random or random-verified",
                                 param_hint="--seed")
    if target_time is not None and backup_spec is not None:
        raise click.BadParameter("a stored backup recovers to the point it recorded; a point "
                                 "in time is for a fresh drill", param_hint="--target-time")
    if plan_only:
        env, _adapter = load(env_name, runs_phases=False)
        plan = build_plan(env, "drill")
        if as_json:
            print_json({"env": env.name, "tier": env.tier, "plan": plan})
        else:
            render_plan(env, plan)
        return 0
    if log_file is not None:
        redirect_output(log_file, f"drtool drill --env {env_name} (pid {os.getpid()})")
    return run_operation(env_name, "drill", as_json, backup_spec, note=note,
                outputs=Outputs(metrics_dir, junit_file), seed=seed, lock_wait=lock_wait,
                target_time=target_time)


@click.command()
@env_option
@click.option("--log", "log_file", type=FilePath(dir_okay=False, path_type=Path),
              help="Send all output to this file, rotated at 5 MB (for cron and timers).")
@LOCK_WAIT
@json_option
def backup(env_name: str, log_file: Path | None, lock_wait: int, as_json: bool) -> int:
    """Back up the environment's primaries into its backup store."""
    if log_file is not None:
        redirect_output(log_file, f"drtool backup --env {env_name} (pid {os.getpid()})")
    return run_operation(env_name, "backup", as_json, lock_wait=lock_wait)


@click.command()
@env_option
@click.option("--backup", "backup_id", required=True, metavar="ID", help="Backup to restore.")
@click.option("--target-time", metavar="TIME", callback=lambda _c, _p, v: check_target_time(v),
              help="Recover the physically backed-up clusters to this point in time (ISO-8601 "
                   "with its zone) rather than to the point the backup recorded.")
@click.option("--target-lsn", metavar="LSN", callback=lambda _c, _p, v: check_lsn(v),
              help="... to this WAL position (such as 0/3000060), from the backup.")
@click.option("--to", "to", type=click.Choice(["end", "immediate"]),
              help="... to the end of the WAL archive (all the data it holds: the day of a "
                   "disaster), or to the backup's own consistent point (immediate).")
@json_option
def restore(env_name: str, backup_id: str, target_time: dt.datetime | None,
            target_lsn: str | None, to: str | None, as_json: bool) -> int:
    """Restore a backup into the restore targets, after checking every file's sha256.
    The targets are snapshotted first and rolled back if the restore fails. A physically
    backed-up cluster recovers to the point its backup recorded, unless told otherwise."""
    asked = [a for a in (target_time and ("time", target_time.isoformat()),
                         target_lsn and ("lsn", target_lsn),
                         to and ("default" if to == "end" else "immediate", ""))
             if a]
    if len(asked) > 1:
        raise click.UsageError("give one of --target-time, --target-lsn and --to")
    return run_operation(env_name, "restore", as_json, backup_id,
                         recovery=asked[0] if asked else None)


@click.command()
@env_option
@click.option("--backup", "backup_id", required=True, metavar="ID",
              help="Backup whose manifest the targets are judged against.")
@json_option
def verify(env_name: str, backup_id: str, as_json: bool) -> int:
    """Verify what the restore targets hold against a backup's manifest."""
    return run_operation(env_name, "verify", as_json, backup_id)


def recovery_line(recovery: dict[str, Any]) -> str:
    """validate's line on what `drtool recover` would restore."""
    if not recovery["recovered"]:
        return ("recovery: no component declares a recovery side: `drtool recover` has "
                "nothing to restore")
    line = (f"recovery: `drtool recover` restores {', '.join(recovery['recovered'])} onto "
            "their recovery sides")
    if recovery["unrecovered"]:
        line += f"; none declared for {', '.join(recovery['unrecovered'])}"
    return line


@click.command()
@env_option
@json_option
def rollback(env_name: str, as_json: bool) -> int:
    """Roll back the restore targets of drills that were killed (SIGKILL, a power loss)
    after they changed them, from their safety snapshots, and record each rollback in that
    drill's journal. Every drill, restore and verify does this first on its own."""
    return run_operation(env_name, "rollback", as_json)


@click.command()
@env_option
@json_option
def validate(env_name: str, as_json: bool) -> int:
    """Check an environment's inventory and report every problem at once, with the file and
    key. Exit 0 when it can be drilled (or, for a production tier, backed up), 2 otherwise."""
    from drtool.cli.common import described  # noqa: PLC0415
    from drtool.config import check_environment, find_inventory, render  # noqa: PLC0415

    inventory = find_inventory(env_name)
    hosts_described = described(env_name, inventory)
    settings, problems, refusals = check_environment(env_name, hosts_described)
    production = settings["production"]
    lines = [render(inventory.folder, p) for p in problems]
    refused = [render(inventory.folder, p) for p in refusals]
    ok = not lines and (production or not refused)
    # What `drtool recover` would restore, and what it would refuse (it does not change
    # whether the environment validates: a recovery is confirmed, and checked, on the day).
    recovery: dict[str, Any] = {"recovered": [], "unrecovered": [], "refused": []}
    if not lines:
        seen, _same, recovery_refusals = check_environment(env_name, hosts_described,
                                                           recovering=True)
        recovery = {"recovered": [c.name for c in seen["components"]],
                    "unrecovered": list(seen["unrecovered"]),
                    "refused": [render(inventory.folder, p) for p in recovery_refusals]}
    if as_json:
        print_json({"env": env_name, "inventory": str(inventory), "valid": ok,
                    "tier": settings["tier"], "problems": lines, "drills_refused": refused,
                    "recovery": recovery})
    else:
        for line in lines:
            click.echo(f"problem: {line}")
        for line in refused:
            click.echo(f"drills refused: {line}")
        for line in recovery["refused"]:
            click.echo(f"recovery refused: {line}")
        if ok:
            hosts = sum(len(h) for h in settings["groups"].values())
            what = "can be backed up; drills are refused (tier production)" if production else (
                "can be drilled")
            click.echo(f"{env_name}: {inventory}: {hosts} hosts, {what}")
            click.echo(recovery_line(recovery))
    if not ok:  # the problems are the report, on stdout; stderr says, on one line, that it failed
        count = len(lines) + (0 if production else len(refused))
        click.echo(f"drtool: error: {env_name}: {count} problem{'s' if count != 1 else ''} in "
                   f"{inventory}, each listed on stdout", err=True)
    return 0 if ok else 2
