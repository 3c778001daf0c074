"""The evidence model: what a drill did and found, independent of how it is shown.

A Journal is built up as the drill runs and written after every change; these classes know
nothing of Ansible, terminals or files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# 2: adds `scope` (hosts, data stores, inventory version) and `note`.
# 3: adds `notifications`.
# 4: adds `warnings`, `evidence_copies` and `transfers`.
# 5: adds `recovered` (killed drills this run rolled back first); rollback.* checks.
# 6: components: `scope.components` (each with its source, target and identities), a
#    phase's `components` (each component's own run: the restores run side by side), and
#    checks named by component (host/cluster/database, host/instance).
# 7: `backup.chosen`: a drill restores its own fresh backup or one from the store
#    (`drill --backup latest|random|random-verified|ID`), and says which; a cluster declared
#    `databases: all` has `all_databases: true` in `scope.components`.
# 8: `rpo_by_store`: per restored store, its data loss and its backup part's age.
# 9: `operator` (who ran it: a recovery's, from --operator or the environment); operation
#    `recover` (`drtool recover`: `disaster_declared_at` is when it began), with
#    `scope.unrecovered`.
# 10: operation `undo-recover` (`drtool recover --undo ID`) with `undoes`: the recovery whose
#    targets it put back from that recovery's safety snapshot; a recovery's `warnings` say
#    where no safety snapshot was taken for want of room.
SCHEMA_VERSION = 10

# Phase and drill statuses.
PENDING, RUNNING, PASSED, FAILED, SKIPPED, ABORTED = (
    "pending", "running", "passed", "failed", "skipped", "aborted",
)


@dataclass(frozen=True)
class Objectives:
    """The environment's recovery objectives, in seconds."""

    rto_s: float
    rpo_s: float


@dataclass(frozen=True)
class Check:
    """One thing measured and judged: expected against actual on a target."""

    name: str
    target: str
    expected: Any
    actual: Any
    status: str  # passed or failed
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def describe(self) -> str:
        """One line a person reads: name, target, expected and actual."""
        line = f"{self.name} {self.target}: expected {self.expected}, actual {self.actual}"
        return f"{line} ({self.detail})" if self.detail else line


@dataclass
class TaskRecord:
    """One Ansible task on one host, as its runner events reported it."""

    host: str
    name: str
    action: str
    status: str  # ok, changed, failed, skipped, unreachable
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    message: str | None = None


@dataclass
class PhaseRecord:
    """One phase: one playbook, one ansible-runner call."""

    name: str
    status: str = PENDING
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    tasks: list[TaskRecord] = field(default_factory=list)
    error: str | None = None
    artifacts: str | None = None
    # The phase's runs per component, when they ran side by side (the restore):
    # [{component, kind, host, started_at, ended_at, duration_s, status}].
    components: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BackupRef:
    """The backup a drill made or used."""

    id: str
    consistent_at: str | None
    manifest: str
    size: int | None = None
    location: str | None = None
    # How a drill came to restore it: "fresh" (made by the drill itself), "latest",
    # "random", "random-verified" or "named" (`drtool drill --backup`); restore and verify
    # name theirs. None in journals before schema 7.
    chosen: str | None = None


@dataclass
class Failure:
    """Why a drill failed: the phase, a one-line reason, and whether a check or the
    orchestration failed (which decides exit 1 or 3)."""

    phase: str
    reason: str
    kind: str  # check, orchestration, preflight, guard, timeout or interrupted (cli exit_code)
    hosts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Notification:
    """One message sent about a drill, delivered or not. `target` is the endpoint redacted
    to scheme://host and a hash of the URL: URLs carry tokens."""

    target: str
    kind: str  # webhook or healthchecks
    event: str  # start, finished or test
    status: str  # delivered or failed
    attempts: int
    http_status: int | None = None
    error: str | None = None
    sent_at: str | None = None
    duration_s: float | None = None
    format: str | None = None  # json or slack, for a webhook


@dataclass
class Journal:
    """The record of one drill (or backup, restore, verify), written as it goes."""

    drill_id: str
    env: str
    operation: str
    started_at: str
    status: str = RUNNING
    ended_at: str | None = None
    schema_version: int = SCHEMA_VERSION
    pid: int | None = None
    objectives: Objectives | None = None
    phases: list[PhaseRecord] = field(default_factory=list)
    rollback: PhaseRecord | None = None
    disaster_declared_at: str | None = None
    verified_at: str | None = None
    rto_s: float | None = None
    rpo_backup_age_s: float | None = None
    rpo_measured_s: float | None = None
    rpo_measured_from: dict[str, str | None] = field(default_factory=dict)
    # Per restored store: its data loss, and the backup part it came from with its age
    # (core.timing.rpo_by_store).
    rpo_by_store: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    backup: BackupRef | None = None
    failure: Failure | None = None
    tool_versions: dict[str, str] = field(default_factory=dict)
    inventory: str | None = None
    scope: dict[str, Any] | None = None
    note: str | None = None  # the operator's, from `drtool drill --note`
    operator: str | None = None  # who ran it (`drtool recover --operator`, else $USER)
    undoes: str | None = None  # `drtool recover --undo`: the recovery it undid
    notifications: list[Notification] = field(default_factory=list)
    # What went wrong without changing the verdict (an evidence copy or a store housekeeping
    # step that failed), one line each.
    warnings: list[str] = field(default_factory=list)
    # Copies of the evidence in an Object Lock bucket: file, url, version_id, sha256, mode,
    # retain_until.
    evidence_copies: list[dict[str, Any]] = field(default_factory=list)
    # Uploads to and downloads from an off-site store, each with every object it moved: where
    # it went, its sha256, and how it was checked.
    transfers: list[dict[str, Any]] = field(default_factory=list)
    # Drills of this environment found killed after they changed the targets, rolled back
    # before this run began: drill_id, rollback status and error. Each one's own journal
    # holds its rollback.
    recovered: list[dict[str, Any]] = field(default_factory=list)

    def phase(self, name: str) -> PhaseRecord:
        for record in self.phases:
            if record.name == name:
                return record
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def journal_from_dict(data: dict[str, Any]) -> Journal:
    """Rebuild a Journal from its JSON form (for history and re-verification)."""
    fields = dict(data)

    def phase(raw: dict[str, Any]) -> PhaseRecord:
        raw = dict(raw)
        raw["tasks"] = [TaskRecord(**task) for task in raw.get("tasks", [])]
        return PhaseRecord(**raw)

    fields["phases"] = [phase(raw) for raw in data.get("phases", [])]
    fields["rollback"] = phase(data["rollback"]) if data.get("rollback") else None
    fields["checks"] = [Check(**raw) for raw in data.get("checks", [])]
    fields["objectives"] = Objectives(**data["objectives"]) if data.get("objectives") else None
    fields["backup"] = BackupRef(**data["backup"]) if data.get("backup") else None
    fields["failure"] = Failure(**data["failure"]) if data.get("failure") else None
    fields["notifications"] = [Notification(**raw) for raw in data.get("notifications", [])]
    known = {f.name for f in dataclasses.fields(Journal)}
    return Journal(**{k: v for k, v in fields.items() if k in known})
