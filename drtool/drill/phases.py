"""The phases, in order, and which operations run which of them."""

from __future__ import annotations

from drtool.core import rollback

PREFLIGHT, BACKUP, SNAPSHOT, DISASTER, RESTORE, RESTART, VERIFY, CLEANUP = (
    "preflight", "backup", "snapshot", "disaster", "restore", "restart", "verify", "cleanup",
)
ROLLBACK = "rollback"

# Each phase is one playbook (playbooks/<phase>.yml) and one ansible-runner call.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "drill": (PREFLIGHT, BACKUP, SNAPSHOT, DISASTER, RESTORE, RESTART, VERIFY, CLEANUP),
    "backup": (PREFLIGHT, BACKUP),
    "restore": (PREFLIGHT, SNAPSHOT, RESTORE),
    # Preflight first: verify's write check writes to the target, so the target's identity
    # is asked before it, as for any operation that touches the targets.
    "verify": (PREFLIGHT, VERIFY),
    # No phase of its own: it rolls back the targets of drills that were killed (see
    # drtool.drill.rollback), which every operation that touches the targets does first.
    "rollback": (),
}

# Operations that touch the restore targets: the production guard must allow them (verify's
# write check writes to the target too). A backup only reads the primaries.
TOUCHES_TARGETS = frozenset({"drill", "restore", "verify", "rollback"})

# What each phase does, per group, for `drtool drill --plan`. "DESTROYS" marks data loss.
PLAN: dict[str, tuple[tuple[str, str], ...]] = {
    PREFLIGHT: (("all", "checks over SSH: reachable, tools, services, free disk, clock skew; "
                 "then the Ansible preflight; changes nothing"),),
    BACKUP: (("pg_primary", "pg_dump of the database with exact counts; writes a sentinel row; "
              "the dump goes to the store"),
             ("redis_primary", "BGSAVE and a copy of the RDB; writes a sentinel key")),
    SNAPSHOT: (("pg_restore_target", "safety dump of what the database holds now"),
               ("redis_restore_target", "safety copy of what Redis holds now")),
    DISASTER: (("app", "DESTROYS: stops the application"),
               ("pg_restore_target", "DESTROYS: drops the database"),
               ("redis_restore_target", "DESTROYS: FLUSHALL")),
    RESTORE: (("pg_restore_target", "checks every file's sha256, then recreates the database "
               "and pg_restores the backup"),
              ("redis_restore_target", "checks the RDB's sha256, then stops Redis, replaces its "
               "RDB and starts it")),
    RESTART: (("app", "starts the application on the restored stores"),),
    VERIFY: (("pg_restore_target", "exact counts, sequences, sentinel; writes and deletes a "
              "row"),
             ("redis_restore_target", "PING, key counts, sentinel"),
             ("app", "health check")),
    CLEANUP: (("pg_restore_target", "removes the safety snapshot and the staged backup"),
              ("redis_restore_target", "removes the safety snapshot and the staged backup"),
              ("app", "resumes the application as before the drill")),
}

# Phases that change what a restore target holds or runs: once one has started, a failed
# drill must roll the targets back from the safety snapshot (core.rollback judges it).
CHANGES_TARGETS = rollback.CHANGES_TARGETS
