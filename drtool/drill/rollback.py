"""Putting restore targets back: stop what an interrupted phase left running (reap), then run
the rollback playbook and judge what it restored against the safety snapshot.

Used after a failed or interrupted phase, and for a drill that was killed (SIGKILL, a power
loss): its journal still says running, the environment's lock is free, and its targets may
be half restored. The next operation on the environment, or `drtool rollback`, finds it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from drtool import paths
from drtool.adapters.ansible import AnsibleAdapter, PlaybookRun
from drtool.components import Component
from drtool.core import phases as ph
from drtool.core import rollback as judge
from drtool.core.clock import Clock, iso, seconds_between
from drtool.core.model import (
    ABORTED,
    FAILED,
    PASSED,
    PENDING,
    RUNNING,
    SKIPPED,
    Check,
    Failure,
    Journal,
    PhaseRecord,
)
from drtool.drill import facts
from drtool.drill.journal_writer import JournalWriter, load_journals
from drtool.errors import OrchestrationError

EventHook = Callable[[dict[str, Any], Any], None]


def reap(ansible: AnsibleAdapter, extravars: dict[str, Any], artifacts: Path) -> str | None:
    """Stop, on every host, the processes started under this drill id and wait until they
    are gone. Returns why that could not be done, or None."""
    try:
        run = ansible.run("reap", extravars, artifacts)
    except OrchestrationError as exc:
        return exc.message
    if run.status == "successful":
        return None
    return "; ".join(f"{f.host}: {f.message}" for f in run.failures) or (
        f"ansible-playbook ended {run.status} (rc {run.rc})")


def reasons(run: PlaybookRun) -> str:
    return "; ".join(f"{f.host}: {f.task}: {f.message}" for f in run.failures) or (
        f"ansible-playbook ended {run.status} (rc {run.rc})")


def roll_back(ansible: AnsibleAdapter, extravars: dict[str, Any], artifacts: Path,
              record: PhaseRecord, cleanup_started: bool, clock: Clock,
              on_event: EventHook | None = None) -> list[Check]:
    """Reap, then run playbooks/rollback.yml; fill `record` (status, times, error, tasks) and
    return the checks of what it restored. Never cancelled: a rollback runs to its end."""
    started = clock()
    record.status, record.started_at = RUNNING, iso(started)
    checks: list[Check] = []
    problem = reap(ansible, extravars, artifacts.with_name("reap"))
    if problem:
        # Rolling back beside a pg_restore or a Redis load still at work is the race this
        # exists to prevent: leave the targets (and the snapshot) for a person.
        record.status = FAILED
        record.error = f"processes of the drill could not be stopped, so nothing was rolled " \
                       f"back: {problem}"
    else:
        try:
            run = ansible.run(ph.ROLLBACK, extravars, artifacts, on_event,
                              run_id=extravars["drtool_drill_id"])
        except OrchestrationError as exc:
            record.status, record.error = FAILED, exc.message
        else:
            record.tasks = list(run.tasks)
            checks = judge.rollback_checks(
                facts.by_database(run.stats.get("drtool_postgres_rollback", {})),
                run.stats.get("drtool_redis_rollback", {}), cleanup_started,
                run.stats.get("drtool_files_rollback", {}))
            bad = [c for c in checks if not c.passed]
            why = []
            if bad:  # first: it says what differs, where the failed assert only says that
                why.append("the targets differ from the safety snapshot: " + "; ".join(
                    c.describe() for c in bad[:3]) + (f" (and {len(bad) - 3} more)"
                                                      if len(bad) > 3 else ""))
            if run.status != "successful" or run.failures:  # rescued failures count too
                why.append(reasons(run))
            record.status = FAILED if why else PASSED
            record.error = "; ".join(why) or None
    ended = clock()
    record.ended_at, record.duration_s = iso(ended), seconds_between(started, ended)
    return checks


def extravars_of(journal: Journal, store_backup_path: Path | None) -> dict[str, Any]:
    """The extra vars a drill's rollback needs, rebuilt from its journal."""
    values: dict[str, Any] = {
        "drtool_env": journal.env, "drtool_drill_id": journal.drill_id,
        "drtool_touches_targets": True,
        # No preflight ran before this rollback: the guard role asks the targets' identities
        # itself (the inventory may have changed since the drill was killed).
        "drtool_guard_identity": True,
    }
    if journal.operation == judge.RECOVER:
        # Its targets were the components' recovery sides, confirmed by name when it ran.
        values.update(drtool_target_side="recovery", drtool_recover_confirmed=journal.env)
    if journal.backup is not None and store_backup_path is not None:
        values["drtool_backup_id"] = journal.backup.id
        values["drtool_store_backup_path"] = str(store_backup_path)
    # A cluster declared with `databases: all`: the databases the drill worked on, which it
    # recorded in its scope before it changed a target.
    values["drtool_postgres_databases_of"] = {
        str(entry["name"]): list(entry["databases"])
        for entry in (journal.scope or {}).get("components", [])
        if entry.get("kind") == "postgres" and isinstance(entry.get("databases"), list)}
    return values


