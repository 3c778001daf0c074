"""Where the recovery time went: a journal's RTO phases split into the steps that acted on
hosts and the orchestration around them, and the drill report's chart and table of it."""

from __future__ import annotations

import datetime as dt
import json

from drtool.cli.main import main
from drtool.core.model import Journal, Objectives, PhaseRecord, TaskRecord
from drtool.report import recovery_time
from drtool.report.charts import recovery_chart
from tests.unit.test_report import home, record  # noqa: F401 - the fixture

DECLARED = dt.datetime(2026, 11, 2, 5, 0, tzinfo=dt.UTC)


def at(seconds: float) -> str:
    return (DECLARED + dt.timedelta(seconds=seconds)).isoformat()


def task(host: str, name: str, action: str, start: float, end: float,
         status: str = "changed") -> TaskRecord:
    return TaskRecord(host, name, action, status, at(start), at(end), round(end - start, 3))


def phase(name: str, start: float, end: float, tasks: list[TaskRecord]) -> PhaseRecord:
    return PhaseRecord(name, "passed", started_at=at(start), ended_at=at(end),
                       duration_s=end - start, tasks=tasks)


def drill(drill_id: str = "d-rto") -> Journal:
    """A drill whose RTO of 20 s holds: a disaster of 4 s (a 1 s stop), a restore of 10 s
    where two hosts restored side by side (2-8 s and 5-9 s from the phase's start: 7 s of
    work, not 10), a restart of 2 s and a verify of 3.5 s, 0.5 s between phases."""
    phases = [
        phase("preflight", -30, -20, [task("pg", "Check", "drtool.drill.pg_facts", -29, -21)]),
        phase("disaster", 0, 4, [
            task("app", "Stop the application", "ansible.builtin.command", 1, 2),
            task("pg", "Refuse destructive steps", "ansible.builtin.assert", 0.2, 0.9, "ok"),
            task("pg", "Run the entry point", "ansible.builtin.include_role", 2, 3.5, "ok"),
        ]),
        phase("restore", 4, 14, [
            task("pg", "Restore the dump", "drtool.drill.pg_restore", 6, 12),
            task("redis", "Load the RDB", "drtool.drill.redis_restore", 9, 13),
            task("redis", "Roll back", "ansible.builtin.include_tasks", 13, 13.5, "skipped"),
            task("pg", "Skipped restore", "drtool.drill.pg_restore", 12, 13.9, "skipped"),
        ]),
        phase("restart", 14.5, 16.5, [
            task("app", "Start the application", "ansible.builtin.command", 15, 16)]),
        phase("verify", 16.5, 20, [
            task("pg", "Measure", "drtool.drill.pg_verify", 17, 19, "ok")]),
        phase("cleanup", 20, 25, [task("pg", "Remove", "ansible.builtin.file", 21, 24)]),
    ]
    return Journal(drill_id, "sandbox", "drill", at(-30), status="passed", ended_at=at(25),
                   objectives=Objectives(300, 120), rto_s=20.0,
                   disaster_declared_at=at(0), phases=phases)


def as_dict(journal: Journal) -> dict:
    return json.loads(json.dumps(journal.to_dict()))


def test_the_rto_splits_into_work_on_hosts_and_orchestration_phase_by_phase():
    where = recovery_time.breakdown(as_dict(drill()))
    assert where is not None
    rows = {p["name"]: p for p in where["phases"]}
    # Only the phases between the declaration and the verification.
    assert list(rows) == ["disaster", "restore", "restart", "verify"]
    assert (rows["disaster"]["work_s"], rows["disaster"]["orchestration_s"]) == (1.0, 3.0)
    # Two hosts side by side: the union of 6-12 and 9-13, not the sum.
    assert rows["restore"]["spans"] == [(6.0, 13.0)]
    assert (rows["restore"]["work_s"], rows["restore"]["orchestration_s"]) == (7.0, 3.0)
    assert rows["restart"]["started_s"] == 14.5
    assert where["work_s"] == 1.0 + 7.0 + 1.0 + 2.0
    assert where["orchestration_s"] == 20.0 - 11.0
    assert where["between_phases_s"] == 0.5
    # The longest steps first, with their share of the RTO; bookkeeping and skipped
    # tasks are not steps; the cleanup and preflight are outside the RTO.
    names = [s["name"] for s in where["steps"]]
    assert names == ["Restore the dump", "Load the RDB", "Measure", "Stop the application",
                     "Start the application"]
    assert where["steps"][0]["share"] == 0.3 and where["steps"][0]["phase"] == "restore"


def test_a_drill_without_an_rto_has_no_breakdown():
    journal = drill()
    journal.rto_s = None
    assert recovery_time.breakdown(as_dict(journal)) is None
    journal = drill()
    journal.disaster_declared_at = None
    assert recovery_time.breakdown(as_dict(journal)) is None


def test_the_chart_draws_each_phase_and_its_work_on_the_rto_axis():
    where = recovery_time.breakdown(as_dict(drill()))
    assert where is not None
    svg = recovery_chart(where)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="phase"') == 4
    # One span of work per merged interval: disaster 1, restore 1, restart 1, verify 1.
    assert svg.count('class="work"') == 4
    assert "11.0 s steps acting on hosts and 9.0 s Ansible and drtool" in svg


def test_the_drill_report_says_where_the_recovery_time_went(home):  # noqa: F811
    record([drill()])
    assert main(["report", "--drill", "d-rto", "--format", "md,html,json", "--out",
                 str(home)]) == 0
    markdown = (home / "sandbox-d-rto.md").read_text()
    assert "## Where the recovery time went" in markdown
    assert "| restore | 10.0 s | 7.0 s | 3.0 s |" in markdown
    assert "| Restore the dump | restore | pg | 6.0 s | 30 % |" in markdown
    html = (home / "sandbox-d-rto.html").read_text()
    assert "Where the recovery time went" in html and 'class="work"' in html
    data = json.loads((home / "sandbox-d-rto.json").read_text())
    assert data["drill"]["recovery"]["work_s"] == 11.0
