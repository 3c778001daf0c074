#!/usr/bin/python
"""Ansible module: a physical restore target's cluster, as a whole: its safety snapshot (a
copy of the stopped data directory), the disaster (stopped, its files removed), the
pgBackRest restore (recovered to a target, promoted, timed) and the rollback."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_physical
short_description: Snapshot, destroy, restore with pgBackRest, or roll back a target cluster
description:
  - "C(snapshot) counts every table of I(databases) on the running target, stops it, copies its
    data directory (C(cp -a --reflink=auto): a reflink where the file system has them) to
    I(snapshot_dir), records what it held (C(state.json)) and starts it again."
  - C(disaster) stops the target and removes what its data directory holds; it refuses a
    directory that is not a PostgreSQL data directory (no C(PG_VERSION)).
  - "C(restore) runs C(pgbackrest restore) into the data directory with the recovery target
    asked (C(--archive-mode=off): the copy never archives into the source's repository),
    puts back the target's own configuration files from the snapshot, sets the target's
    port, starts the server and waits until recovery has ended and it was promoted. It
    times the copy, the WAL replay and the promotion, and reads the server's log for where
    recovery stopped; a target it did not reach fails the restore with the server's reason."
  - C(rollback) puts the snapshot's copy back, starts the server and returns what it holds.
  - C(started) starts the target's server when its data directory holds a cluster and no
    server runs from it (a drill stopped while its snapshot had the server stopped).
  - "C(room) measures, changing nothing, the room a restore into I(data_dir) will have: the
    free bytes of its file system, the bytes it holds now, and whether I(snapshot_dir) (or
    its nearest existing parent) is on the same file system, with that one's free bytes."
  - pgBackRest and pg_ctl (or the start and stop commands) run as I(os_user) when the module
    runs as root (the copies, as the module's own user, keep owners and modes); the password
    reaches the server through the connection only.
extends_documentation_fragment:
  - drtool.drill.postgres
options:
  port:
    description: Server port (the target's own).
    type: int
    default: 5432
  database:
    description: Maintenance database to connect to.
    type: str
    default: postgres
  state:
    description: What to do.
    type: str
    required: true
    choices: [snapshot, disaster, restore, rollback, started, room]
  data_dir:
    description: The target cluster's data directory.
    type: path
    required: true
  databases:
    description: The databases to count.
    type: list
    elements: str
    default: []
  snapshot_dir:
    description: The safety snapshot's folder.
    type: path
    required: true
  os_user:
    description: The user the cluster runs as.
    type: str
    default: postgres
  bin_dir:
    description: Where pg_ctl lives.
    type: path
    default: /usr/lib/postgresql/15/bin
  start_command:
    description: How the server is started (empty for pg_ctl).
    type: list
    elements: str
    default: []
  stop_command:
    description: How the server is stopped (empty for pg_ctl).
    type: list
    elements: str
    default: []
  server_log:
    description: The file the server logs to (empty for none).
    type: str
    default: ""
  ready_timeout_s:
    description: Seconds the server may take to start or stop.
    type: int
    default: 120
  recovery_timeout_s:
    description: Seconds replay and promotion may take.
    type: int
    default: 1800
  pgbackrest:
    description: The pgbackrest program.
    type: str
    default: pgbackrest
  pgbackrest_config:
    description: pgBackRest's configuration file (empty for its default).
    type: str
    default: ""
  stanza:
    description: The stanza (restore).
    type: str
  backup_set:
    description: The backup label to restore (empty for pgBackRest's choice).
    type: str
    default: ""
  target_type:
    description: The recovery target type.
    type: str
    default: default
  target:
    description: The recovery target.
    type: str
    default: ""
  target_exclusive:
    description: Stop just before the target.
    type: bool
    default: false
  drill_id:
    description: The drill whose rollback marks the snapshot rolled back.
    type: str
    default: ""
author: drtool maintainers
"""

RETURN = r"""
steps:
  description: "The restore's copy, WAL replay and promotion: step, started_at, ended_at, duration_s"
  type: list
  returned: restore
recovery:
  description: What the server's log says of the recovery.
  type: dict
  returned: restore
system_identifier:
  description: The cluster's system identifier.
  type: str
  returned: success
counts:
  description: Per database, exact counts (snapshot, rollback)
  type: dict
  returned: snapshot and rollback
room:
  description: free_bytes, data_dir_bytes, snapshot_same_filesystem, snapshot_free_bytes
  type: dict
  returned: room
"""

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.pgbackrest import (
    PgBackRestError,
    archive_end,
    as_os_user,
    port_setting,
    promotion_seconds,
    recovery_outcome,
    restore_argv,
    settled_log,
    short_of_end,
    short_of_target,
)
from ansible_collections.drtool.drill.plugins.module_utils.postgres import (
    CONNECTION_ARGS,
    connect,
    exact_counts,
    import_psycopg,
)