def found_databases(components: Iterable[Component]) -> dict[str, Any]:
    """The extra var naming, for each cluster declared with `databases: all`, the databases
    the drill works on (roles/drtool_postgres/tasks/component.yml loops over them); none
    until the preflight found them or a backup's manifest is known."""
    return {"drtool_postgres_databases_of": {
        c.name: list(c.databases) for c in components if c.all_databases and c.databases}}


def awaiting(env: str, skip: str | None = None) -> list[tuple[Path, Journal]]:
    """The journals of `env` whose drill was killed after it changed its targets and whose
    rollback has not run. Call it only while holding the environment's lock: then no drill
    of `env` is running, whatever the journals' PIDs say."""
    return [(path, journal) for path, journal in load_journals(paths.evidence_dir(env))
            if journal.drill_id != skip and judge.awaits_rollback(journal)]


def release_killed(ansible: AnsibleAdapter, env: str, by: str, clock: Clock,
                   skip: str | None = None) -> list[str]:
    """Give back the leases of drills of `env` killed after they leased their targets but
    before they changed them (see core.rollback.holds_leases), and remove their safety
    snapshots; return a warning for each that could not be. Call it only while holding the
    environment's lock."""
    problems = []
    for path, journal in load_journals(paths.evidence_dir(env)):
        if journal.drill_id == skip or not judge.holds_leases(journal):
            continue
        extravars = extravars_of(journal, None)
        # What its snapshot had started (a pg_dump, a BGSAVE copy) goes first.
        problem = reap(ansible, extravars, path.parent / "artifacts" / "reap")
        if problem:
            problems.append(f"drill {journal.drill_id} was killed holding its targets' "
                            f"leases, and what it left running could not be stopped: {problem}")
            continue
        changed = judge.changed_targets(journal)  # only a recovery's, never rolled back
        try:
            # Killed before it changed its targets: its snapshot is not needed either.
            run = ansible.run("release", {**extravars,
                                          "drtool_release_discard_snapshot": not changed},
                              path.parent / "artifacts" / "release")
        except OrchestrationError as exc:
            problems.append(f"drill {journal.drill_id} was killed holding its targets' "
                            f"leases, and they could not be given back: {exc.message}")
            continue
        if run.status != "successful":
            problems.append(f"drill {journal.drill_id} was killed holding its targets' "
                            f"leases, and they could not be given back: {reasons(run)}")
            continue
        # Over now: its journal says so (and it is not looked at again).
        end_killed(journal, f"drtool was killed (process {journal.pid} was gone) after it "
                            f"changed its recovery targets; nothing was rolled back (its "
                            f"safety snapshot is kept), and their leases were given back by "
                            f"{by}" if changed else
                            f"drtool was killed (process {journal.pid} was gone) before it "
                            f"changed its targets; their leases were given back by {by}", clock)
        if changed:
            problems.append(f"recovery {journal.drill_id} was killed after it changed its "
                            "recovery targets: they hold what it restored so far; run "
                            f"`drtool recover` again, or put them back with `drtool recover "
                            f"--env {env} --undo {journal.drill_id}`")
        JournalWriter(path.parent, journal).save()
    return problems


