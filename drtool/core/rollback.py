"""Rollbacks, judged: does a journal leave targets to roll back, and did a rollback put them
back as the safety snapshot found them. Pure: given journals and facts, returns answers."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from drtool.components import files as files_kind
from drtool.core.model import FAILED, PASSED, PENDING, RUNNING, SKIPPED, Check, Journal

SNAPSHOT = "snapshot"
CLEANUP = "cleanup"
# Phases that change what a restore target holds or runs (drtool.core.phases says the same).
CHANGES_TARGETS = frozenset({"disaster", "restore", "restart", "cleanup"})
# `drtool recover`: a recovery is never rolled back unasked (it restores what a real
# disaster lost; putting back what was there before would undo it): a killed one gives back
# its leases and keeps its safety snapshot for its operator.
RECOVER = "recover"


def changed_targets(journal: Journal) -> bool:
    """Whether a phase that changes the targets started after a safety snapshot passed:
    then, unless the drill passed, its targets must be rolled back."""
    snapshot = any(p.name == SNAPSHOT and p.status == PASSED for p in journal.phases)
    started = any(p.name in CHANGES_TARGETS and p.status not in (PENDING, SKIPPED)
                  for p in journal.phases)
    return snapshot and started


def awaits_rollback(journal: Journal) -> bool:
    """A journal whose process died (it still says running) after it changed its targets,
    and whose rollback has not passed: one that failed, or was itself cut short, is tried
    again, and until it passes no operation may touch the targets."""
    done = journal.rollback is not None and journal.rollback.status == PASSED
    return (journal.status == RUNNING and journal.operation != RECOVER
            and changed_targets(journal) and not done)


def holds_leases(journal: Journal) -> bool:
    """A journal whose process died (it still says running) after its snapshot phase began,
    so after it leased its targets, but with nothing to roll back: its leases are to be
    given back (a drill killed before it changed anything leaves its targets as they were;
    a killed recovery is never rolled back)."""
    leased = any(p.name == SNAPSHOT and p.status not in (PENDING, SKIPPED)
                 for p in journal.phases)
    return journal.status == RUNNING and leased and (
        journal.operation == RECOVER or not changed_targets(journal))


def cleanup_started(journal: Journal) -> bool:
    """Whether the cleanup phase began: it removes the safety snapshots, so a component
    without one then holds the verified restore, not a half-restored target."""
    return any(p.name == CLEANUP and p.status not in (PENDING, SKIPPED) for p in journal.phases)


def _check(name: str, target: str, expected: Any, actual: Any, ok: bool, detail: str = "") -> Check:
    return Check(name, target, expected, actual, PASSED if ok else FAILED, detail)


def rollback_checks(postgres: dict[str, dict[str, Any]], redis: dict[str, dict[str, Any]],
                    cleanup_started: bool,
                    files: dict[str, dict[str, Any]] | None = None) -> list[Check]:
    """Judge what the rollback playbook published per part ({cluster/database: facts},
    {instance: facts}, {tree: facts}): every table's exact count and every Redis database's
    key count equal the snapshot's; every tree has no entry missing, extra or changed
    against the snapshot's listing (compared on its host).

    A component without a snapshot record was left as it was: right when cleanup had already
    removed the snapshot (the target holds the verified restore), a failure otherwise."""
    checks: list[Check] = []
    for kind, hosts in (("postgres", postgres), ("redis", redis), ("files", files or {})):
        for host, facts in sorted(hosts.items()):
            if facts.get("already"):
                checks.append(_check(f"rollback.{kind}.snapshot", host, "rolled back",
                                     "rolled back", True,
                                     "an earlier attempt rolled it back and proved it"))
                continue
            if not facts.get("snapshot"):
                detail = ("cleanup had removed it: the target keeps the verified restore"
                          if cleanup_started else "the target was left as it is")
                checks.append(_check(f"rollback.{kind}.snapshot", host, "a safety snapshot",
                                     "none", cleanup_started, detail))
                continue
            if kind == "files":
                checks += files_kind.rollback_checks(host, facts)
                continue
            if kind == "postgres":
                want, got = facts.get("expected_exists"), facts.get("actual_exists")
                checks.append(_check("rollback.postgres.database", host,
                                     "exists" if want else "absent",
                                     "exists" if got else "absent", bool(want) == bool(got)))
            expected, actual = facts.get("expected") or {}, facts.get("actual") or {}
            name = ("rollback.postgres.row_count" if kind == "postgres"
                    else "rollback.redis.key_count")
            for key in sorted(set(expected) | set(actual)):
                checks.append(_check(name, f"{host}:{key}", expected.get(key), actual.get(key),
                                     expected.get(key) == actual.get(key)))
            if kind == "redis" and not expected and not actual:
                checks.append(_check(name, f"{host}:every database", 0, 0, True, "empty"))
    return checks


UNDO_RECOVER = "undo-recover"


def undo_problem(recovery_id: str, journals: list[Journal],
                 killed: Collection[str] = ()) -> str | None:
    """Why `drtool recover --undo recovery_id` must not run, given every journal of the
    environment (oldest first), or None: the recovery exists, has ended (or was killed: its
    id in `killed`, its journal still says running; the undo closes it first), kept a
    safety snapshot after which it changed its targets, has not been undone, and no later
    recovery changed those targets since (undoing it would throw that one's work away)."""
    found = next((j for j in journals if j.drill_id == recovery_id), None)
    if found is None:
        return f"no run {recovery_id} in the evidence"
    if found.operation != RECOVER:
        return (f"{recovery_id} is a {found.operation}, not a recovery: only a recovery is "
                "undone this way (a drill's targets are rolled back by drtool itself)")
    if found.status == RUNNING and recovery_id not in killed:
        return f"recovery {recovery_id} is still running (process {found.pid})"
    snapshot = next((p for p in found.phases if p.name == SNAPSHOT), None)
    if snapshot is None or snapshot.status != PASSED:
        return (f"recovery {recovery_id} kept no safety snapshot (its snapshot phase "
                f"{snapshot.status if snapshot else 'never ran'}): there is nothing to put "
                "back")
    if not changed_targets(found):
        return f"recovery {recovery_id} changed nothing on its targets: there is nothing to undo"
    undone = [j for j in journals if j.operation == UNDO_RECOVER and j.undoes == recovery_id
              and j.status == PASSED]
    if undone:
        return f"recovery {recovery_id} was undone already, by {undone[0].drill_id}"
    undone_ids = {j.undoes for j in journals
                  if j.operation == UNDO_RECOVER and j.status == PASSED}
    later = [j for j in journals if j.operation == RECOVER and j.started_at > found.started_at
             and j.drill_id not in undone_ids
             and any(p.name in CHANGES_TARGETS and p.status not in (PENDING, SKIPPED)
                     for p in j.phases)]
    if later:
        return (f"recovery {later[-1].drill_id} changed the same targets after it: undo that "
                "one first")
    return None


def undo_drift(recorded: dict[str, Any] | None, now: dict[str, Any] | None) -> list[str]:
    """How the restore targets the inventory declares now differ from those a recovery
    restored onto (two journal scopes' `data_stores`: host, endpoint, databases): an undo
    puts back a snapshot of those, onto these. One line per component that differs; [] when
    none does."""
    # A cluster declared `databases: all` is put back with the databases the recovery
    # recorded (drill.rollback.extravars_of), whatever the cluster holds now.
    every = {c.get("name") for c in (recorded or {}).get("components", [])
             if isinstance(c, dict) and c.get("all_databases")}

    def targets(scope: dict[str, Any] | None) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for store in (scope or {}).get("data_stores", []):
            if isinstance(store, dict) and store.get("role") == "restore target":
                databases = (f" ({store['database']})" if store.get("database")
                             and store.get("component") not in every else "")
                found.setdefault(str(store.get("component")), set()).add(
                    f"{store.get('host')} {store.get('endpoint')}{databases}")
        return found

    then, current = targets(recorded), targets(now)
    lines = []
    for name in sorted(set(then) | set(current)):
        was, nowhere = sorted(then.get(name, ())), sorted(current.get(name, ()))
        if was == nowhere:
            continue
        lines.append(f"{name}: recovered onto {', '.join(was) or 'nothing'}, declared now "
                     f"at {', '.join(nowhere) or 'no recovery side'}")
    return lines
