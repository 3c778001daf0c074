"""The recovery runbook as data (drtool.report.runbook): its steps in a recovery's order with
the commands drtool's modules would run, each step's time at the newest passed drill and its
median over the quarter, and whether a recent drill proves it."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

from drtool.adapters import modules
from drtool.components import Component, Place
from drtool.config import Environment, Inventory
from drtool.core.model import Objectives
from drtool.report import render, runbook
from drtool.report.model import Recorded

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
COMPONENTS = (
    Component("main", "postgres", Place("pg1", "127.0.0.1", 5432), Place("pg1", "127.0.0.1", 5432),
              databases=("appdb", "shop")),
    Component("cache", "redis", Place("r1", "127.0.0.1", 6379), Place("r1", "127.0.0.1", 6379)),
    Component("api", "service", None, Place("app"), after=("main", "cache")),
)
VALUES = {"pg1": [{"name": "main", "kind": "postgres", "side": "recovery",
                   "values": {"bin_dir": "/usr/lib/postgresql/16/bin", "jobs": 4,
                              "user": "restorer"}}],
          "r1": [{"name": "cache", "kind": "redis", "side": "recovery",
                  "values": {"rdb_path": "/var/lib/redis/dump.rdb",
                             "start_command": ["redis-server", "/etc/redis/cache.conf"]}}],
          "app": [{"name": "api", "kind": "service", "side": "recovery",
                   "values": {"unit": "shop-api", "health_url": "http://127.0.0.1:8080/h"}}]}


def environment(cadence: float | None = 7) -> Environment:
    hosts = {h: {"components": VALUES[h], "backup_path": f"/srv/stage/BACKUP_ID/{h}"}
             for h in VALUES}
    return Environment("prod", Inventory((Path("/inv/prod"),)), "production",
                       Objectives(600, 300), {}, hosts, COMPONENTS, Path("/store"), (),
                       cadence_days=cadence, recovering=True,
                       contacts=({"name": "Ana", "role": "DBA", "reach": "+44 20 0000"},))


def drill(drill_id: str, ended: str, restore_s: float, verify_s: float) -> Recorded:
    journal = {"phases": [
        {"name": "restore", "duration_s": restore_s + 1,
         "tasks": [{"name": "Check the backup's files of the components restored onto this host",
                    "duration_s": 0.5}],
         "components": [{"component": "main", "duration_s": restore_s},
                        {"component": "cache", "duration_s": 2.0}]},
        {"name": "restart", "duration_s": 6.0}, {"name": "verify", "duration_s": verify_s}]}
    record = {"drill_id": drill_id, "operation": "drill", "status": "passed",
              "started_at": ended, "ended_at": ended, "rto_s": restore_s + 10,
              "rpo_measured_s": 4.0}
    return Recorded(1, record, "h", "s", "/j", journal)


BACKUP = {"id": "bk-1", "consistent_at": "2026-12-07T11:00:00+00:00", "size": 10,
          "verified_by": "d2", "location": "/store/bk-1", "manifest_sha256": "ab" * 32}


def build(history, cadence=7):
    return runbook.build(environment(cadence), history, BACKUP, None, "/store/bk-1", NOW,
                         {"drtool": "test"})


def test_the_steps_follow_a_recovery_with_the_commands_the_modules_build():
    book = build([drill("d1", "2026-12-01T10:00:00+00:00", 30, 5)])
    assert [(s["phase"], s["component"]) for s in book["steps"]] == [
        ("integrity", None), ("stop", "api"), ("restore", "main"), ("restore", "main"),
        ("restore", "cache"), ("restart", "api"), ("verify", None)]
    assert book["command"] == "drtool recover --env prod --backup bk-1"
    appdb = book["steps"][2]
    expected = modules.load("modules.pg_restore").restore_argv({
        "pg_restore": "/usr/lib/postgresql/16/bin/pg_restore", "jobs": 4, "database": "appdb",
        "host": "127.0.0.1", "port": 5432, "user": "restorer", "no_owner": False,
        "no_privileges": False, "role": None, "src": "/srv/stage/bk-1/pg1/postgres/main/appdb"})
    assert appdb["commands"][-1] == shlex.join(expected) and appdb["host"] == "pg1"
    assert "--jobs=4" in appdb["commands"][-1]
    assert book["steps"][4]["commands"][-1] == "redis-server /etc/redis/cache.conf"
    assert book["steps"][1]["commands"] == ["systemctl stop shop-api"]
    assert book["services_order"] == [["api"]] and book["contacts"][0]["name"] == "Ana"


def test_each_step_has_its_time_at_the_last_drill_and_its_quarters_median():
    book = build([drill("d1", "2026-11-20T10:00:00+00:00", 30, 5),
                  drill("d2", "2026-12-01T10:00:00+00:00", 50, 9),
                  drill("d0", "2026-09-01T10:00:00+00:00", 500, 99)])  # last quarter's
    steps = {(s["phase"], s["component"]): s for s in book["steps"]}
    assert steps[("restore", "main")]["last_s"] == 50
    assert steps[("restore", "main")]["median_s"] == 40 and steps[("verify", None)]["median_s"] == 7
    assert steps[("integrity", None)]["last_s"] == 0.5
    assert book["proven"]["drill_id"] == "d2" and not book["proven"]["stale"]
    assert book["measured"]["median_rto_s"] == 50 and book["measured"]["drills"] == 2


def test_a_runbook_without_a_recent_passed_drill_says_so():
    old = build([drill("d1", "2026-11-01T10:00:00+00:00", 30, 5)])
    assert old["proven"]["stale"] and "older than the cadence of 7 days" in old["proven"]["why"]
    never = build([])
    assert never["proven"]["stale"] and never["proven"]["drill_id"] is None
    assert all(s["last_s"] is None for s in never["steps"])
    text = render.render_markdown(never)
    assert "> **NOT PROVEN RECENTLY: no drill of this environment has passed" in text
    assert "NOT PROVEN RECENTLY" not in render.render_markdown(
        build([drill("d1", "2026-12-06T10:00:00+00:00", 30, 5)]))


def test_the_markdown_runbook_reads_as_numbered_steps_with_their_commands():
    text = render.render_markdown(build([drill("d1", "2026-12-06T10:00:00+00:00", 30, 5)]))
    assert "    drtool recover --env prod --backup bk-1 --note \"INCIDENT-ID\"" in text
    assert "3. **restore: main** on pg1 (last drill 30.0 s; quarter median 30.0 s)" in text
    assert "       /usr/lib/postgresql/16/bin/pg_restore --jobs=4" in text
    assert "| Ana | DBA | +44 20 0000 |" in text


def test_the_quarterly_report_names_the_drill_that_proves_the_runbook_and_its_steps():
    from drtool.report.model import drill_entry, runbook_proof

    passed = drill_entry(drill("d2", "2026-12-01T10:00:00+00:00", 50, 9))
    failed = {**drill_entry(drill("d3", "2026-12-02T10:00:00+00:00", 1, 1)), "status": "failed"}
    proof = runbook_proof([passed, failed], "prod")
    assert proof is not None and proof["drill_id"] == "d2"
    assert proof["steps"] == [
        {"step": "restore", "duration_s": 51}, {"step": "restore of main", "duration_s": 50},
        {"step": "restore of cache", "duration_s": 2.0}, {"step": "restart", "duration_s": 6.0},
        {"step": "verify", "duration_s": 9}]
    assert runbook_proof([failed], "prod") is None