# The target's own configuration, kept through a restore that brings the source's files.
OWN_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf")
COPY = "data"  # the snapshot's copy of the data directory, in snapshot_dir
STATE = "state.json"
MARK = "rolled-back"  # a rollback that was proved: another attempt leaves the target alone


class Failed(Exception):
    pass


def run(params, argv, timeout, what, server=False):
    """Run a program as the cluster's user. A `server` (the postmaster pg_ctl starts) is
    not the drill's: it must not carry DRTOOL_RUN_ID, or the reaper would stop the target's
    server with whatever the drill left running."""
    try:
        child = as_os_user(params["os_user"])
        if server:
            env = dict(child.get("env") or os.environ)
            env.pop("DRTOOL_RUN_ID", None)
            child["env"] = env
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL, **child)
    except FileNotFoundError:
        raise Failed("%s: %s was not found on this host" % (what, argv[0])) from None
    except KeyError:
        raise Failed("%s: the operating system user %s does not exist on this host"
                     % (what, params["os_user"])) from None
    except subprocess.TimeoutExpired:
        raise Failed("%s did not end within %d s" % (what, timeout)) from None
    if done.returncode != 0:
        text = (done.stderr or done.stdout or "").strip()
        errors = [line.strip() for line in text.splitlines() if "ERROR:" in line]
        raise Failed("%s failed (exit %d): %s" % (
            what, done.returncode, "; ".join(errors[-3:]) if errors else text[-1500:]
            or "no message"))
    return done