def close_killed_undos(ansible: AnsibleAdapter, env: str, by: str, clock: Clock,
                       skip: str | None = None) -> list[str]:
    """Close the journals of `drtool recover --undo` runs of `env` that were killed: stop
    what their rollback left running (it runs under the recovery's id), and say that the
    targets may be partly put back; the leases it took stay, under the recovery's id, until
    they expire (drtool_lease_s) or the undo is run again (it takes them back as its own).
    Returns a warning for each. Call it only while holding the environment's lock."""
    journals = load_journals(paths.evidence_dir(env))
    by_id = {journal.drill_id: journal for _path, journal in journals}
    problems = []
    for path, journal in journals:
        if (journal.drill_id == skip or journal.operation != judge.UNDO_RECOVER
                or journal.status != RUNNING):
            continue
        recovery = by_id.get(journal.undoes or "")
        stopped = reap(ansible, extravars_of(recovery, None),
                       path.parent / "artifacts" / "reap") if recovery else None
        if stopped:  # left running, as release_killed leaves a drill it cannot stop
            problems.append(f"undo {journal.drill_id} was killed, and what it left running "
                            f"could not be stopped: {stopped}")
            continue
        again = f"run `drtool recover --env {env} --undo {journal.undoes or '?'}` again"
        record = journal.rollback
        began = record is not None
        if record is not None and record.status == RUNNING:
            record.status = ABORTED
            record.error = "drtool was killed while it put the targets back"
        state = ("they may be partly put back" if began else
                 "it had not begun to put them back")
        end_killed(journal, f"drtool was killed (process {journal.pid} was gone) before its "
                            f"undo of recovery {journal.undoes} ended: {state}; {again} "
                            f"(closed by {by})", clock)
        JournalWriter(path.parent, journal).save()
        problems.append(f"undo {journal.drill_id} of recovery {journal.undoes} was killed: "
                        f"{state}; {again}")
    return problems


def end_killed(journal: Journal, reason: str, clock: Clock) -> None:
    """Close a killed drill's journal: the phase it was in aborted, the rest skipped, the
    drill aborted with `reason` (unless it had failed already)."""
    phase = next((p for p in journal.phases if p.status == RUNNING), None)
    if phase is not None:
        phase.status, phase.error = ABORTED, "drtool was killed during this phase"
    for other in journal.phases:
        if other.status == PENDING:
            other.status = SKIPPED
    journal.status, journal.ended_at = ABORTED, iso(clock())
    journal.failure = journal.failure or Failure(phase.name if phase else "", reason,
                                                 "interrupted")


def roll_back_killed(ansible: AnsibleAdapter, path: Path, journal: Journal,
                     store_backup_path: Path | None, by: str, clock: Clock) -> PhaseRecord:
    """Roll back the targets of a killed drill and record it in that drill's own journal:
    its rollback, status aborted, and why. Returns the rollback record."""
    writer = JournalWriter(path.parent, journal)
    record = PhaseRecord(ph.ROLLBACK)
    journal.rollback = record
    writer.save()
    checks = roll_back(ansible, extravars_of(journal, store_backup_path),
                       writer.artifact_dir(ph.ROLLBACK), record, judge.cleanup_started(journal),
                       clock)
    # The checks of this attempt only: an earlier, failed attempt's stay in its artifacts.
    journal.checks = [c for c in journal.checks if not c.name.startswith("rollback.")] + checks
    if record.status == PASSED:
        # Only now is the killed drill over: until its rollback passes, its journal keeps
        # saying running, and every operation that touches the targets tries again first.
        end_killed(journal, f"drtool was killed (process {journal.pid} was gone); its "
                            f"targets were rolled back by {by}", clock)
    writer.save()
    return record
