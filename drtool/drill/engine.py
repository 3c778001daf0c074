"""Orchestration: run an operation's phases through Ansible, one playbook each, and keep
the journal true after every step. Verdicts come from drtool.core.verdict; this module
only sequences, records and rolls back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import os
import secrets
import signal
import sqlite3
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from drtool import components as kinds
from drtool import paths
from drtool.adapters import ssh
from drtool.adapters.ansible import AnsibleAdapter, PlaybookRun, TaskFailure
from drtool.components import methods
from drtool.components import postgres as postgres_kind
from drtool.components import service as service_kind
from drtool.config import Environment
from drtool.core import identity, preflight, team_checks, timing, verdict
from drtool.core import phases as ph
from drtool.core.chain import Link
from drtool.core.clock import (
    Clock,
    Moment,
    Monotonic,
    clock_jump,
    elapsed,
    iso,
    jump_warning,
    moment,
    parse_iso,
    utc_now,
)
from drtool.core.manifest import Manifest, build_manifest, manifest_parts
from drtool.core.model import (
    ABORTED,
    FAILED,
    PASSED,
    PENDING,
    RUNNING,
    SKIPPED,
    BackupRef,
    Check,
    Failure,
    Journal,
    PhaseRecord,
    TaskRecord,
)
from drtool.core.rollback import cleanup_started, undo_drift, undo_problem
from drtool.drill import backups_check, facts, rollback
from drtool.drill.journal_writer import JournalWriter, load_journals
from drtool.drill.plan import identity_lock_keys, target_lock_keys
from drtool.drill.recovery import adopt_fallback_journals, record_unrecorded, scrub_killed
from drtool.drill.scope import inventory_version, scope_of, seen_sources
from drtool.drill.versions import base_versions
from drtool.errors import ConfigError, LockedError, OrchestrationError, StoreError
from drtool.ops import notify
from drtool.store import choose
from drtool.store.base import ManifestInvalid, Transfer
from drtool.store.history import History, record_of
from drtool.store.lock import EnvironmentLock, TargetLocks
from drtool.store.open import open_store


class Progress(Protocol):
    def phase_started(self, name: str, index: int, total: int) -> None: ...
    def task_started(self, phase: str, task: str, host: str | None) -> None: ...
    def phase_ended(self, record: PhaseRecord) -> None: ...


def disk_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc` when it says a file system is full or read-only: the
    evidence cannot be written, which is not a bug of drtool's."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# How often task events save the journal during a phase, at most (failures: at once).
SAVE_EVERY_S = 1.0
# How runs side by side add up: the worst outcome of any is the phase's.
OUTCOMES = ("successful", "failed", "timeout", "canceled")


def merged(runs: list[PlaybookRun]) -> PlaybookRun:
    """One PlaybookRun from runs that went side by side: the worst status, every task in the
    order they started, their facts merged, every failure."""
    status = max((r.status for r in runs), key=lambda s: OUTCOMES.index(s)
                 if s in OUTCOMES else len(OUTCOMES))
    stats: dict[str, Any] = {}
    for run in runs:
        _merge(stats, run.stats)
    return PlaybookRun(
        status=status, rc=max(r.rc for r in runs),
        tasks=sorted((t for r in runs for t in r.tasks), key=lambda t: t.started_at or ""),
        stats=stats, failures=[f for r in runs for f in r.failures])


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def new_id(clock: Clock, prefix: str = "") -> str:
    """A sortable, unique id: 20261122T051530Z-3fa2c1."""
    return f"{prefix}{clock().strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


class Drill:
    """One run of an operation (drill, backup, restore, verify) against one environment."""

    def __init__(
        self, env: Environment, operation: str, ansible: AnsibleAdapter, progress: Progress,
        clock: Clock = utc_now, backup_id: str | None = None, note: str | None = None,
        monotonic: Monotonic = time.monotonic, chosen: str | None = None,
        target_time: dt.datetime | None = None, recovery: tuple[str, str] | None = None,
        confirmed: str | None = None, replace_existing: bool = False,
        operator: str | None = None, undoes: Journal | None = None,
    ) -> None:
        self.env, self.operation, self.ansible, self.progress, self.clock = (
            env, operation, ansible, progress, clock)
        # Timestamps come from `clock` (UTC wall time), durations from `monotonic`.
        self.monotonic = monotonic
        self.began = moment(clock, monotonic)
        self.marks: dict[str, Moment] = {}  # disaster declared, backup recorded, verified
        self.phase_jumps = 0.0  # the wall clock's steps within phases, seconds
        self.store = open_store(env)
        self.phase_names = ph.OPERATIONS[operation]
        self.manifest: Manifest | None = None
        self.restored: dict[str, dict[str, Any]] = {}
        self.cancelled = False
        self.saving = threading.RLock()  # the journal, saved by runs going side by side
        self.saved_at = 0.0  # when a task event last saved it (time.monotonic)
        self.rolling_back = False  # a signal then changes nothing: the rollback runs to its end
        self.finished = False  # the verdict is in: a signal then changes nothing either
        self.targets_changed = False
        # A point in time the physical clusters recover to (`drill --target-time`): the
        # data lost is measured from it, not from the disaster drtool declares.
        self.target_time = target_time
        # What `drtool restore` recovers the physical clusters to, when not the point their
        # backup recorded: (type, target), see postgres.recovery_of.
        self.recovery = recovery
        # `drtool recover`: the environment's name as its operator confirmed it (the guard
        # role asserts it), and whether live data on a recovery target may be replaced.
        self.confirmed = confirmed
        self.replace_existing = replace_existing
        # `drtool recover --undo`: the recovery whose targets are put back from its snapshot.
        self.undoes = undoes
        # A recovery's hosts without room for its safety snapshot (found at its preflight).
        self.snapshot_skip: list[str] = []
        # The running phase's start and time limit: every run of its playbook shares them.
        self.phase_clock: tuple[Moment, float] | None = None
        self.answers: dict[str, preflight.Answer] = {}
        drill_id = new_id(clock)
        # A drill of a backup the store holds (`drill --backup`) skips the backup phase: it
        # restores what the schedule made, and its RPO is what a disaster would have cost.
        self.existing = operation == "drill" and backup_id is not None
        self.chosen = chosen or (choose.NAMED if backup_id else choose.FRESH)
        self.backup_id = backup_id or (new_id(clock, "bk-") if ph.BACKUP in self.phase_names
                                       else None)
        # Why the backup's manifest could not be read (an invalid manifest, an unreachable
        # store): judged, and recorded, where the manifest is needed (_manifest_problem).
        self.manifest_error: ManifestInvalid | StoreError | None = None
        if backup_id:
            try:
                self.manifest = self.store.read_manifest(backup_id)  # ConfigError when unknown
            except (ManifestInvalid, StoreError) as exc:
                self.manifest_error = exc
        self.journal = Journal(
            drill_id=drill_id, env=env.name, operation=operation, started_at=iso(clock()) or "",
            pid=os.getpid(), objectives=env.objectives, inventory=str(env.inventory),
            phases=[PhaseRecord(name) for name in self.phase_names], tool_versions=base_versions(),
            scope=scope_of(env, inventory_version(env.inventory.folder)), note=note,
            operator=operator, undoes=undoes.drill_id if undoes else None,
        )
        if operation == ph.RECOVER:
            # The operator declares the disaster by running the recovery: its RTO runs from
            # here to the verified restore.
            self.journal.disaster_declared_at = self.journal.started_at
            self.marks[ph.DISASTER] = self.began
        if self.manifest is not None:
            self.journal.backup = self._backup_ref(self.manifest)
            self._bind_found_databases()
        elif backup_id:
            where = self.store.location_of(backup_id)
            self.journal.backup = BackupRef(backup_id, None, where.rstrip("/") + "/manifest.json",
                                            None, where, self.chosen)
        self.writer = JournalWriter(paths.evidence_dir(env.name) / drill_id, self.journal)
        self.ansible.use_control_dir(drill_id)
        self.lock = EnvironmentLock(paths.drtool_home() / "locks", env.name)
        self.target_locks = TargetLocks()
        self.sentinel_value = secrets.token_hex(16)
        # Where the history's head was anchored, or why it was not (after the journal).
        self.anchor: dict[str, Any] | None = None
        self.anchor_problem: str | None = None

    # -- running ------------------------------------------------------------------------

    def run(self) -> Journal:
        """Run every phase in order; always returns the finished journal (never raises for a
        failed phase: the failure is in the journal). Raises LockedError, before anything is
        written, when another operation holds the environment's lock."""
        self.lock.acquire(self.operation, self.journal.drill_id)
        try:
            if self.operation in ph.TOUCHES_TARGETS:
                # Another environment (or DRTOOL_HOME) naming the same targets is refused here.
                self.target_locks.acquire(target_lock_keys(self.env), self.operation,
                                          self.journal.drill_id, self.env.name)
        except BaseException:
            self.lock.release()
            raise
        # Before anything that can take time: a signal from here on aborts the operation
        # cleanly (rolled back, recorded), never half-way.
        previous = {sig: signal.signal(sig, self._interrupt)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._run_locked()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.target_locks.release()
            self.lock.release()

    def _run_locked(self) -> Journal:
        if not self.writer.save():  # nothing has been done: refuse rather than drill unrecorded
            raise OrchestrationError(f"cannot write the journal: {self.writer.problem}")
        adopt_fallback_journals(self.env.name)
        scrub_killed(self.env.name, skip=self.journal.drill_id)
        self._roll_back_killed()
        self._record_unrecorded()
        self._notify(notify.start_messages(self.env.notify, self.journal))
        try:
            for index, name in enumerate(self.phase_names, start=1):
                if self.cancelled or self.journal.failure:
                    break
                if name == ph.BACKUP and self.existing:
                    self.journal.phase(name).status = SKIPPED  # the store's backup is drilled
                    continue
                passed = self._run_phase(name, index)
                if self.writer.problem is not None:
                    self._evidence_lost(self.journal.phase(name))
                if not passed:
                    break
            if self.undoes is not None and not self.cancelled and not self.journal.failure:
                self._undo(self.undoes)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave targets half restored
            if os.environ.get("DRTOOL_DEBUG"):
                traceback.print_exc()
            phase = next((p for p in self.journal.phases if p.status == RUNNING), None)
            reason, kind = f"internal error: {type(exc).__name__}: {exc}", "orchestration"
            full = disk_error(exc)
            if full is not None:  # ansible-runner could not write the phase's artifacts
                self.writer.lost(full)
            if self.writer.problem is not None:
                reason, kind = f"cannot write the journal: {self.writer.problem}", "evidence"
            if phase is not None:
                self._fail(phase, reason, kind)
            else:
                self.journal.failure = Failure("", reason, kind)
        try:
            for record in self.journal.phases:
                if record.status == PENDING:
                    record.status = SKIPPED
            self.writer.save()
            if self._needs_rollback():
                self._rollback()
            self._release_leases()
            if self.writer.problem is not None and self.journal.failure is None:
                self.journal.failure = Failure(
                    "", f"cannot write the journal: {self.writer.problem}", "evidence")
            self._finish()
            self._settle_store()
        finally:
            self.ansible.close_ssh_masters()
            self.writer.save()
        self._copy_evidence()
        # After the verdict and before the history record, so that the record's hash covers
        # what was sent. A notification never changes the verdict.
        self._notify(notify.end_messages(self.env.notify, self.journal, str(self.writer.path)))
        if self.writer.problem is not None:
            return self.journal  # recorded once its journal is on disk (adopt_fallback_journals)
        try:
            with History(paths.history_db()) as history:
                entry = history.append(record_of(self.journal), self.writer.path)
                self._anchor(history, entry)
        except (sqlite3.Error, OSError) as exc:
            # The journal on disk is the evidence; the next operation records it.
            self.anchor_problem = f"the drill is not in the history yet: {exc}"
        return self.journal

    def _release_leases(self) -> None:
        """Give back the leases the snapshot phase took on the targets' hosts, when neither
        cleanup nor a rollback did (the snapshot or the backup failed, or a restore ended),
        and the snapshot of targets nothing changed. A rollback that failed keeps its leases
        on purpose (see playbooks/rollback.yml)."""
        if ph.SNAPSHOT not in self.phase_names:
            return
        if self.journal.phase(ph.SNAPSHOT).status in (PENDING, SKIPPED):
            return
        if self.journal.rollback is not None or (
                ph.CLEANUP in self.phase_names
                and self.journal.phase(ph.CLEANUP).status == PASSED):
            return
        # Nothing changed the targets (the snapshot or the backup failed, the drill was
        # stopped before its disaster, or a restore's backup failed its check before the
        # playbook began): the snapshot goes with the leases.
        discard = not self.targets_changed
        try:
            run = self.ansible.run("release", {**self._extravars(),
                                               "drtool_release_discard_snapshot": discard},
                                   self.writer.artifact_dir("release"))
        except OrchestrationError as exc:
            self.journal.warnings.append(f"the targets' leases were not released: {exc}")
            return
        if run.status != "successful":
            self.journal.warnings.append(
                f"the targets' leases were not released: {rollback.reasons(run)}")

    def _record_unrecorded(self) -> None:
        try:
            with History(paths.history_db()) as history:
                record_unrecorded(self.env.name, history, skip=self.journal.drill_id,
                                  locked=True)
        except (sqlite3.Error, OSError) as exc:
            self.journal.warnings.append(f"earlier journals could not be recorded: {exc}")

    def _evidence_lost(self, record: PhaseRecord) -> None:
        """The journal could not be written: the drill stops here and rolls back (exit 3).
        A phase that failed for its own reason keeps it; the lost evidence is a warning."""
        reason = f"cannot write the journal: {self.writer.problem}"
        if self.journal.failure is None:
            self._fail(record, reason, "evidence")
        elif reason not in self.journal.warnings:
            self.journal.warnings.append(reason)

    def _settle_store(self) -> None:
        """After the verdict: mark the backup verified when a drill (or verify) passed, and
        empty the staging folder of an off-site store. A store that cannot be reached here
        changes no verdict; the journal says so."""
        backup = self.journal.backup
        if backup is None:
            return
        try:
            if self.journal.status == PASSED and self.operation in ("drill", "verify"):
                self.store.mark_verified(backup.id, self.journal.drill_id)
            self.store.release(backup.id)
        except (StoreError, OSError) as exc:
            self.journal.warnings.append(f"backup {backup.id}: {exc}")

    def _copy_evidence(self) -> None:
        """Copy the finished journal to the Object Lock bucket, when one is set, and record
        the copy's version id. The copy is the journal as it was before this record (and the
        notifications) were added; its sha256 is recorded with it."""
        settings = self.env.evidence_s3
        if settings is None:
            return
        from drtool.store.evidence_copy import copy_evidence  # noqa: PLC0415 - boto3

        try:
            self.journal.evidence_copies.extend(copy_evidence(
                settings, self.env.name, self.journal.drill_id, [self.writer.path]))
        except (StoreError, OSError) as exc:
            self.journal.warnings.append(f"evidence copy failed: {exc}")
        self.writer.save()

    def _anchor(self, history: History, entry: Link) -> None:
        """Anchor the new head of the chain in the Object Lock bucket, when one is set (see
        drtool.store.anchor). The journal is sealed by now, so the outcome goes to
        `self.anchor` or `self.anchor_problem` for the caller to print; a failure changes
        no verdict, and the next anchor covers this record too."""
        settings = self.env.evidence_s3
        if settings is None:
            return
        from drtool.store.anchor import put_anchor  # noqa: PLC0415 - boto3

        try:
            self.anchor = put_anchor(settings, self.env.name, entry)
            history.note_anchor(entry.drill_id, self.anchor)
        except (StoreError, OSError, sqlite3.Error) as exc:
            self.anchor_problem = f"the history's head was not anchored: {exc}"

    def _notify(self, messages: list[notify.Request]) -> None:
        if not messages:
            return
        try:
            sent = notify.deliver_all(messages, self.env.notify)
        except Exception as exc:  # noqa: BLE001 (a bug in sending must not lose the evidence)
            sent = [notify.Notification(notify.redact(m.url), m.kind, m.event, "failed", 0,
                                        error=f"{type(exc).__name__}: {exc}", format=m.format)
                    for m in messages]
        self.journal.notifications.extend(sent)
        self.writer.save()

    def _interrupt(self, signum: int, _frame: Any) -> None:
        # A signal cancels the running phase, and the drill rolls back and ends aborted. One
        # that arrives during a rollback (a second Ctrl-C, systemd's stop) or after the
        # verdict changes nothing, and the journal says so. SIGKILL cannot be caught: the
        # next operation on the environment rolls back then (see drtool.drill.rollback).
        name = signal.Signals(signum).name
        if self.rolling_back:
            self.journal.warnings.append(f"{name} during the rollback: it ran to its end")
        elif self.finished:
            self.journal.warnings.append(f"{name} after the verdict: it changed nothing")
        else:
            self.cancelled = True

    def _run_phase(self, name: str, index: int) -> bool:
        record = self.journal.phase(name)
        started = moment(self.clock, self.monotonic)
        record.status, record.started_at = RUNNING, iso(started.wall)
        if name == ph.DISASTER:
            self.journal.disaster_declared_at = iso(started.wall)
            self.marks[ph.DISASTER] = started
        recorded = self.writer.save() or self.writer.fallback is not None
        self.progress.phase_started(name, index, len(self.phase_names))
        if name in ph.CHANGES_TARGETS and not recorded:
            # Nowhere on disk says this phase began: were drtool killed in it, the next
            # operation would take the targets for untouched and discard their snapshot.
            self._fail(record, f"cannot write the journal: {self.writer.problem}; "
                               f"the {name} was not started", "evidence")
            return self._end_phase(record, started)
        refused = self._ssh_preflight() if name == ph.PREFLIGHT else None
        if refused:  # the hosts are not ready: nothing may run, not even the playbook
            self._fail(record, refused, "preflight")
            return self._end_phase(record, started)
        unfit = self._manifest_problem() if name == ph.PREFLIGHT and self.existing else None
        if unfit:  # the backup to drill cannot be read: nothing is destroyed for it
            self._fail(record, *unfit)
            return self._end_phase(record, started)
        if name in (ph.RESTORE, ph.VERIFY):
            problem = self._fetch_backup(record) if name == ph.RESTORE else (
                self._manifest_problem())
            if problem:  # the backup is not fit to restore: the targets stay as they are
                self._fail(record, *problem)
                return self._end_phase(record, started)
        changed_before = self.targets_changed
        self.targets_changed |= name in ph.CHANGES_TARGETS
        # A hung phase (a lock never granted, a host that stopped answering) is stopped at
        # its limit, counted from the phase's start on the monotonic clock.
        limit = timing.phase_limit(name, self.env.phase_time_limits or {},
                                   self.env.objectives.rto_s)
        self.phase_clock = (started, limit)
        run = self._playbook(name, record, started, limit)
        if not self._failed_run(record, run, limit, changed_before):
            after = getattr(self, f"_after_{name}", None)
            problem = after(run, record) if after else None
            if isinstance(problem, tuple):  # (reason, kind)
                self._fail(record, *problem)
            elif problem:
                self._fail(record, problem, "preflight" if name == ph.PREFLIGHT else "check")
            elif record.status == RUNNING:  # a later run of the phase may have failed it
                record.status = PASSED
        elif name == ph.BACKUPS and run.status == "failed" and not self.cancelled:
            self._after_backups(run, record)  # the failure stands; the store is checked too
        return self._end_phase(record, started)

    def _failed_run(self, record: PhaseRecord, run: PlaybookRun, limit: float,
                    changed_before: bool) -> bool:
        """Record why a run of the phase's playbook did not succeed (stopped at the phase's
        time limit, cancelled by a signal, or failed); False when it succeeded."""
        name = record.name
        if run.status in ("canceled", "timeout") or self.cancelled:
            if run.status == "timeout" and not self.cancelled:
                self._fail(record, f"{name} exceeded its time limit of {limit:g} s", "timeout")
                why = "the time limit"
            else:
                self._fail(record, "interrupted by a signal", "interrupted", status=ABORTED)
                why = "the interrupt"
            # ansible-playbook is gone, but what its tasks started may not be: stop it now,
            # whether or not a rollback follows (a backup's pg_dump, a snapshot in progress).
            left = rollback.reap(self.ansible, self._extravars(), self.writer.artifact_dir("reap"))
            if left:
                self.journal.warnings.append(f"after {why}: {left}")
        elif run.status != "successful":
            if self._fail_from_run(record, run) and name == ph.RESTORE and not record.components:
                # The restore playbook checks every file before its first change: a backup
                # that failed its integrity check left the targets as they were (restores
                # side by side may have changed another component's meanwhile).
                self.targets_changed = changed_before
        else:
            return False
        return True

    def _end_phase(self, record: PhaseRecord, started: Moment) -> bool:
        """Record the phase's end (its duration on the monotonic clock, and a warning when
        the wall clock was stepped meanwhile), save the journal, report it; True when it
        passed."""
        ended = moment(self.clock, self.monotonic)
        record.ended_at, record.duration_s = iso(ended.wall), elapsed(started, ended)
        jump = clock_jump(started, ended)
        self.phase_jumps += jump
        warning = jump_warning(jump, record.name)
        if warning:
            self.journal.warnings.append(warning)
        if record.status == PASSED and record.name in (ph.BACKUP, ph.VERIFY):
            # The backup's consistency time is known (the RPO's start); the restore is
            # verified (the RTO's end).
            self.marks[record.name] = ended
        if record.name == ph.VERIFY and record.status == PASSED:
            self.journal.verified_at = record.ended_at
        self.writer.save()
        self.progress.phase_ended(record)
        return record.status == PASSED

    def _playbook(self, name: str, record: PhaseRecord, started: Moment,
                  limit_s: float) -> PlaybookRun:
        """Run the phase's playbook, stopped (status "timeout") once the phase has run
        `limit_s` seconds since `started`, or cancelled by a signal. The restore runs once
        per data component, side by side (see _side_by_side)."""
        artifacts = self.writer.artifact_dir(name)
        record.artifacts = self.writer.relative(artifacts)
        earlier = list(record.tasks)  # drtool's own, such as a download before the playbook
        units = [c for c in self.env.components if c.target is not None and c.kind != "service"]
        left_s = max(0.0, limit_s - elapsed(started, moment(self.clock, self.monotonic)))
        waves = service_kind.waves(self.env.components)
        hosts = self._hosts_of(name)
        if name == ph.RESTORE and len(units) > 1:
            # Every component's backup files first, in one run: a bad file then fails the
            # restore before any target was touched, as a single run would.
            run = self.ansible.run(name, {**self._extravars(), "drtool_restore_step": "integrity"},
                                   artifacts / "integrity", self._on_event(record),
                                   lambda: self.cancelled, run_id=self.journal.drill_id,
                                   timeout_s=left_s, monotonic=self.monotonic, limit=hosts)
            if run.status == "successful" and not self.cancelled:
                left_s = max(0.0, limit_s - elapsed(started, moment(self.clock, self.monotonic)))
                run = merged([run, self._side_by_side(name, record, artifacts, units, left_s)])
        elif name == ph.RESTART and len(waves) > 1:
            run = self._in_waves(name, record, artifacts, waves, started, limit_s)
        elif name == ph.BACKUPS and hosts is None:
            run = PlaybookRun(status="successful", rc=0)  # no repository: drtool's store only
        else:
            run = self.ansible.run(name, self._extravars(), artifacts, self._on_event(record),
                                   lambda: self.cancelled, run_id=self.journal.drill_id,
                                   timeout_s=left_s, monotonic=self.monotonic, limit=hosts)
        record.tasks = earlier + run.tasks
        return run

    def _hosts_of(self, name: str, only: list[str] | None = None) -> list[str] | None:
        """The hosts phase `name` does anything on (of components `only`, when given): the
        sources' for the backup, the targets' and the services' (and the team's checks', for
        verify) for the others (a drill's roles check, the backup's second run, limits
        itself to its PostgreSQL targets). Only
        they run the playbook: every other host would skip every task, at the cost of a
        process per task. None for preflight: every host."""
        if name == ph.PREFLIGHT:
            # A recovery's: the hosts it acts on (its sources may be gone); else every host.
            return self._hosts_of(ph.VERIFY) if self.operation in ph.RECOVERY_SIDE else None
        if name == ph.BACKUPS:  # only the repositories of methods that keep their own
            return sorted({c.source.host for c in kinds.of_family(self.env.components, "postgres")
                           if c.source is not None
                           and methods.keeps_repository(postgres_kind.method_of(c))}) or None
        side = kinds.SOURCE if name == ph.BACKUP else kinds.TARGET
        hosts = {place.host for c in self.env.components
                 if (only is None or c.name in only) and (place := c.place(side)) is not None}
        if name == ph.VERIFY and only is None:
            hosts |= {check.host for check in self.env.checks}
        return sorted(hosts) or None

    def _on_event(self, record: PhaseRecord) -> Any:
        def on_event(event: dict[str, Any], task: TaskRecord | None) -> None:
            if event.get("event") == "playbook_on_task_start":
                data = event.get("event_data", {})
                self.progress.task_started(record.name, data.get("task", ""), None)
            if task is not None:
                with self.saving:  # runs side by side report from their own threads
                    record.tasks.append(task)
                    # A crash mid-phase still leaves the tasks done so far, all but the last
                    # second's. Not a save per event: ansible-runner gives the events left
                    # when ansible-playbook ends 5 s to be handled, and fsyncs of a growing
                    # journal from runs side by side took longer.
                    now = time.monotonic()
                    if task.status in ("failed", "unreachable") or (
                            now - self.saved_at >= SAVE_EVERY_S):
                        self.writer.save()
                        self.saved_at = now
        return on_event

    def _in_waves(self, name: str, record: PhaseRecord, artifacts: Any, waves: list[list[str]],
                  started: Moment, limit_s: float) -> PlaybookRun:
        """Run the phase's playbook once per wave of services (drtool_only_components), one
        wave after the other, so that a service starts only once those it follows answer
        their health checks; the first wave that fails ends the phase."""
        runs = []
        for index, wave in enumerate(waves, start=1):
            left_s = max(0.0, limit_s - elapsed(started, moment(self.clock, self.monotonic)))
            run = self.ansible.run(
                name, {**self._extravars(), "drtool_only_components": wave},
                artifacts / f"wave-{index}", self._on_event(record), lambda: self.cancelled,
                run_id=self.journal.drill_id, timeout_s=left_s, monotonic=self.monotonic,
                limit=self._hosts_of(name, wave))
            runs.append(run)
            if run.status != "successful" or self.cancelled:
                break
        return merged(runs)

    def _side_by_side(self, name: str, record: PhaseRecord, artifacts: Any,
                      units: list[kinds.Component], limit_s: float) -> PlaybookRun:
        """Run the phase's playbook once per component (drtool_only_components), all at
        once: restores of independent components overlap, and the RTO is the slowest one's,
        not their sum. Each run's start, end and outcome go into the phase's `components`;
        the runs' tasks, facts and failures are merged into one PlaybookRun."""
        def one(component: kinds.Component) -> PlaybookRun:
            entry: dict[str, Any] = {"component": component.name, "kind": component.kind,
                                     "host": component.target.host if component.target else None}
            begun = moment(self.clock, self.monotonic)
            entry["started_at"] = iso(begun.wall)
            with self.saving:
                record.components.append(entry)
                self.writer.save()
            try:
                run = self.ansible.run(
                    name, {**self._extravars(), "drtool_only_components": [component.name],
                           "drtool_restore_step": "restore"},
                    artifacts / component.name, self._on_event(record), lambda: self.cancelled,
                    run_id=self.journal.drill_id, timeout_s=limit_s, monotonic=self.monotonic,
                    limit=self._hosts_of(name, [component.name]))
            except OrchestrationError as exc:
                run = PlaybookRun(status="failed", rc=-1, failures=[TaskFailure(
                    "drtool", f"{name} {component.name}", exc.message, False, {})])
            for failure in run.failures:
                failure.component = component.name
            done = moment(self.clock, self.monotonic)
            with self.saving:
                entry.update(ended_at=iso(done.wall), duration_s=elapsed(begun, done),
                             status=PASSED if run.status == "successful" else FAILED)
                self.writer.save()
            return run

        with ThreadPoolExecutor(max_workers=len(units)) as pool:
            runs = list(pool.map(one, units))
        return merged(runs)

    def _extravars(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "drtool_env": self.env.name,
            "drtool_drill_id": self.journal.drill_id,
            "drtool_sentinel_value": self.sentinel_value,
            "drtool_touches_targets": self.operation in ph.TOUCHES_TARGETS,
            # A restore keeps its safety snapshot for its operator: files beside the target,
            # never a copy of a database left in the target's cluster (roles/drtool_postgres).
            "drtool_snapshot_kept": self.operation in ("restore", *ph.RECOVERY_SIDE),
            "drtool_controller": paths.controller_id(),
            # The backup playbook's first run dumps; the roles check is a run of its own.
            "drtool_backup_step": "dump",
        }
        if self.operation in ph.RECOVERY_SIDE:
            # The roles act on each component's recovery side; the guard role's recovery
            # rule asserts the name the operator confirmed.
            values.update(drtool_target_side="recovery",
                          drtool_recover_confirmed=self.confirmed or "")
        if self.operation == ph.RECOVER:
            values.update(
                drtool_snapshot_room_of=preflight.snapshot_room_paths(self.env.components),
                drtool_snapshot_skip_hosts=self.snapshot_skip)
        if self.backup_id:
            # Where the backup lives in the store, on this machine. Where each host stages it
            # (drtool_backup_path) and keeps safety snapshots (drtool_snapshot_path) is the
            # inventory's to say.
            values["drtool_backup_id"] = self.backup_id
            values["drtool_store_backup_path"] = str(self.store.backup_path(self.backup_id))
        values.update(rollback.found_databases(self.env.components))
        if self.target_time is not None:
            values["drtool_recovery_target_time"] = self.target_time.isoformat()
        if self.manifest is not None and self.manifest.physical:
            # A restore may be asked for another target than its backup recorded; a drill to
            # a time recorded that time (and the backup before it) in its manifest.
            asked = self.recovery if self.operation in ("restore", ph.RECOVER) else None
            values["drtool_postgres_recovery_of"] = postgres_kind.recovery_of(
                self.manifest, asked)
        return values

    # -- failures and rollback ------------------------------------------------------------

    def _fail(self, record: PhaseRecord, reason: str, kind: str, hosts: list[str] | None = None,
              status: str = FAILED) -> None:
        record.status, record.error = status, reason
        if self.journal.failure is None:
            self.journal.failure = Failure(record.name, reason, kind, hosts or [])

    def _fail_from_run(self, record: PhaseRecord, run: PlaybookRun) -> bool:
        """Record why the playbook failed; True when the failure was the backup's integrity."""
        if not run.failures:
            said = f": {run.error}" if run.error else ""
            self._fail(record, f"ansible-playbook ended {run.status} (rc {run.rc}){said}",
                       "orchestration")
            return False
        hosts = sorted({f.host for f in run.failures})
        integrity = [f for f in run.failures if f.result.get("drtool_check_failed")]
        for failure in integrity:
            for problem in failure.result.get("problems", []):
                self.journal.checks.append(Check(
                    "backup.integrity", f"{failure.host}:{problem.get('path')}",
                    problem.get("expected"), problem.get("actual"), FAILED,
                    problem.get("problem", "")))
        first = (integrity or run.failures)[0]
        what = "unreachable" if first.unreachable else "failed"
        component = first.component or self._component_on(first.host, record.name)
        where = f"{first.host}: {component}" if component else first.host
        reason = f"{where}: task '{first.task}' {what}: {first.message}".strip()
        locked = first.result.get("drtool_locked") or any(
            isinstance(item, dict) and item.get("drtool_locked")
            for item in first.result.get("results") or [])  # a loop's items
        kind = "check" if integrity else "locked" if locked else "orchestration"
        self._fail(record, reason, kind, hosts)
        return bool(integrity)

    def _component_on(self, host: str, phase: str, side: str | None = None) -> str | None:
        """The component a failure on `host` in `phase` was about, when only one of those
        the phase runs there (on `side`: by default the sources for the backup, else the
        targets) is on that host (its name, else None)."""
        side = side or (kinds.SOURCE if phase == ph.BACKUP else kinds.TARGET)

        def taken(component: kinds.Component) -> bool:
            if phase == ph.RESTART:
                return component.kind == "service"
            return phase not in (ph.BACKUP, ph.SNAPSHOT, ph.RESTORE) or component.kind != "service"

        names = [c.name for c in self.env.components if taken(c)
                 and (place := c.place(side)) is not None and place.host == host]
        return names[0] if len(names) == 1 else None

    def _needs_rollback(self) -> bool:
        """Roll back when the drill did not pass, a target was changed, and a safety
        snapshot exists to roll back to."""
        if self.journal.failure is None and not self.cancelled:
            return False
        if self.operation == ph.RECOVER:
            return False  # never undone unasked: its snapshot is kept (core.rollback.RECOVER)
        snapshot = any(r.name == ph.SNAPSHOT and r.status == PASSED for r in self.journal.phases)
        return snapshot and self.targets_changed

    def _rollback(self) -> None:
        self._put_back(self._extravars(), cleanup_started(self.journal))

    def _undo(self, recovery: Journal) -> None:
        """`drtool recover --undo`: put the recovery's targets back from the safety snapshot
        it kept, with the rollback playbook under that recovery's id (its snapshot folders
        are named by it), and judge them against that snapshot like any rollback. Judged
        again here, holding the environment's lock: a recovery that ran since the operator
        confirmed must be undone first."""
        journals = [j for _p, j in load_journals(paths.evidence_dir(self.env.name))]
        problem = undo_problem(recovery.drill_id, journals)
        if problem and any(j.drill_id == recovery.drill_id and j.status == RUNNING
                           for j in journals):
            # We hold the lock: it was killed, and could not be closed (see the warnings).
            problem = (f"recovery {recovery.drill_id} was killed and could not be closed: "
                       "what it left running could not be stopped")
        drift = undo_drift(recovery.scope, self.journal.scope)
        problem = problem or ("the recovery targets changed since it ran: " + "; ".join(drift)
                              if drift else None)
        if problem:
            self.journal.failure = Failure("", f"cannot undo {recovery.drill_id}: {problem}",
                                           "guard")
            return
        store = (self.store.backup_path(recovery.backup.id) if recovery.backup else None)
        extravars = {**rollback.extravars_of(recovery, store),
                     "drtool_recover_confirmed": self.confirmed or "",
                     "drtool_controller": paths.controller_id()}
        # The targets are leased under the recovery's id, as its snapshot phase did: the
        # rollback playbook checks them, gives back those it put back and keeps the others.
        try:
            run = self.ansible.run("lease", extravars, self.writer.artifact_dir("lease"))
        except OrchestrationError as exc:
            self.journal.failure = Failure("", f"the targets could not be leased: {exc}",
                                           "orchestration")
            return
        if run.status != "successful" or self.cancelled:
            if run.status != "successful":
                self._fail_from_run(PhaseRecord("lease"), run)
            # Nothing was put back: the leases taken go back, the snapshot stays.
            try:
                self.ansible.run("release", {**extravars,
                                             "drtool_release_discard_snapshot": False},
                                 self.writer.artifact_dir("release"))
            except OrchestrationError as exc:
                self.journal.warnings.append(f"the targets' leases were not released: {exc}")
            return
        record = self._put_back(extravars, False)
        if record.status != PASSED:
            self.journal.failure = Failure(
                ph.ROLLBACK, f"recovery {recovery.drill_id} was not undone: {record.error}",
                "check" if verdict.failed(self.journal.checks) else "orchestration")

    def _put_back(self, extravars: dict[str, Any], cleanup: bool) -> PhaseRecord:
        """Run the rollback playbook with `extravars` as this run's rollback record, and
        keep the checks of what it restored."""
        record = PhaseRecord(ph.ROLLBACK, status=RUNNING)
        self.journal.rollback = record
        self.writer.save()
        self.progress.phase_started(ph.ROLLBACK, 0, 0)
        self.rolling_back = True

        def on_event(_event: dict[str, Any], task: TaskRecord | None) -> None:
            if task is not None:
                record.tasks.append(task)
                self.writer.save()

        try:
            self.writer.room_for_artifacts()  # a full home sends them to the fallback folder
            artifacts = self.writer.artifact_dir(ph.ROLLBACK)
            record.artifacts = self.writer.relative(artifacts)
            self.journal.checks.extend(rollback.roll_back(
                self.ansible, extravars, artifacts, record, cleanup, self.clock, on_event))
        finally:
            self.rolling_back = False
        self.writer.save()
        self.progress.phase_ended(record)
        return record

    def _roll_back_killed(self) -> None:
        """Before anything else: roll back the targets of any drill of this environment that
        was killed after it changed them (its journal says running; we hold the lock, so it
        is not). An operation that does not touch the targets only warns. A rollback that
        fails stops this operation: it must not run on targets in an unknown state."""
        if self.operation in ph.TOUCHES_TARGETS:
            self.journal.warnings.extend(rollback.release_killed(
                self.ansible, self.env.name, self.journal.drill_id, self.clock,
                skip=self.journal.drill_id))
            self.journal.warnings.extend(rollback.close_killed_undos(
                self.ansible, self.env.name, self.journal.drill_id, self.clock,
                skip=self.journal.drill_id))
        for path, killed in rollback.awaiting(self.env.name, skip=self.journal.drill_id):
            if self.operation not in ph.TOUCHES_TARGETS:
                self.journal.warnings.append(
                    f"drill {killed.drill_id} was killed after it changed the restore targets: "
                    f"roll them back with `drtool rollback --env {self.env.name}`")
                continue
            self.progress.phase_started(f"rollback of killed drill {killed.drill_id}", 0, 0)
            store_path = self.store.backup_path(killed.backup.id) if killed.backup else None
            self.rolling_back = True
            try:
                record = rollback.roll_back_killed(self.ansible, path, killed, store_path,
                                                   self.journal.drill_id, self.clock)
            finally:
                self.rolling_back = False
            self.progress.phase_ended(record)
            self.journal.recovered.append({"drill_id": killed.drill_id,
                                           "rollback": record.status, "error": record.error})
            self.writer.save()
            if record.status != PASSED:
                self.journal.failure = Failure(
                    "", f"the targets of killed drill {killed.drill_id} could not be rolled "
                        f"back: {record.error}", "orchestration")
                return

    # -- drtool's own preflight, over SSH ----------------------------------------------------

    def _ssh_preflight(self) -> str | None:
        """Ask every host, in parallel, what the drill needs; record every check. Returns the
        failures as one line, or None when all passed."""
        hosts = self.env.hosts
        components = list(self.env.components)
        if self.operation in ph.RECOVERY_SIDE:
            # On the day the sources may be gone: a recovery asks only the hosts it acts on.
            acting = set(self._hosts_of(ph.VERIFY) or ())
            hosts = {h: s for h, s in hosts.items() if h in acting}
            components = [dataclasses.replace(c, source=None) for c in components]
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            futures = {host: pool.submit(ssh.ask, settings, preflight.commands_for(
                host, settings, components)) for host, settings in hosts.items()}
            self.answers = {host: future.result() for host, future in futures.items()}
        try:
            newest = next((b for b in self.store.catalog() if b.complete), None)
        except StoreError:
            newest = None  # the backup phase will say that the store cannot be reached
        checks = preflight.judge(self.answers, newest.size if newest else None)
        self.journal.checks.extend(checks)
        bad = verdict.failed(checks)
        return "; ".join(check.describe() for check in bad) if bad else None

    def _after_preflight(self, run: PlaybookRun, _record: PhaseRecord
                         ) -> str | tuple[str, str, list[str]] | None:
        """Judge what the Ansible preflight found: the restore targets' identities (a guard
        refusal, exit 2, when one is a source's) and pg_restore's version."""
        postgres = run.stats.get("drtool_postgres_preflight", {})
        redis = run.stats.get("drtool_redis_preflight", {})
        if ph.BACKUP in self.phase_names and not self.existing:
            # Only a fresh backup takes what the source holds now; any other operation
            # works on its manifest's databases (bound when it was read).
            self._bind_found_databases(run.stats.get("drtool_postgres_found") or {})
        facts = identity.side_facts(postgres, redis)
        for entry in (self.journal.scope or {}).get("components", []):  # the evidence
            entry["identity"] = {side: facts[(entry["name"], side)]
                                 for side in (kinds.SOURCE, kinds.TARGET)
                                 if (entry["name"], side) in facts}
        if self.operation == ph.RECOVER:
            guarded = identity.recovery_checks(facts, self.env.components,
                                               seen_sources(self.env.name))
            occupied = preflight.occupancy_checks(
                postgres, redis, self.env.components, self.replace_existing,
                run.stats.get("drtool_files_preflight", {}))
            self.journal.checks.extend(occupied)
            full = verdict.failed(occupied)
            if full and not verdict.failed(guarded):
                self.journal.checks.extend(guarded)
                return ("; ".join(f"{c.target}: {c.detail}" for c in full), "guard",
                        sorted({c.target.split("/")[0] for c in full}))
            # A safety snapshot where there is room for one; where there is not, the
            # recovery goes on without, and says so (it cannot be undone there).
            self.snapshot_skip, tight = preflight.snapshot_room(
                run.stats.get("drtool_snapshot_room", {}), postgres, self.env.components,
                redis)
            self.journal.warnings.extend(tight)
        elif self.operation == ph.UNDO_RECOVER and self.undoes is not None:
            # An undo puts back what a snapshot of these very servers held: the same ones.
            guarded = identity.undo_checks(facts, self.env.components, self.undoes)
        elif self.operation in ph.TOUCHES_TARGETS:
            guarded = identity.identity_checks(facts, self.env.components,
                                               self.env.production_hosts())
        if self.operation in ph.TOUCHES_TARGETS:
            self.journal.checks.extend(guarded)
            refused = verdict.failed(guarded)
            if refused:
                # A check names host/component; the failure names the hosts, as every other.
                host_of = {identity.where(c): c.target.host for c in self.env.components
                           if c.target is not None}
                return ("production guard: " + "; ".join(c.describe() for c in refused),
                        "guard", list(dict.fromkeys(host_of.get(c.target, c.target)
                                                    for c in refused)))
            try:  # the same targets under other names or addresses: one machine, one port
                self.target_locks.acquire(identity_lock_keys(self.env, facts), self.operation,
                                          self.journal.drill_id, self.env.name)
            except LockedError as exc:
                return exc.message, "locked", []
        versions = []
        for component in kinds.of_family(self.env.components, "postgres"):
            if component.source is None or component.target is None:
                continue
            source = (postgres.get(component.name) or {}).get(kinds.SOURCE) or {}
            if methods.is_physical(postgres_kind.method_of(component)):
                if self.operation == ph.UNDO_RECOVER:
                    continue  # it puts back a copy of the data directory: no pgBackRest
                mine = (postgres.get(component.name) or {}).get(kinds.TARGET) or {}
                part = self.manifest.physical_part(component.name) if self.manifest else None
                if not source and part is not None:
                    # A recovery does not ask its sources: the backup says what wrote it.
                    source = {"server_version": part.server_version,
                              "pgbackrest_version": part.pgbackrest_version}
                versions += preflight.physical_checks(
                    identity.where(component), component.source.host, source, mine)
                if ph.RESTORE in self.phase_names:  # a backup alone writes nothing there
                    versions += preflight.room_check(
                        identity.where(component), mine,
                        snapshot=ph.SNAPSHOT in self.phase_names
                        and component.target.host not in self.snapshot_skip)
                continue
            answer = self.answers.get(component.target.host)
            version = answer.outputs.get("version.pg_restore", (1, ""))[1] if answer else ""
            server = str(source.get("server_version", ""))
            if not server and self.manifest is not None:
                # A recovery does not ask its sources: the backup says what they ran.
                server = next((p.server_version for p in self.manifest.postgres
                               if p.component == component.name), "")
            if not server and self.operation == ph.UNDO_RECOVER:
                # An undo restores the target's own dump: the target's server wrote it.
                server = str(((postgres.get(component.name) or {}).get(kinds.TARGET) or {})
                             .get("server_version", ""))
            versions.append(preflight.pg_restore_check(
                identity.where(component), version, component.source.host, server))
        self.journal.checks.extend(versions)
        targets = [c for c in kinds.of_family(self.env.components, "redis") if c.target]
        files = preflight.redis_file_checks(  # the RDB a restore replaces is the one loaded
            {identity.where(c): (redis.get(c.name) or {}).get(kinds.TARGET) or {}
             for c in targets},
            [identity.where(c) for c in targets]
        ) if self.operation in ph.TOUCHES_TARGETS else []
        self.journal.checks.extend(files)
        return preflight.refusal([*versions, *files])

    # -- what each phase's results mean -----------------------------------------------------

    def _after_backups(self, run: PlaybookRun, record: PhaseRecord) -> str | tuple[str, str] | None:
        """Judge the repositories the playbook checked, then check drtool's store (also
        when the playbook failed on a host: drtool's own store does not depend on it)."""
        found = run.stats.get("drtool_backups_checked", {})
        checks = backups_check.repository_checks(found)
        labels = {name: result["labels"] for name, result in found.items()
                  if isinstance(result.get("labels"), list)}
        for result in found.values():
            self.journal.warnings.extend(str(w) for w in result.get("warnings") or [])
        try:
            stored, warnings = backups_check.store_checks(self.store, self.backup_id, labels,
                                                          self._why_stop)
        except StoreError as exc:
            stored, warnings = [], []
            checks.append(Check(backups_check.STORE_CHECK, self.store.location,
                                "a store that answers", "unreachable", FAILED, exc.message))
        checks += stored
        self.journal.checks.extend(checks)
        self.journal.warnings.extend(warnings)
        if self.cancelled:
            self._fail(record, "interrupted by a signal", "interrupted", status=ABORTED)
            return None
        why = self._why_stop()
        if why:
            return why, "timeout"
        if not checks and run.status == "successful":
            return ("nothing to verify: the store holds no backup with files to check and no "
                    "component keeps a repository of its own")
        failed = verdict.failed(checks)
        if failed:
            return "; ".join(f"{c.name} {c.target}: {c.detail}" for c in failed)
        return None

    def _why_stop(self) -> str | None:
        """Why work the phase does itself (not its playbook) must stop now: a signal, or
        the phase's time limit passed."""
        if self.cancelled:
            return "interrupted by a signal"
        if self.phase_clock is not None:
            started, limit = self.phase_clock
            if elapsed(started, moment(self.clock, self.monotonic)) > limit:
                return f"{ph.BACKUPS} exceeded its time limit of {limit:g} s"
        return None

    def _after_backup(self, run: PlaybookRun, record: PhaseRecord) -> str | tuple[str, str] | None:
        if self.backup_id is None:
            return "the backup phase ran without a backup id"
        try:
            manifest = build_manifest(
                self.backup_id, self.env.name, iso(self.clock()) or "",
                run.stats.get("drtool_postgres_backup", {}),
                run.stats.get("drtool_redis_backup", {}),
                {c.name: c.source.host for c in self.env.components if c.source},
                drill_id=self.journal.drill_id,
                files_results=run.stats.get("drtool_files_backup", {}),
                physical_results=run.stats.get("drtool_postgres_physical", {}))
        except (KeyError, ValueError, TypeError) as exc:
            return f"the backup roles did not report a complete manifest: {exc}"
        self.store.write_manifest(manifest)
        # On the staged files, before they go off-site; a refusal leaves a complete backup.
        refused = self._check_target_roles(record)
        if record.status == ABORTED:  # the roles check's run was interrupted: stop here
            return None
        try:  # to S3, when that is the store: the backup phase ends when it is off-site
            manifest, transfer = self.store.publish(manifest)
        except (StoreError, ConfigError) as exc:
            if refused:  # the phase failed for the roles; this is news all the same
                self.journal.warnings.append(f"the backup could not be stored: {exc.message}")
                return None
            return f"the backup could not be stored: {exc.message}", "orchestration"
        self._record_transfer(record, transfer)
        self.manifest = manifest
        self.journal.backup = self._backup_ref(manifest)
        self._bind_found_databases()
        for part in manifest.postgres[:1]:
            self.journal.tool_versions["postgresql_server"] = part.server_version
        for part in [p for p in manifest.postgres if p.pg_dump_version][:1]:
            self.journal.tool_versions["pg_dump"] = part.pg_dump_version
        for physical in manifest.physical[:1]:
            self.journal.tool_versions["pgbackrest"] = physical.pgbackrest_version
        for rd in manifest.redis[:1]:
            self.journal.tool_versions["redis_server"] = rd.redis_version
        return None

    def _check_target_roles(self, record: PhaseRecord) -> bool:
        """A drill's last step of its backup, once the manifest is written: can the PostgreSQL
        targets take the roles and tablespaces the dump needs (the backup playbook's `roles`
        step, on those targets only)? True when it failed, recorded as the phase's failure."""
        # A physical method's restore carries the cluster's roles with it: only dumps ask.
        hosts = sorted({c.target.host for c in kinds.of_family(self.env.components, "postgres")
                        if c.target is not None
                        and not methods.is_physical(postgres_kind.method_of(c))})
        if self.operation not in ph.TOUCHES_TARGETS or not hosts or self.phase_clock is None:
            return False
        started, limit = self.phase_clock
        left_s = max(0.0, limit - elapsed(started, moment(self.clock, self.monotonic)))
        before = list(record.tasks)
        run = self.ansible.run(
            ph.BACKUP, {**self._extravars(), "drtool_backup_step": "roles"},
            self.writer.artifact_dir(ph.BACKUP) / "roles", self._on_event(record),
            lambda: self.cancelled, run_id=self.journal.drill_id, timeout_s=left_s,
            monotonic=self.monotonic, limit=hosts)
        record.tasks = before + run.tasks
        for failure in run.failures:
            failure.component = failure.component or self._component_on(
                failure.host, ph.BACKUP, kinds.TARGET)
        return self._failed_run(record, run, limit, self.targets_changed)

    def _fetch_backup(self, record: PhaseRecord) -> tuple[str, str] | None:
        """Bring an off-site backup into the staging folder and check every file against
        the manifest; (reason, kind) when it is not fit to restore."""
        unreadable = self._manifest_problem()
        if unreadable:
            return unreadable
        if self.manifest is None:
            return "the restore needs a backup manifest and none is known", "orchestration"
        try:
            problems, transfer = self.store.fetch(self.manifest)
        except StoreError as exc:
            return f"the backup could not be fetched: {exc.message}", "orchestration"
        self._record_transfer(record, transfer)
        for problem in problems:
            self.journal.checks.append(Check(
                "backup.integrity", f"store:{problem['object']}", problem.get("expected"),
                problem.get("actual"), FAILED, problem.get("problem", "")))
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            return (f"the backup failed its integrity check before anything was restored: "
                    f"{problems[0]['problem']}{more}"), "check"
        return None

    def _bind_found_databases(self, listed: Mapping[str, Sequence[str]] | None = None) -> None:
        """Give the components declared with `databases: all` their databases: those the
        backup's manifest holds once it is known, else those the preflight `listed` on the
        source (a fresh drill snapshots and backs up exactly those). Every later phase (and
        a rollback, from the journal's scope) works on them."""
        if not any(c.all_databases for c in self.env.components):
            return
        if self.manifest is not None:
            manifest = self.manifest
            self.env = dataclasses.replace(self.env, components=tuple(
                postgres_kind.found_in(c, manifest) for c in self.env.components))
        elif listed:
            self.env = dataclasses.replace(self.env, components=tuple(
                postgres_kind.with_found(c, listed) for c in self.env.components))
        else:
            return
        found = {c.name: list(c.databases) for c in self.env.components if c.all_databases}
        scope = self.journal.scope or {}
        for entry in scope.get("components", []):
            if entry.get("name") in found:
                entry["databases"] = found[entry["name"]]
        for entry in scope.get("data_stores", []):
            if entry.get("component") in found:
                entry["database"] = ", ".join(found[entry["component"]])

    def _manifest_problem(self) -> tuple[str, str] | None:
        """(reason, kind) when the backup's manifest could not be read: an invalid one fails
        the backup's integrity (a failed backup.integrity check), an unreachable store is an
        orchestration failure; a cluster declared with `databases: all` of which the backup
        holds no database cannot be restored either. Either way no target is touched."""
        empty = [c.name for c in self.env.components if c.all_databases and not c.databases]
        if self.manifest is not None and empty:
            return (f"the backup {self.manifest.backup_id} holds no database of "
                    f"{', '.join(empty)} (databases: all)"), "check"
        error = self.manifest_error
        if isinstance(error, ManifestInvalid):
            self.journal.checks.append(Check("backup.integrity", f"store:{error.where}",
                                             "a valid manifest", error.problem, FAILED,
                                             error.message))
            return f"the backup failed its integrity check: {error.message}", "check"
        if error is not None:
            return f"the backup could not be fetched: {error.message}", "orchestration"
        return None

    def _record_transfer(self, record: PhaseRecord, transfer: Transfer | None) -> None:
        """An upload or download is timed like a task, on the machine running drtool."""
        if transfer is None:
            return
        self.journal.transfers.append(dataclasses.asdict(transfer))
        rate = transfer.bytes / transfer.seconds / 1e6 if transfer.seconds else 0.0
        record.tasks.append(TaskRecord(
            "drtool", f"{transfer.direction} {transfer.objects} objects, {transfer.bytes:,} "
            f"bytes ({rate:.1f} MB/s) {transfer.location}", f"drtool.store.{transfer.direction}",
            "ok", transfer.started_at, transfer.ended_at, round(transfer.seconds, 3)))
        self.writer.save()

    def _after_restore(self, run: PlaybookRun, record: PhaseRecord) -> str | None:
        # A physical restore's steps, each timed by the module that ran them.
        for component, done in sorted(run.stats.get("drtool_postgres_physical_restore",
                                                    {}).items()):
            host = next((c.target.host for c in self.env.components
                         if c.name == component and c.target is not None), "")
            record.tasks += postgres_kind.restore_steps(component, host, done)
        self.restored = {
            "postgres": facts.by_database(run.stats.get("drtool_postgres_restore", {})),
            "redis": dict(run.stats.get("drtool_redis_restore", {})),
        }
        self.journal.rpo_measured_from = {
            f"{store}:{key}": found.get("heartbeat_at")
            for store, parts in self.restored.items() for key, found in parts.items()
        }
        self.journal.checks.extend(postgres_kind.role_checks(facts.placed(
            self.env.components, facts.by_database(run.stats.get("drtool_postgres_roles", {})))))
        return None

    def _after_verify(self, run: PlaybookRun, _record: PhaseRecord) -> str | None:
        if self.manifest is None:
            return "verify needs a backup manifest and none is known"
        checks = facts.verify_checks(self.env.components, self.manifest, run.stats,
                                     self.restored, self.env.growing_tables)
        checks += team_checks.judge_all(self.env.checks,
                                        run.stats.get("drtool_checks_measured") or {})
        self.journal.checks.extend(checks)
        bad = verdict.failed(checks)
        if not checks:
            return "verify measured nothing: no facts were published"
        if bad:
            more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
            return "; ".join(check.describe() for check in bad[:3]) + more
        return None

    # -- the end ------------------------------------------------------------------------------

    def _finish(self) -> None:
        self.finished = True
        journal = self.journal
        ended = moment(self.clock, self.monotonic)
        # Phases warned of their own steps of the clock; this catches the rest (the rollback,
        # the bookkeeping between phases).
        warning = jump_warning(clock_jump(self.began, ended) - self.phase_jumps,
                               f"the {self.operation}, outside its phases")
        if warning:
            journal.warnings.append(warning)
        if self.operation in ("drill", ph.RECOVER):
            declared = self.marks.get(ph.DISASTER)
            journal.rto_s = timing.rto_seconds(declared, self.marks.get(ph.VERIFY))
            if self.manifest is not None:
                journal.rpo_backup_age_s = timing.rpo_backup_age(
                    declared, parse_iso(self.manifest.consistent_at), self.marks.get(ph.BACKUP))
            journal.rpo_measured_s = timing.rpo_measured(
                self.target_time or parse_iso(journal.disaster_declared_at),
                {k: parse_iso(v) for k, v in journal.rpo_measured_from.items()})
            restored = journal.phase(ph.RESTORE).status == PASSED
            if self.manifest is not None and journal.disaster_declared_at and restored:
                journal.rpo_by_store = timing.rpo_by_store(
                    self.target_time or parse_iso(journal.disaster_declared_at),
                    journal.rpo_measured_from,
                    manifest_parts(self.manifest), self.manifest.backup_id)
            # A recovery's times are measured, and reported against the objectives; its
            # verdict is whether the data came back, not how fast.
            if (journal.objectives is not None and journal.failure is None
                    and not self.cancelled and self.operation == "drill"):
                objective = verdict.objective_checks(
                    journal.objectives, journal.rto_s, journal.rpo_measured_s,
                    journal.rpo_backup_age_s)
                journal.checks.extend(objective)
                missed = verdict.failed(objective)
                if missed:
                    journal.failure = Failure("objectives", "; ".join(c.describe() for c in missed),
                                              "check")
        if self.cancelled:
            journal.status = ABORTED
            if journal.failure is None:
                journal.failure = Failure("", "interrupted by a signal", "interrupted")
        elif journal.failure is not None or verdict.failed(journal.checks):
            journal.status = FAILED
        else:
            journal.status = PASSED
        journal.ended_at = iso(ended.wall)

    def _backup_ref(self, manifest: Manifest) -> BackupRef:
        where = self.store.location_of(manifest.backup_id)
        return BackupRef(manifest.backup_id, manifest.consistent_at,
                         where.rstrip("/") + "/manifest.json", manifest.size, where,
                         self.chosen)

