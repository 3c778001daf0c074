"""The recovery runbook of an environment: what to do on the day of a real disaster, as data.

Built from the environment's recovery view (each component's target its `recovery` side),
the backup to recover from, and the drills recorded in its history: which backup and where,
the one command that runs it all (`drtool recover`), then the same steps by hand, component
by component, with the commands each runs on which host, and how long each step took at the
newest passed drill and, as a median, over the quarter. The commands that drtool's modules
run (pg_restore, pgbackrest restore) are built by the modules' own functions
(adapters.modules), so the runbook cannot drift from what a recovery runs.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from drtool import components as kinds
from drtool.adapters import modules
from drtool.components import methods
from drtool.components import postgres as postgres_kind
from drtool.components import service as service_kind
from drtool.config import STORE_BACKUP_PATH, Environment
from drtool.core.clock import parse_iso
from drtool.core.manifest import Manifest
from drtool.report.model import Recorded, quarter_of

RUNBOOK_SCHEMA = 1
# How a step's time is read from a drill's journal: (what, name), see _seconds.
PHASE, RESTORE, TASKS = "phase", "restore", "tasks"


def build(env: Environment, history: Iterable[Recorded], backup: Mapping[str, Any] | None,
          manifest: Manifest | None, store_path: str | None, now: dt.datetime,
          generated_by: Mapping[str, str]) -> dict[str, Any]:
    """The runbook of `env` (its recovery view: config's recovering=True), recovering
    from `backup` (a catalog entry: id, consistent_at, verified_by, location, size; None when
    the store holds none) whose `manifest` it reads, kept at `store_path` on this machine."""
    drills = [r for r in history if r.record.get("operation") == "drill"
              and r.record.get("status") == "passed" and r.journal]
    drills.sort(key=lambda r: r.record.get("started_at") or "")
    newest = drills[-1] if drills else None
    quarter = quarter_of(now)
    in_quarter = [r for r in drills if quarter.holds(parse_iso(r.record.get("started_at")))]
    proven = _proven(newest, env.cadence_days, now)
    values = _values(env)
    backup_id = (backup or {}).get("id") or "BACKUP_ID"
    steps = _steps(env, values, manifest, backup_id, store_path)
    for step in steps:
        last = _seconds(newest.journal, step["timed"]) if newest and newest.journal else None
        seen = [s for r in in_quarter if r.journal
                and (s := _seconds(r.journal, step["timed"])) is not None]
        step.update(last_s=last, median_s=statistics.median(seen) if seen else None,
                    drills_timed=len(seen))
        del step["timed"]
    return {
        "schema": RUNBOOK_SCHEMA, "kind": "runbook", "env": env.name,
        "generated_at": now.isoformat(), "generated_by": dict(generated_by),
        "quarter": quarter.label, "proven": proven,
        "contacts": list(env.contacts),
        "objectives": {"rto_s": env.objectives.rto_s, "rpo_s": env.objectives.rpo_s},
        "measured": _measured(newest, in_quarter),
        "backup": _backup(backup, manifest, now),
        "command": shlex.join(["drtool", "recover", "--env", env.name, "--backup", backup_id]),
        "targets": [{"component": c.name, "kind": c.kind, "host": c.target.host,
                     "where": _where(c)} for c in env.components if c.target is not None],
        "unrecovered": list(env.unrecovered),
        "services_order": service_kind.waves(env.components),
        "steps": steps,
        "checks": [{"name": c.name, "kind": c.kind, "host": c.host, "target": c.target,
                    "description": c.spec.get("description") or ""} for c in env.checks],
    }


def _proven(newest: Recorded | None, cadence_days: float | None,
            now: dt.datetime) -> dict[str, Any]:
    """The drill the procedure was last proven by; `stale` when it is older than the
    cadence (or there is none)."""
    if newest is None:
        return {"drill_id": None, "stale": True,
                "why": "no drill of this environment has passed: the procedure is unproven"}
    ended = parse_iso(newest.record.get("ended_at") or newest.record.get("started_at"))
    age_days = (now - ended).total_seconds() / 86400 if ended else None
    stale = cadence_days is not None and age_days is not None and age_days > cadence_days
    return {"drill_id": newest.record["drill_id"], "ended_at": newest.record.get("ended_at"),
            "status": newest.record.get("status"), "age_days": age_days,
            "cadence_days": cadence_days, "stale": stale,
            "why": (f"the newest passed drill is {age_days:.1f} days old, older than the "
                    f"cadence of {cadence_days:g} days" if stale else "")}


def _measured(newest: Recorded | None, in_quarter: list[Recorded]) -> dict[str, Any]:
    def median(field: str) -> float | None:
        seen = [r.record[field] for r in in_quarter if r.record.get(field) is not None]
        return statistics.median(seen) if seen else None
    return {"last_rto_s": newest.record.get("rto_s") if newest else None,
            "last_rpo_s": newest.record.get("rpo_measured_s") if newest else None,
            "median_rto_s": median("rto_s"), "median_rpo_s": median("rpo_measured_s"),
            "drills": len(in_quarter)}


def _backup(backup: Mapping[str, Any] | None, manifest: Manifest | None,
            now: dt.datetime) -> dict[str, Any] | None:
    if backup is None:
        return None
    consistent = parse_iso(backup.get("consistent_at"))
    physical: list[dict[str, Any]] = []
    out = {"id": backup.get("id"), "consistent_at": backup.get("consistent_at"),
           "age_s": (now - consistent).total_seconds() if consistent else None,
           "verified_by": backup.get("verified_by"), "location": backup.get("location"),
           "manifest": str(backup.get("location") or "").rstrip("/") + "/manifest.json",
           "manifest_sha256": backup.get("manifest_sha256"), "size": backup.get("size"),
           "physical": physical}
    for part in manifest.physical if manifest else ():
        target = part.recovery_target or {}
        physical.append({
            "component": part.component, "stanza": part.stanza,
            "backup_set": part.backup.get("label"), "target_type": target.get("type"),
            "target": target.get("target")})
    return out


def _values(env: Environment) -> dict[tuple[str, str], dict[str, Any]]:
    """{(component, side): its resolved values} as describe published them (no secrets)."""
    out = {}
    for host, settings in env.hosts.items():
        for found in settings.get("components") or []:
            if isinstance(found, dict):
                out[(str(found.get("name")), str(found.get("side")))] = {
                    **(found.get("values") or {}), "_host": host}
    return out


def _where(component: kinds.Component) -> str:
    place = component.target
    if place is None:
        return "-"
    if component.kind == "files":
        return place.path or "-"
    return f"{place.address}:{place.port}" if place.port else place.host


def _host_path(env: Environment, host: str, backup_id: str, store_path: str | None) -> str:
    """Where `host` stages the backup (drtool_backup_path), with its id filled in."""
    path = str(env.hosts.get(host, {}).get("backup_path") or "")
    if path.startswith(STORE_BACKUP_PATH) and store_path:
        path = store_path + path[len(STORE_BACKUP_PATH):]
    return path.replace("BACKUP_ID", backup_id) or f"(drtool_backup_path)/{backup_id}"


def _steps(env: Environment, values: Mapping[tuple[str, str], dict[str, Any]],
           manifest: Manifest | None, backup_id: str, store_path: str | None
           ) -> list[dict[str, Any]]:
    """Every step, in the order a recovery runs them: [{phase, component, kind, host, what,
    commands, timed}] (`timed`: how the step's duration is read from a drill's journal)."""
    steps: list[dict[str, Any]] = []

    def add(phase: str, component: str | None, kind: str | None, host: str, what: str,
            commands: list[str], timed: tuple[str, str]) -> None:
        steps.append({"phase": phase, "component": component, "kind": kind, "host": host,
                      "what": what, "commands": commands, "timed": timed})

    add("integrity", None, None, "this machine",
        "check every file of the backup against its manifest's sha256 and size",
        [shlex.join(["drtool", "backups", "verify", "--env", env.name, "--backup", backup_id])],
        (TASKS, "Check the backup's files"))
    services = {c.name: (c, c.target.host) for c in env.components
                if c.kind == "service" and c.target is not None}
    for name, (_component, host) in services.items():
        side = values.get((name, "recovery"), {})
        stop = side.get("stop_command") or side.get("unit") and [
            "systemctl", "stop", str(side.get("unit"))]
        add("stop", name, "service", host,
            "stop the application before its stores are restored",
            [_argv(stop)] if stop else [], (TASKS, "Stop the services"))
    for component in env.components:
        if component.target is None or component.kind == "service":
            continue
        side = values.get((component.name, "recovery"), {})
        staged = _host_path(env, component.target.host, backup_id, store_path)
        for what, commands in _restore_commands(component, component.target, side, manifest,
                                                 staged):
            add("restore", component.name, component.kind, component.target.host, what,
                commands, (RESTORE, component.name))
    for wave in service_kind.waves(env.components):
        for name in wave:
            component, host = services[name]
            side = values.get((name, "recovery"), {})
            start = side.get("start_command") or side.get("unit") and [
                "systemctl", "start", str(side.get("unit"))]
            health = side.get("health_url")
            add("restart", name, "service", host,
                "start the application on the recovered stores" + (
                    f", after {', '.join(component.after)}" if component.after else "")
                + (f"; healthy when {health} answers" if health else ""),
                [_argv(start)] if start else [], (PHASE, "restart"))
    add("verify", None, None, "each recovery target",
        "exact row counts against the manifest, the sentinel, a write check, the Redis key "
        "counts, the trees' listings, the services' health and the team's checks",
        [], (PHASE, "verify"))
    return steps


def _argv(value: Any) -> str:
    return shlex.join(str(a) for a in value) if isinstance(value, list) else str(value)


def _restore_commands(component: kinds.Component, place: kinds.Place,
                      side: Mapping[str, Any], manifest: Manifest | None,
                      staged: str) -> list[tuple[str, list[str]]]:
    """(what, [commands]) of one data component's restore onto its recovery target,
    `place`."""
    if component.kind == "postgres":
        return _postgres(component, place, side, manifest, staged)
    if component.kind == "redis":
        rdb = side.get("rdb_path") or place.path or "(rdb_path)"
        start = side.get("start_command") or ["systemctl", "start",
                                              str(side.get("service_name") or "redis-server")]
        return [("stop Redis without saving, put the backup's RDB in place, start it",
                 [shlex.join(["redis-cli", "-h", str(place.address), "-p", str(place.port),
                              "SHUTDOWN", "NOSAVE"]),
                  shlex.join(["install", "-m", "0600", f"{staged}/redis/{component.name}/dump.rdb",
                              str(rdb)]),
                  _argv(start)])]
    if component.kind == "files":
        tree = place.path or "(path)"
        return [("empty the tree, then extract the backup's archive into it (owners, modes "
                 "and links kept)",
                 [shlex.join(["find", tree, "-mindepth", "1", "-delete"]),
                  shlex.join(["tar", "--extract", "--numeric-owner", "--same-permissions",
                              "--file", f"{staged}/files/{component.name}/tree.tar",
                              "--directory", tree])])]
    return []


def _postgres(component: kinds.Component, place: kinds.Place, side: Mapping[str, Any],
              manifest: Manifest | None, staged: str) -> list[tuple[str, list[str]]]:
    bin_dir = str(side.get("bin_dir") or "/usr/lib/postgresql/15/bin")
    user = str(side.get("user") or "postgres")
    method = postgres_kind.method_of(component)
    if methods.is_physical(method):
        pgbackrest = modules.load("module_utils.pgbackrest")
        recovery = postgres_kind.recovery_of(manifest).get(component.name, {}) if (
            manifest is not None) else {}
        argv = pgbackrest.restore_argv(
            str(side.get("pgbackrest_bin") or "pgbackrest"), str(side.get("pgbackrest_stanza")),
            str(side.get("data_dir") or place.path or "(data_dir)"),
            recovery.get("target_type") or "default", recovery.get("target") or None,
            bool(recovery.get("exclusive")), side.get("pgbackrest_config") or None,
            backup_set=recovery.get("backup_set") or None)
        return [("stop the cluster, restore its data directory from the pgBackRest "
                 "repository to the backup's recovery target, start it and let it promote",
                 [_argv(side.get("stop_command") or "(stop the cluster)"), shlex.join(argv),
                  _argv(side.get("start_command") or "(start the cluster)")])]
    pg_restore = modules.load("modules.pg_restore")
    databases = list(component.databases) or (
        [p.database for p in manifest.postgres if p.component == component.name]
        if manifest else [])
    out = []
    for database in databases:
        folder = f"{staged}/postgres/{component.name}/{database}"
        connect = ["--host", str(place.address), "--port", str(place.port),
                   "--username", user]
        argv = pg_restore.restore_argv({
            "pg_restore": f"{bin_dir}/pg_restore", "jobs": int(side.get("jobs") or 1),
            "database": database, "host": str(place.address), "port": int(place.port or 5432),
            "user": user, "no_owner": False, "no_privileges": False, "role": None,
            "src": folder})
        owner = _owner(f"{folder}/database.json")
        out.append((
            f"{database}: create the roles its dump needs that the target lacks (those "
            f"{folder}/globals.sql defines, never changing a role that exists), recreate it "
            f"empty and owned as it was ({owner or 'its owner: database.json'}), pg_restore "
            "the dump",
            [shlex.join([f"{bin_dir}/psql", *connect, "--dbname", "postgres", "--command",
                         f"DROP DATABASE IF EXISTS {_ident(database)} WITH (FORCE)"]),
             shlex.join([f"{bin_dir}/createdb", *connect,
                         *(["--owner", owner] if owner else []), database]),
             shlex.join(argv)]))
    return out


def _owner(path: str) -> str | None:
    """Who owned the database when it was dumped (database.json beside the dump), when the
    backup is on this machine."""
    try:
        owner = json.loads(Path(path).read_text(encoding="utf-8")).get("owner")
    except (OSError, ValueError, AttributeError):
        return None
    return str(owner) if owner else None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _seconds(journal: Mapping[str, Any], timed: tuple[str, str]) -> float | None:
    """A step's duration in one drill's journal: a phase's, a component's restore run, or
    the longest task of a name."""
    what, name = timed
    phases = {p.get("name"): p for p in journal.get("phases") or [] if isinstance(p, dict)}
    if what == PHASE:
        value = (phases.get(name) or {}).get("duration_s")
        return float(value) if value is not None else None
    if what == RESTORE:
        run = next((c for c in (phases.get("restore") or {}).get("components") or []
                    if c.get("component") == name), None)
        return float(run["duration_s"]) if run and run.get("duration_s") is not None else None
    durations = [float(t["duration_s"]) for p in phases.values() for t in p.get("tasks") or []
                 if str(t.get("name", "")).startswith(name) and t.get("duration_s") is not None]
    return max(durations) if durations else None
