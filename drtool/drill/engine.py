"""Orchestration: run an operation's phases through Ansible, one playbook each, and keep
the journal true after every step. Verdicts come from drtool.core.verdict; this module
only sequences, records and rolls back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from drtool import paths
from drtool.adapters import ssh
from drtool.adapters.ansible import AnsibleAdapter, PlaybookRun
from drtool.config import Environment
from drtool.core import identity, preflight, timing, verdict
from drtool.core.chain import Link
from drtool.core.clock import Clock, iso, parse_iso, seconds_between, utc_now
from drtool.core.manifest import Manifest, build_manifest
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
from drtool.core.rollback import cleanup_started
from drtool.drill import phases as ph
from drtool.drill import rollback
from drtool.drill.journal_writer import JournalWriter
from drtool.drill.recovery import record_unrecorded, scrub_killed
from drtool.drill.scope import inventory_version, scope_of
from drtool.drill.versions import base_versions
from drtool.errors import ConfigError, StoreError
from drtool.ops import notify
from drtool.store.base import Transfer, open_store
from drtool.store.history import History, record_of
from drtool.store.lock import EnvironmentLock


class Progress(Protocol):
    def phase_started(self, name: str, index: int, total: int) -> None: ...
    def task_started(self, phase: str, task: str, host: str | None) -> None: ...
    def phase_ended(self, record: PhaseRecord) -> None: ...


def new_id(clock: Clock, prefix: str = "") -> str:
    """A sortable, unique id: 20261122T051530Z-3fa2c1."""
    return f"{prefix}{clock().strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


class Drill:
    """One run of an operation (drill, backup, restore, verify) against one environment."""

    def __init__(
        self, env: Environment, operation: str, ansible: AnsibleAdapter, progress: Progress,
        clock: Clock = utc_now, backup_id: str | None = None, note: str | None = None,
    ) -> None:
        self.env, self.operation, self.ansible, self.progress, self.clock = (
            env, operation, ansible, progress, clock)
        self.store = open_store(env)
        self.phase_names = ph.OPERATIONS[operation]
        self.manifest: Manifest | None = None
        self.restored: dict[str, dict[str, Any]] = {}
        self.cancelled = False
        self.rolling_back = False  # a signal then changes nothing: the rollback runs to its end
        self.finished = False  # the verdict is in: a signal then changes nothing either
        self.targets_changed = False
        self.answers: dict[str, preflight.Answer] = {}
        drill_id = new_id(clock)
        self.backup_id = backup_id or (new_id(clock, "bk-") if ph.BACKUP in self.phase_names
                                       else None)
        if backup_id:
            self.manifest = self.store.read_manifest(backup_id)  # ConfigError when unknown
        self.journal = Journal(
            drill_id=drill_id, env=env.name, operation=operation, started_at=iso(clock()) or "",
            pid=os.getpid(), objectives=env.objectives, inventory=str(env.inventory),
            phases=[PhaseRecord(name) for name in self.phase_names], tool_versions=base_versions(),
            scope=scope_of(env, inventory_version(env.inventory)), note=note,
        )
        if self.manifest is not None:
            self.journal.backup = self._backup_ref(self.manifest)
        self.writer = JournalWriter(paths.evidence_dir(env.name) / drill_id, self.journal)
        self.ansible.use_control_dir(drill_id)
        self.lock = EnvironmentLock(paths.drtool_home() / "locks", env.name)
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
        # Before anything that can take time: a signal from here on aborts the operation
        # cleanly (rolled back, recorded), never half-way.
        previous = {sig: signal.signal(sig, self._interrupt)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._run_locked()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.lock.release()

    def _run_locked(self) -> Journal:
        self.writer.save()
        scrub_killed(self.env.name, skip=self.journal.drill_id)
        self._roll_back_killed()
        with History(paths.history_db()) as history:
            record_unrecorded(self.env.name, history, skip=self.journal.drill_id, locked=True)
        self._notify(notify.start_messages(self.env.notify, self.journal))
        try:
            for index, name in enumerate(self.phase_names, start=1):
                if self.cancelled or self.journal.failure or not self._run_phase(name, index):
                    break
        except Exception as exc:  # noqa: BLE001 - a bug must not leave targets half restored
            phase = next((p for p in self.journal.phases if p.status == RUNNING), None)
            if phase is not None:
                self._fail(phase, f"internal error: {type(exc).__name__}: {exc}",
                           "orchestration")
            else:
                self.journal.failure = Failure("", f"internal error: {type(exc).__name__}: "
                                                   f"{exc}", "orchestration")
        try:
            for record in self.journal.phases:
                if record.status == PENDING:
                    record.status = SKIPPED
            self.writer.save()
            if self._needs_rollback():
                self._rollback()
            self._finish()
            self._settle_store()
        finally:
            self.ansible.close_ssh_masters()
            self.writer.save()
        self._copy_evidence()
        # After the verdict and before the history record, so that the record's hash covers
        # what was sent. A notification never changes the verdict.
        self._notify(notify.end_messages(self.env.notify, self.journal, str(self.writer.path)))
        with History(paths.history_db()) as history:
            entry = history.append(record_of(self.journal), self.writer.path)
            self._anchor(history, entry)
        return self.journal

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
        started = self.clock()
        record.status, record.started_at = RUNNING, iso(started)
        if name == ph.DISASTER:
            self.journal.disaster_declared_at = iso(started)
        self.writer.save()
        self.progress.phase_started(name, index, len(self.phase_names))
        refused = self._ssh_preflight() if name == ph.PREFLIGHT else None
        if refused:  # the hosts are not ready: nothing may run, not even the playbook
            self._fail(record, refused, "preflight")
            return self._end_phase(record, started)
        if name == ph.RESTORE:
            problem = self._fetch_backup(record)
            if problem:  # the backup is not fit to restore: the targets stay as they are
                self._fail(record, *problem)
                return self._end_phase(record, started)
        changed_before = self.targets_changed
        self.targets_changed |= name in ph.CHANGES_TARGETS
        run = self._playbook(name, record)
        if run.status == "canceled" or self.cancelled:
            self._fail(record, "interrupted by a signal", "interrupted", status=ABORTED)
            # ansible-playbook is gone, but what its tasks started may not be: stop it now,
            # whether or not a rollback follows (a backup's pg_dump, a snapshot in progress).
            left = rollback.reap(self.ansible, self._extravars(), self.writer.artifact_dir("reap"))
            if left:
                self.journal.warnings.append(f"after the interrupt: {left}")
        elif run.status != "successful":
            if self._fail_from_run(record, run) and name == ph.RESTORE:
                # The restore playbook checks every file before its first change: a backup
                # that failed its integrity check left the targets as they were.
                self.targets_changed = changed_before
        else:
            after = getattr(self, f"_after_{name}", None)
            problem = after(run, record) if after else None
            if isinstance(problem, tuple):  # (reason, kind)
                self._fail(record, *problem)
            elif problem:
                self._fail(record, problem, "preflight" if name == ph.PREFLIGHT else "check")
            else:
                record.status = PASSED
        return self._end_phase(record, started)

    def _end_phase(self, record: PhaseRecord, started: dt.datetime) -> bool:
        """Record the phase's end, save the journal, report it; True when it passed."""
        ended = self.clock()
        record.ended_at, record.duration_s = iso(ended), seconds_between(started, ended)
        if record.name == ph.VERIFY and record.status == PASSED:
            self.journal.verified_at = record.ended_at
        self.writer.save()
        self.progress.phase_ended(record)
        return record.status == PASSED

    def _playbook(self, name: str, record: PhaseRecord) -> PlaybookRun:
        artifacts = self.writer.artifact_dir(name)
        record.artifacts = str(artifacts.relative_to(self.writer.folder))
        earlier = list(record.tasks)  # drtool's own, such as a download before the playbook

        def on_event(event: dict[str, Any], task: TaskRecord | None) -> None:
            if event.get("event") == "playbook_on_task_start":
                data = event.get("event_data", {})
                self.progress.task_started(name, data.get("task", ""), None)
            if task is not None:
                record.tasks.append(task)
                self.writer.save()  # a crash mid-phase still leaves the tasks done so far

        run = self.ansible.run(name, self._extravars(), artifacts, on_event, lambda: self.cancelled,
                               run_id=self.journal.drill_id)
        record.tasks = earlier + run.tasks
        return run

    def _extravars(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "drtool_env": self.env.name,
            "drtool_drill_id": self.journal.drill_id,
            "drtool_sentinel_value": self.sentinel_value,
            "drtool_touches_targets": self.operation in ph.TOUCHES_TARGETS,
        }
        if self.backup_id:
            # Where the backup lives in the store, on this machine. Where each host stages it
            # (drtool_backup_path) and keeps safety snapshots (drtool_snapshot_path) is the
            # inventory's to say.
            values["drtool_backup_id"] = self.backup_id
            values["drtool_store_backup_path"] = str(self.store.backup_path(self.backup_id))
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
            self._fail(record, f"ansible-playbook ended {run.status} (rc {run.rc})",
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
        reason = f"{first.host}: task '{first.task}' {what}: {first.message}".strip()
        self._fail(record, reason, "check" if integrity else "orchestration", hosts)
        return bool(integrity)

    def _needs_rollback(self) -> bool:
        """Roll back when the drill did not pass, a target was changed, and a safety
        snapshot exists to roll back to."""
        if self.journal.failure is None and not self.cancelled:
            return False
        snapshot = any(r.name == ph.SNAPSHOT and r.status == PASSED for r in self.journal.phases)
        return snapshot and self.targets_changed

    def _rollback(self) -> None:
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
            artifacts = self.writer.artifact_dir(ph.ROLLBACK)
            record.artifacts = str(artifacts.relative_to(self.writer.folder))
            self.journal.checks.extend(rollback.roll_back(
                self.ansible, self._extravars(), artifacts, record,
                cleanup_started(self.journal), self.clock, on_event))
        finally:
            self.rolling_back = False
        self.writer.save()
        self.progress.phase_ended(record)

    def _roll_back_killed(self) -> None:
        """Before anything else: roll back the targets of any drill of this environment that
        was killed after it changed them (its journal says running; we hold the lock, so it
        is not). An operation that does not touch the targets only warns. A rollback that
        fails stops this operation: it must not run on targets in an unknown state."""
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
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            futures = {host: pool.submit(ssh.ask, settings, preflight.commands_for(host, settings))
                       for host, settings in hosts.items()}
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
        source, target = self.env.host("pg_primary"), self.env.host("pg_restore_target")
        postgres = run.stats.get("drtool_postgres_preflight", {})
        facts = identity.merge_facts(postgres, run.stats.get("drtool_redis_preflight", {}))
        for host in (self.journal.scope or {}).get("hosts", []):  # the evidence: who was who
            host["identity"] = facts.get(host["name"], {})
        if self.operation in ph.TOUCHES_TARGETS:
            guarded = identity.identity_checks(facts, self.env.groups,
                                               self.env.production_hosts())
            self.journal.checks.extend(guarded)
            refused = verdict.failed(guarded)
            if refused:
                return ("production guard: " + "; ".join(c.describe() for c in refused),
                        "guard", [c.target for c in refused])
        server = postgres.get(source, {})
        answer = self.answers.get(target)
        version = answer.outputs.get("version.pg_restore", (1, ""))[1] if answer else ""
        check = preflight.pg_restore_check(target, version, source,
                                           str(server.get("server_version", "")))
        self.journal.checks.append(check)
        return None if check.passed else check.describe()

    # -- what each phase's results mean -----------------------------------------------------

    def _after_backup(self, run: PlaybookRun, record: PhaseRecord) -> str | tuple[str, str] | None:
        if self.backup_id is None:
            return "the backup phase ran without a backup id"
        try:
            manifest = build_manifest(
                self.backup_id, self.env.name, iso(self.clock()) or "",
                run.stats.get("drtool_postgres_backup", {}),
                run.stats.get("drtool_redis_backup", {}),
                drill_id=self.journal.drill_id)
        except (KeyError, ValueError, TypeError) as exc:
            return f"the backup roles did not report a complete manifest: {exc}"
        self.store.write_manifest(manifest)
        try:  # to S3, when that is the store: the backup phase ends when it is off-site
            manifest, transfer = self.store.publish(manifest)
        except (StoreError, ConfigError) as exc:
            return f"the backup could not be stored: {exc.message}", "orchestration"
        self._record_transfer(record, transfer)
        self.manifest = manifest
        self.journal.backup = self._backup_ref(manifest)
        self.journal.tool_versions.update({
            "postgresql_server": manifest.postgres.server_version,
            "pg_dump": manifest.postgres.pg_dump_version,
            "redis_server": manifest.redis.redis_version,
        })
        return None

    def _fetch_backup(self, record: PhaseRecord) -> tuple[str, str] | None:
        """Bring an off-site backup into the staging folder and check every file against
        the manifest; (reason, kind) when it is not fit to restore."""
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

    def _after_restore(self, run: PlaybookRun, _record: PhaseRecord) -> str | None:
        self.restored = {
            "postgres": run.stats.get("drtool_postgres_restore", {}),
            "redis": run.stats.get("drtool_redis_restore", {}),
        }
        self.journal.rpo_measured_from = {
            f"{store}:{host}": facts.get("heartbeat_at")
            for store, hosts in self.restored.items() for host, facts in hosts.items()
        }
        return None

    def _after_verify(self, run: PlaybookRun, _record: PhaseRecord) -> str | None:
        if self.manifest is None:
            return "verify needs a backup manifest and none is known"
        checks: list[Check] = []
        for host, facts in sorted(run.stats.get("drtool_postgres_verify", {}).items()):
            checks += verdict.postgres_checks(self.manifest, host, facts, self.env.growing_tables)
        for host, facts in sorted(run.stats.get("drtool_redis_verify", {}).items()):
            checks += verdict.redis_checks(self.manifest, host, facts)
        checks += verdict.heartbeat_checks(self.manifest, self.restored)
        checks += verdict.app_checks(run.stats.get("drtool_app_health", {}))
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
        if self.operation == "drill":
            declared = parse_iso(journal.disaster_declared_at)
            journal.rto_s = timing.rto_seconds(declared, parse_iso(journal.verified_at))
            if self.manifest is not None:
                journal.rpo_backup_age_s = timing.rpo_backup_age(
                    declared, parse_iso(self.manifest.consistent_at))
            journal.rpo_measured_s = timing.rpo_measured(
                declared, {k: parse_iso(v) for k, v in journal.rpo_measured_from.items()})
            if journal.objectives is not None and journal.failure is None:
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
        journal.ended_at = iso(self.clock())

    def _backup_ref(self, manifest: Manifest) -> BackupRef:
        where = self.store.location_of(manifest.backup_id)
        return BackupRef(manifest.backup_id, manifest.consistent_at,
                         where.rstrip("/") + "/manifest.json", manifest.size, where)

