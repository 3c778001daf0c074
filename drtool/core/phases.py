"""The phases, in order, and which operations run which of them."""

from __future__ import annotations

from drtool.core import rollback

PREFLIGHT, BACKUP, SNAPSHOT, DISASTER, RESTORE, RESTART, VERIFY, CLEANUP = (
    "preflight", "backup", "snapshot", "disaster", "restore", "restart", "verify", "cleanup",
)
ROLLBACK = "rollback"
# `drtool backups verify`'s one phase: the repositories methods keep, checked where they are.
BACKUPS = "backups"

# Each phase is one playbook (playbooks/<phase>.yml) and one ansible-runner call.
OPERATIONS: dict[str, tuple[str, ...]] = {
    # The safety snapshot before the backup: what lies between the backup and the disaster
    # is data a fresh drill's RPO counts as lost, and a snapshot of a large target is slow.
    "drill": (PREFLIGHT, SNAPSHOT, BACKUP, DISASTER, RESTORE, RESTART, VERIFY, CLEANUP),
    "backup": (PREFLIGHT, BACKUP),
    "restore": (PREFLIGHT, SNAPSHOT, RESTORE),
    # Preflight first: verify's write check writes to the target, so the target's identity
    # is asked before it, as for any operation that touches the targets.
    "verify": (PREFLIGHT, VERIFY),
    # Outside any drill, on its own schedule: every backup read back and checked where it is
    # kept (drtool's store by drtool, a method's repository by its tool); nothing restored.
    "verify-backups": (BACKUPS,),
    # `drtool recover`, on the day of a real disaster: what a drill runs after its disaster,
    # onto the components' recovery sides, from a stored backup; the safety snapshot is kept
    # for its operator, and nothing is rolled back unasked (core.rollback.RECOVER).
    "recover": (PREFLIGHT, SNAPSHOT, RESTORE, RESTART, VERIFY),
    # `drtool recover --undo ID`: a preflight (the targets are still the servers that
    # recovery restored onto), then it puts them back from the safety snapshot that recovery
    # kept, with the rollback playbook (drtool.drill.engine: Drill._undo).
    "undo-recover": (PREFLIGHT,),
    # No phase of its own: it rolls back the targets of drills that were killed (see
    # drtool.drill.rollback), which every operation that touches the targets does first.
    "rollback": (),
}

# Every phase some operation runs, in a drill's order then the others': what a phase time
# limit may name.
ALL_PHASES: tuple[str, ...] = tuple(dict.fromkeys(p for phases in OPERATIONS.values()
                                                  for p in phases))

# Operations that touch the restore targets: the production guard must allow them (verify's
# write check writes to the target too). A backup only reads the primaries.
TOUCHES_TARGETS = frozenset({"drill", "restore", "verify", "rollback", "recover",
                             "undo-recover"})
RECOVER = "recover"
UNDO_RECOVER = rollback.UNDO_RECOVER  # core.rollback judges its journals
# The operations whose targets are the components' recovery sides.
RECOVERY_SIDE = frozenset({RECOVER, UNDO_RECOVER})

# Phases that change what a restore target holds or runs: once one has started, a failed
# drill must roll the targets back from the safety snapshot (core.rollback judges it).
CHANGES_TARGETS = rollback.CHANGES_TARGETS