def running_pid(data_dir):
    """The postmaster's PID from postmaster.pid, when that process is alive."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid"), encoding="utf-8") as pidfile:
            pid = int(pidfile.readline().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:  # a zombie (exited, not yet reaped) is stopped
        with open("/proc/%d/stat" % pid, encoding="utf-8") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
    except OSError:
        pass
    return pid


def stop(params):
    if running_pid(params["data_dir"]) is None:
        return False
    argv = params["stop_command"] or [os.path.join(params["bin_dir"], "pg_ctl"), "-D",
                                      params["data_dir"], "-m", "fast", "-w", "-t",
                                      str(params["ready_timeout_s"]), "stop"]
    run(params, argv, params["ready_timeout_s"] + 10, "stopping the target cluster")
    deadline = time.monotonic() + params["ready_timeout_s"]
    while running_pid(params["data_dir"]) is not None:
        if time.monotonic() > deadline:
            raise Failed("the target cluster in %s did not stop within %d s"
                         % (params["data_dir"], params["ready_timeout_s"]))
        time.sleep(0.1)
    return True


def start(params, timeout_s=None):
    """Start the target's server (its start_command, else pg_ctl -w), allowing `timeout_s`
    (a recovery's replay before it takes connections; else ready_timeout_s)."""
    if running_pid(params["data_dir"]) is not None:
        return
    timeout_s = timeout_s or params["ready_timeout_s"]
    argv = params["start_command"] or (
        [os.path.join(params["bin_dir"], "pg_ctl"), "-D", params["data_dir"], "-w", "-t",
         str(timeout_s)]
        + (["-l", params["server_log"]] if params["server_log"] else []) + ["start"])
    run(params, argv, timeout_s + 10, "starting the target cluster", server=True)


def log_size(params):
    try:
        return os.path.getsize(params["server_log"]) if params["server_log"] else 0
    except OSError:
        return 0


def log_since(params, offset):
    if not params["server_log"]:
        return ""
    try:
        with open(params["server_log"], encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            return log.read()
    except OSError:
        return ""


def wait_connect(psycopg, params, deadline):
    last = None
    while time.monotonic() < deadline:
        try:
            return connect(psycopg, params, params["database"])
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.2)
    raise Failed("the target cluster on port %d took no connection within the time allowed: %s"
                 % (params["port"], str(last).strip()))


def measure(psycopg, params):
    """The cluster's system identifier and each database's exact counts (None: absent)."""
    with connect(psycopg, params, params["database"]) as conn:
        system_id = conn.execute(
            "SELECT system_identifier::text FROM pg_control_system()").fetchone()[0]
        present = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    counts = {}
    for database in params["databases"]:
        if database not in present:
            counts[database] = None
            continue
        with connect(psycopg, params, database) as conn:
            counts[database] = exact_counts(conn)
    return system_id, counts


def clear(data_dir):
    for name in os.listdir(data_dir):
        path = os.path.join(data_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def copy_tree(source, dest):
    """cp -a (a reflink where the file system has them): owners, modes and links kept."""
    done = subprocess.run(["cp", "-a", "--reflink=auto", source.rstrip("/") + "/.", dest],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Failed("copying %s to %s failed: %s" % (source, dest, done.stderr.strip()))


def tree_bytes(top):
    """The bytes of the regular files under `top`, as `du --bytes` counts them; a file that
    goes while it is walked (a running server's WAL) is not an error."""
    total = 0
    for folder, _dirs, files in os.walk(top):
        for name in files:
            try:
                stat = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            total += stat.st_size
    return total


def free_bytes(path):
    fs = os.statvfs(path)
    return fs.f_bavail * fs.f_frsize


def room(params):
    """What a restore into the data directory will have room for; see DOCUMENTATION."""
    data_dir = params["data_dir"]
    snapshot_at = os.path.abspath(params["snapshot_dir"])  # its parents end at "/"
    while not os.path.exists(snapshot_at):  # the snapshot's folder is made by the drill
        snapshot_at = os.path.dirname(snapshot_at)
    return {"changed": False, "room": {
        "free_bytes": free_bytes(data_dir),
        "data_dir_bytes": tree_bytes(data_dir),
        "snapshot_same_filesystem": os.stat(snapshot_at).st_dev == os.stat(data_dir).st_dev,
        "snapshot_free_bytes": free_bytes(snapshot_at)}}


def snapshot(psycopg, params):
    data_dir, folder = params["data_dir"], params["snapshot_dir"]
    if not os.path.isfile(os.path.join(data_dir, "PG_VERSION")):
        raise Failed("%s is not a PostgreSQL data directory (no PG_VERSION)" % data_dir)
    system_id, counts = measure(psycopg, params)
    copy = os.path.join(folder, COPY)
    for stale in (STATE, MARK):  # a folder another drill used: its record is not this one
        if os.path.exists(os.path.join(folder, stale)):
            os.unlink(os.path.join(folder, stale))
    shutil.rmtree(copy, ignore_errors=True)
    os.makedirs(copy, mode=0o700, exist_ok=True)
    stop(params)
    try:
        copy_tree(data_dir, copy)
    finally:
        start(params)
    state = {"data_dir": data_dir, "system_identifier": system_id, "counts": counts}
    # Written last: a rollback that finds no record has no snapshot to trust.
    with open(os.path.join(folder, STATE), "w", encoding="utf-8") as out:
        json.dump(state, out)
    return {"changed": True, "system_identifier": system_id, "counts": counts,
            "path": folder}


def disaster(params):
    data_dir = params["data_dir"]
    if not os.path.isfile(os.path.join(data_dir, "PG_VERSION")):
        raise Failed("refusing to destroy %s: it is not a PostgreSQL data directory "
                     "(no PG_VERSION)" % data_dir)
    stopped = stop(params)
    clear(data_dir)
    return {"changed": True, "stopped": stopped}


READY_WAIT_S = 10  # how long the log may lag behind the end of recovery (settled_log)


def log_after_promotion(params, offset, deadline):
    """The server's log since `offset`, once it says the promotion ended."""
    return settled_log(lambda: log_since(params, offset),
                       min(deadline, time.monotonic() + READY_WAIT_S))


def restore(psycopg, params):
    data_dir, folder = params["data_dir"], params["snapshot_dir"]
    try:  # a target pgBackRest cannot take fails here, before anything is stopped
        argv = restore_argv(params["pgbackrest"], params["stanza"], data_dir,
                            params["target_type"], params["target"] or None,
                            params["target_exclusive"], params["pgbackrest_config"] or None,
                            backup_set=params["backup_set"] or None)
    except PgBackRestError as exc:
        raise Failed(str(exc)) from None
    end = None
    if params["target_type"] == "default" and params["server_log"]:
        # The end of the archive as the restore begins: where a recovery to the end must
        # get to (the server's log names each segment it restored).
        info = run(params, [argv[0]] + [a for a in argv[1:2] if a.startswith("--config=")]
                   + ["--stanza=%s" % params["stanza"], "--output=json", "info"],
                   120, "pgbackrest info")
        try:
            end = archive_end(info.stdout, params["stanza"])
        except PgBackRestError as exc:
            raise Failed(str(exc)) from None
    stop(params)
    # The target's own configuration files, as its snapshot found them; without a snapshot
    # (a recovery where there was no room for one), as they are now, kept aside first.
    own = os.path.join(folder, COPY)
    kept = None
    if not os.path.isdir(own) and os.path.isfile(os.path.join(data_dir, "PG_VERSION")):
        kept = tempfile.mkdtemp(prefix="drtool-own-conf-")
        for name in OWN_FILES:
            if os.path.isfile(os.path.join(data_dir, name)):
                shutil.copy2(os.path.join(data_dir, name), os.path.join(kept, name))
        own = kept
    copy_began, began = now(), time.monotonic()
    try:
        run(params, argv, params["recovery_timeout_s"], "pgbackrest restore")
    except Failed:
        if kept:
            shutil.rmtree(kept, ignore_errors=True)
        raise
    copy_s, copy_ended = time.monotonic() - began, now()
    for name in OWN_FILES:
        if os.path.isfile(os.path.join(own, name)):
            shutil.copy2(os.path.join(own, name), os.path.join(data_dir, name))
            if os.geteuid() == 0:
                st = os.stat(data_dir)
                os.chown(os.path.join(data_dir, name), st.st_uid, st.st_gid)
    if kept:
        shutil.rmtree(kept, ignore_errors=True)
    with open(os.path.join(data_dir, "postgresql.auto.conf"), "a", encoding="utf-8") as auto:
        auto.write("\n# drtool: the restore target's own port\n%s\n" % port_setting(params["port"]))
    offset = log_size(params)
    replay_began, began = now(), time.monotonic()
    deadline = began + params["recovery_timeout_s"]
    try:
        start(params, params["recovery_timeout_s"])
    except Failed as exc:
        text = log_since(params, offset)
        why, detail = fatal_line(text), short_of_target(recovery_outcome(text))
        raise Failed("%s%s%s" % (exc, "; the server says: %s" % why if why else "",
                                 " (%s)" % detail if detail else "")) from None
    conn = wait_connect(psycopg, params, deadline)
    try:
        while conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            if time.monotonic() > deadline:
                raise Failed("the target cluster was still recovering after %d s"
                             % params["recovery_timeout_s"])
            if running_pid(data_dir) is None:
                break
            time.sleep(0.1)
        system_id = conn.execute(
            "SELECT system_identifier::text FROM pg_control_system()").fetchone()[0]
    except psycopg.Error as exc:
        text = log_since(params, offset)
        why, detail = fatal_line(text), short_of_target(recovery_outcome(text))
        raise Failed("the target cluster stopped during recovery: %s%s"
                     % (why or str(exc).strip(), " (%s)" % detail if detail else "")) from None
    finally:
        conn.close()
    recovered_s, promoted = time.monotonic() - began, now()
    log_text = log_after_promotion(params, offset, deadline)
    said = recovery_outcome(log_text)
    promotion_s = promotion_seconds(log_text)
    if params["server_log"] and params["target_type"] not in ("default",) and (
            not said["stopping"] and params["target_type"] != "immediate"):
        raise Failed("the server's log says recovery did not stop at the %s target %s: %s" % (
            params["target_type"], params["target"],
            fatal_line(log_text) or "no 'recovery stopping' line"))
    if end is not None:
        said["archive_end"] = end
        short = short_of_end(said, end)
        if short:
            raise Failed(short)
    replay_s = recovered_s - (promotion_s or 0.0)
    replayed = replay_began + dt.timedelta(seconds=replay_s)
    steps = [{"step": "copy", "started_at": copy_began.isoformat(),
              "ended_at": copy_ended.isoformat(), "duration_s": round(copy_s, 3)},
             {"step": "replay", "started_at": replay_began.isoformat(),
              "ended_at": replayed.isoformat(), "duration_s": round(replay_s, 3)}]
    if promotion_s is not None:  # the server's log tells where replay ended
        steps.append({"step": "promotion", "started_at": replayed.isoformat(),
                      "ended_at": promoted.isoformat(), "duration_s": promotion_s})
    return {"changed": True, "system_identifier": system_id, "recovery": said,
            "steps": steps, "argv": argv[1:]}


def now():
    return dt.datetime.now(dt.timezone.utc)  # noqa: UP017 - managed hosts' Pythons before 3.11


def fatal_line(log_text):
    for line in reversed(log_text.splitlines()):
        if "FATAL:" in line or "PANIC:" in line:
            return line.split(":", 3)[-1].strip() if line.count(":") >= 3 else line.strip()
    return None


def ensure_started(params):
    data_dir = params["data_dir"]
    if not os.path.isfile(os.path.join(data_dir, "PG_VERSION")) or running_pid(data_dir):
        return {"changed": False}
    start(params)
    return {"changed": True}


def rollback(psycopg, params):
    """Put the snapshot's copy back, start the server and compare what it holds with what
    the snapshot recorded; per database, what the rollback check judges. Without a complete
    snapshot (no state.json) the target is left as it is; one rolled back and proved before
    (a `rolled-back` mark) is not touched again."""
    data_dir, folder = params["data_dir"], params["snapshot_dir"]
    marked = os.path.isfile(os.path.join(folder, MARK))
    try:
        with open(os.path.join(folder, STATE), encoding="utf-8") as state_file:
            state = json.load(state_file)
    except FileNotFoundError:
        state = None
    if state is None or marked:
        # Nothing to roll back to (the snapshot never finished: a drill stopped during it)
        # or done before: the target is left as it is, but running, as it was found.
        started = ensure_started(params)["changed"]
        return {"changed": started, "matches": None, "started": started, "databases": {
            database: {"snapshot": state is not None, "already": marked, "expected_exists": None,
                       "expected": None, "actual_exists": None, "actual": {}}
            for database in params["databases"]}}
    copy = os.path.join(folder, COPY)
    if state.get("data_dir") != data_dir or not os.path.isfile(os.path.join(copy, "PG_VERSION")):
        raise Failed("the snapshot in %s is not a copy of %s" % (folder, data_dir))
    stop(params)
    clear(data_dir)
    copy_tree(copy, data_dir)
    start(params)
    wait_connect(psycopg, params, time.monotonic() + params["ready_timeout_s"]).close()
    system_id, counts = measure(psycopg, params)
    expected = state.get("counts") or {}
    databases = {database: {
        "snapshot": True, "already": False,
        "expected_exists": expected.get(database) is not None,
        "expected": expected.get(database) or {},
        "actual_exists": counts.get(database) is not None,
        "actual": counts.get(database) or {}} for database in params["databases"]}
    matches = system_id == state.get("system_identifier") and counts == expected
    if matches:
        with open(os.path.join(folder, MARK), "w", encoding="utf-8") as mark:
            mark.write("%s\n" % params["drill_id"])
    return {"changed": True, "matches": matches, "system_identifier": system_id,
            "expected_system_identifier": state.get("system_identifier"),
            "databases": databases}


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        database=dict(type="str", default="postgres"),
        state=dict(type="str", required=True,
                   choices=["snapshot", "disaster", "restore", "rollback", "started", "room"]),
        data_dir=dict(type="path", required=True),
        databases=dict(type="list", elements="str", default=[]),
        snapshot_dir=dict(type="path", required=True),
        os_user=dict(type="str", default="postgres"),
        bin_dir=dict(type="path", default="/usr/lib/postgresql/15/bin"),
        start_command=dict(type="list", elements="str", default=[]),
        stop_command=dict(type="list", elements="str", default=[]),
        server_log=dict(type="str", default=""),
        ready_timeout_s=dict(type="int", default=120),
        recovery_timeout_s=dict(type="int", default=1800),
        pgbackrest=dict(type="str", default="pgbackrest"),
        pgbackrest_config=dict(type="str", default=""),
        stanza=dict(type="str", default=None),
        backup_set=dict(type="str", default=""),
        target_type=dict(type="str", default="default"),
        target=dict(type="str", default=""),
        target_exclusive=dict(type="bool", default=False),
        drill_id=dict(type="str", default=""),
    )
    module = AnsibleModule(argument_spec=args, supports_check_mode=False,
                           required_if=[("state", "restore", ["stanza"])])
    params = module.params
    psycopg = import_psycopg(module)
    try:
        if params["state"] == "snapshot":
            result = snapshot(psycopg, params)
        elif params["state"] == "disaster":
            result = disaster(params)
        elif params["state"] == "restore":
            result = restore(psycopg, params)
        elif params["state"] == "started":
            result = ensure_started(params)
        elif params["state"] == "room":
            result = room(params)
        else:
            result = rollback(psycopg, params)
    except Failed as exc:
        module.fail_json(msg=str(exc))
    except (OSError, ValueError) as exc:
        module.fail_json(msg="%s: %s" % (params["state"], exc))
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL %s:%s: %s" % (params["host"], params["port"],
                                                       str(exc).strip()))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
