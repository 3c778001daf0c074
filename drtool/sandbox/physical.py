"""The sandbox's physical backups: the primary cluster archives its WAL into a local
pgBackRest repository (stanza `sandbox`), and a cluster of its own, pg_physical, is the
restore target of inventories/sandbox-physical (a physical restore makes a copy of the
primary, system identifier included: the logical drills' pg_target stays their own).

Everything lives beside the clusters (the postgres user runs pgBackRest from archive_command,
so it must reach the repository) and is run as that user, as the clusters are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from drtool.adapters.execute import as_user, run
from drtool.errors import OrchestrationError
from drtool.sandbox import layout as lay
from drtool.sandbox.services import PG_USER, PostgresCluster, _chown_tree

STANZA = "sandbox"
# The archive's granularity: a segment is switched (and archived) at least this often while
# the primary is written to (the app's heartbeat writes every second). A drill does not wait
# for it: it switches the segment of its recovery target itself. Every switch is a segment a
# restore replays, so a short timeout makes each physical drill slower as the day goes on.
ARCHIVE_TIMEOUT_S = 60
MARK = "# drtool sandbox: WAL archiving into pgBackRest"


def folder(layout: lay.Layout) -> Path:
    return layout.postgres_root / "pgbackrest"


def config(layout: lay.Layout) -> Path:
    return folder(layout) / "pgbackrest.conf"


def binary() -> str:
    found = shutil.which("pgbackrest")
    if not found:
        raise OrchestrationError("pgbackrest is not installed: run scripts/bootstrap (as root), "
                                 "or apt-get install pgbackrest")
    return found


def write_config(layout: lay.Layout, primary: PostgresCluster) -> Path:
    """pgBackRest's configuration for the sandbox: a repository, log and lock folders of its
    own, and the primary as the stanza's cluster (reached on its socket folder)."""
    root = folder(layout)
    for name in ("repo", "log", "lock", "spool"):
        (root / name).mkdir(parents=True, exist_ok=True)
    config(layout).write_text(
        "# drtool sandbox\n"
        "[global]\n"
        f"repo1-path={root / 'repo'}\n"
        "repo1-retention-full=2\n"
        f"log-path={root / 'log'}\n"
        f"lock-path={root / 'lock'}\n"
        f"spool-path={root / 'spool'}\n"
        "log-level-console=warn\n"
        "log-level-file=info\n"
        "start-fast=y\n"
        "compress-type=lz4\n"
        "\n"
        f"[{STANZA}]\n"
        f"pg1-path={primary.data}\n"
        f"pg1-port={primary.port}\n"
        f"pg1-socket-path={primary.root / 'run'}\n"
        f"pg1-user={PG_USER}\n",
        encoding="utf-8")
    _chown_tree(root)
    return config(layout)


def archive_settings(layout: lay.Layout) -> str:
    """What the primary's postgresql.auto.conf gets: WAL archiving into the stanza, and
    wal_level logical (a temporary logical slot's exported snapshot gives a fresh drill
    counts that match its recovery target exactly)."""
    command = f"{binary()} --config={config(layout)} --stanza={STANZA} archive-push %p"
    return (f"\n{MARK}\nwal_level = logical\narchive_mode = on\n"
            f"archive_command = '{command}'\narchive_timeout = {ARCHIVE_TIMEOUT_S}\n"
            # Checkpoint often enough that pg_wal recycles a few segments, not max_wal_size.
            "checkpoint_timeout = 60s\n")


def ensure_archiving(layout: lay.Layout, primary: PostgresCluster) -> bool:
    """Give the primary its archive settings (once); True when they were added, and the
    cluster must then be restarted for them to take effect. They go where ALTER SYSTEM puts
    settings, postgresql.auto.conf: a physical copy of the cluster carries them, as a copy
    of many real clusters does, and only drtool's --archive-mode=off keeps that copy from
    archiving into the repository."""
    conf = primary.data / "postgresql.auto.conf"
    text = conf.read_text(encoding="utf-8") if conf.exists() else ""
    if MARK in text:
        return False
    # pgBackRest connects on the cluster's socket, without a password: only the cluster's
    # own user can reach that socket (its folder is that user's alone, mode 0700).
    hba = primary.data / "pg_hba.conf"
    hba.write_text(f"{MARK}\nlocal all {PG_USER} trust\n" + hba.read_text(encoding="utf-8"),
                   encoding="utf-8")
    with open(conf, "a", encoding="utf-8") as out:
        out.write(archive_settings(layout))
    return True


def pgbackrest(layout: lay.Layout, *args: str, timeout: float = 600) -> str:
    """Run a pgBackRest command on the sandbox's stanza as the clusters' user; its stdout."""
    argv = [binary(), f"--config={config(layout)}", f"--stanza={STANZA}", *args]
    done = run(as_user(argv, PG_USER), timeout=timeout, check=False)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise OrchestrationError(f"pgbackrest {args[-1]} failed (exit {done.returncode}): "
                                 f"{said[-1] if said else 'no message'}")
    return done.stdout


def ensure_stanza(layout: lay.Layout) -> None:
    """Create the stanza and take its first full backup, when the repository has none: a
    physical drill uses the newest backup the schedule made, as a real one would."""
    try:
        stanzas = json.loads(pgbackrest(layout, "--output=json", "info", timeout=60))
    except ValueError as exc:
        raise OrchestrationError(f"pgbackrest info did not print JSON: {exc}") from None
    if any(entry.get("backup") for entry in stanzas if entry.get("name") == STANZA):
        return
    pgbackrest(layout, "stanza-create", timeout=120)
    pgbackrest(layout, "check", timeout=120)
    pgbackrest(layout, "--type=full", "backup", timeout=1800)
