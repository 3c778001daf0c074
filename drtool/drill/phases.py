"""The phases, in order, and which operations run which of them."""

from __future__ import annotations

PREFLIGHT, BACKUP, SNAPSHOT, DISASTER, RESTORE, RESTART, VERIFY, CLEANUP = (
    "preflight", "backup", "snapshot", "disaster", "restore", "restart", "verify", "cleanup",
)
ROLLBACK = "rollback"

# Each phase is one playbook (playbooks/<phase>.yml) and one ansible-runner call.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "drill": (PREFLIGHT, BACKUP, SNAPSHOT, DISASTER, RESTORE, RESTART, VERIFY, CLEANUP),
    "backup": (PREFLIGHT, BACKUP),
    "restore": (PREFLIGHT, SNAPSHOT, RESTORE),
    "verify": (VERIFY,),
}

# Phases that change what a restore target holds or runs: once one has started, a failed
# drill must roll the targets back from the safety snapshot.
CHANGES_TARGETS = frozenset({DISASTER, RESTORE, RESTART, CLEANUP})
