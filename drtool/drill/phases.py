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

# Phases that change a restore target: the production guard must allow them first.
DESTRUCTIVE = frozenset({SNAPSHOT, DISASTER, RESTORE, RESTART, CLEANUP, ROLLBACK})
