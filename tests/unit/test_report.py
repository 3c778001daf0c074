"""Reports: quarters, cadence, the report's figures, the charts, escaping, and the command's
errors. Built from hand-made journals written through the real history, marked as such in
their notes; the sandbox tests report on real drills."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import xml.etree.ElementTree as ET

import pytest

from drtool import paths
from drtool.cli.main import main
from drtool.core.model import Check, Failure, Journal, Objectives, PhaseRecord
from drtool.drill.journal_writer import JournalWriter
from drtool.report import model, render
from drtool.report.charts import Point, trend_chart
from drtool.store.history import History, record_of

UTC = dt.UTC
Q4 = model.parse_quarter("2026-Q4")
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def at(month: int, day: int, hour: int = 5) -> str:
    return dt.datetime(2026, month, day, hour, tzinfo=UTC).isoformat()


def journal(drill_id: str, started: str, status: str = "passed", rto: float | None = 20.0,
            rpo: float | None = 6.0, operation: str = "drill", note: str | None = None,
            failure: Failure | None = None) -> Journal:
    j = Journal(drill_id, "sandbox", operation, started, status=status, ended_at=started,
                objectives=Objectives(300, 120), rto_s=rto, rpo_measured_s=rpo,
                rpo_backup_age_s=rpo, failure=failure,
                note=note or "hand-made journal for a unit test",
                phases=[PhaseRecord("backup", PASSED_OR(status), duration_s=3.5)],
                scope={"tier": "sandbox", "inventory": "/x/inventories/sandbox",
                       "inventory_version": {"commit": "a" * 40, "dirty": False},
                       "cadence_days": 7, "hosts": [], "data_stores": []},
                checks=[Check("objective.rto", "sandbox", "<= 300", rto, status)])
    return j


def PASSED_OR(status: str) -> str:  # noqa: N802 - reads as a constant at the call site
    return "passed" if status == "passed" else "failed"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    return tmp_path


def record(journals: list[Journal]) -> list[model.Recorded]:
    with History(paths.history_db()) as history:
        for j in journals:
            writer = JournalWriter(paths.evidence_dir(j.env) / j.drill_id, j)
            writer.save()
            history.append(record_of(j), writer.path)
        from drtool.report import gather

        return gather.recorded(history, "sandbox")


MIX = [
    journal("d-sep", at(9, 28)),  # the quarter before: counts only for the longest gap
    journal("d-1", at(10, 2)),
    journal("d-2", at(10, 9), "failed", rto=400.0, rpo=8.0,
            failure=Failure("verify", "RTO 400 s over its objective of 300 s", "check")),
    journal("d-3", at(10, 23), "aborted", rto=None, rpo=None,
            failure=Failure("restore", "interrupted by a signal", "interrupted")),
    journal("b-1", at(10, 24), operation="backup", rto=None, rpo=None),
    journal("d-4", at(11, 20), rpo=150.0, note="after the | pipe <script>alert(1)</script>"),
]


def test_quarters_parse_to_utc_bounds_and_bad_ones_are_refused():
    assert (Q4.start, Q4.end) == (dt.datetime(2026, 10, 1, tzinfo=UTC),
                                  dt.datetime(2027, 1, 1, tzinfo=UTC))
    assert model.parse_quarter("2026q1").end == dt.datetime(2026, 4, 1, tzinfo=UTC)
    assert model.quarter_of(dt.datetime(2026, 6, 30, 23, 59, tzinfo=UTC)).label == "2026-Q2"
    for bad in ("2026-Q5", "2026", "Q4", "26-Q4", ""):
        with pytest.raises(ValueError, match="not a quarter"):
            model.parse_quarter(bad)


def test_the_quarterly_report_counts_judges_and_lists_exceptions(home):
    report = model.quarterly_report("sandbox", Q4, record(MIX), model.chain_state(
        6, None, "h", NOW), NOW, {"drtool": "test"}, {"d-2": "raised the target's CPU"})
    s = report["summary"]
    assert [d["drill_id"] for d in report["drills"]] == ["d-1", "d-2", "d-3", "d-4"]
    assert (s["drills"], s["passed"], s["failed"], s["aborted"]) == (4, 2, 1, 1)
    assert s["other_operations"] == {"backup": 1}
    assert (s["rto"]["met"], s["rto"]["judged"], s["rto"]["min"], s["rto"]["max"]) == (
        2, 3, 20.0, 400.0)
    assert s["rpo"]["met"] == 2 and s["rpo"]["judged"] == 3  # d-4 lost 150 s > 120 s
    assert [(e["drill_id"], e["failure"]["phase"], e["remediation"])
            for e in report["exceptions"]] == [("d-2", "verify", "raised the target's CPU"),
                                               ("d-3", "restore", "")]
    assert report["quarter"]["complete"] is False and report["quarter"]["as_of"] == NOW.isoformat(
        timespec="milliseconds")
    assert report["scope"]["inventory_version"]["commit"] == "a" * 40
    assert "4 recovery drills of sandbox ran in 2026-Q4: 2 passed, 1 failed, 1 aborted." in (
        report["headline"])


def test_cadence_counts_due_periods_met_missed_and_open():
    drills = [{"drill_id": i, "started_at": t, "status": s} for i, t, s in (
        ("a", at(10, 2), "passed"), ("b", at(10, 9), "failed"), ("c", at(10, 20), "passed"))]
    as_of = dt.datetime(2026, 10, 31, tzinfo=UTC)
    c = model.cadence_compliance(7, Q4.start, as_of, drills, None)
    assert [p["state"] for p in c["periods"]] == ["met", "no drill passed", "met", "missed",
                                                   "open"]
    assert (c["due"], c["met"], c["compliant"]) == (4, 2, False)
    assert c["longest_gap_days"] == pytest.approx(18.0, abs=0.01)  # 10-02 05:00 to 10-20 05:00
    assert c["longest_gap_within_cadence"] is False
    unset = model.cadence_compliance(None, Q4.start, as_of, drills, None)
    assert unset["assessed"] is False and "drtool_drill_cadence_days" in unset["reason"]


def test_a_pass_before_the_quarter_counts_for_the_longest_gap():
    drills = [{"drill_id": "a", "started_at": at(10, 3), "status": "passed"}]
    c = model.cadence_compliance(7, Q4.start, dt.datetime(2026, 10, 8, tzinfo=UTC), drills,
                                 dt.datetime(2026, 9, 20, tzinfo=UTC))
    assert c["longest_gap_days"] == pytest.approx(13.21, abs=0.01)
    assert c["compliant"] is True  # the one due period had its pass


def test_the_chart_draws_one_mark_per_drill_and_the_objective():
    points = [Point(dt.datetime(2026, 10, 2, tzinfo=UTC), 20.0, True, "d-1"),
              Point(dt.datetime(2026, 10, 9, tzinfo=UTC), 400.0, False, "d-2"),
              Point(dt.datetime(2026, 10, 23, tzinfo=UTC), None, None, "d-3 <aborted>")]
    svg = ET.fromstring(trend_chart(  # noqa: S314 - our own output
"RTO", points, [(Q4.start, 300.0)], Q4.start, Q4.end))
    circles = [c for c in svg.iter(f"{SVG}circle") if "point" in c.get("class", "")]
    assert [c.get("class") for c in circles] == ["point met", "point missed"]
    assert len([g for g in svg.iter(f"{SVG}g") if "not-measured" in g.get("class", "")]) == 1
    objective = next(p for p in svg.iter(f"{SVG}path") if p.get("class") == "objective")
    # 300 s on an axis that reaches past 400 s: the dashed line is inside the plot.
    assert 52 < float(objective.get("d").split()[2]) < 238
    ticks = [t.text for t in svg.iter(f"{SVG}text") if t.text and "2026" in t.text]
    assert ticks == ["01 Oct 2026", "01 Nov 2026", "01 Dec 2026"]


def test_html_escapes_journal_text_and_markdown_keeps_its_tables(home):
    report = model.quarterly_report("sandbox", Q4, record(MIX), model.chain_state(
        6, None, "h", NOW), NOW, {"drtool": "test"})
    html = render.render_html(report)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert html.count("<svg") == 2
    markdown = render.render_markdown(report)
    row = next(line for line in markdown.splitlines() if line.startswith("| 2026-11-20"))
    assert "after the \\| pipe" in row
    assert row.replace("\\|", "").count("|") == 10  # nine cells, none split by the note


def test_report_command_writes_every_format_but_pdf_here(home, capsys):
    record(MIX)
    out = home / "out"
    assert main(["report", "--env", "sandbox", "--quarter", "2026-Q4", "--format",
                 "html,md,json", "--out", str(out)]) == 0
    written = capsys.readouterr().out.split()
    assert written == [str(out / f"sandbox-2026-Q4.{f}") for f in ("html", "md", "json")]
    data = json.loads((out / "sandbox-2026-Q4.json").read_text())
    assert data["schema"] == "drtool.report/1" and data["summary"]["drills"] == 4
    assert data["chain"]["intact"] is True and data["chain"]["records"] == 6


def test_one_drill_report_carries_its_checks_and_hashes(home, capsys):
    record(MIX)
    assert main(["report", "--drill", "d-2", "--format", "md,json", "--out", str(home)]) == 0
    markdown = (home / "sandbox-d-2.md").read_text()
    assert "**Result: FAILED**, at verify: RTO 400 s over its objective" in markdown
    data = json.loads((home / "sandbox-d-2.json").read_text())
    with History(paths.history_db()) as history:
        link = next(link for link, _p in history.links("sandbox") if link.drill_id == "d-2")
    assert data["drill"]["evidence"]["record_hash"] == link.hash
    assert link.hash in markdown and link.journal_sha256 in markdown


def test_a_broken_chain_is_reported_and_exits_1(home, capsys):
    record(MIX)
    db = sqlite3.connect(paths.history_db())
    db.execute("DELETE FROM drills WHERE drill_id = 'd-2'")
    db.commit()
    db.close()
    assert main(["report", "--env", "sandbox", "--quarter", "2026-Q4", "--format", "json",
                 "--out", str(home)]) == 1
    err = capsys.readouterr().err
    assert "broken at record 4 (drill d-3)" in err
    data = json.loads((home / "sandbox-2026-Q4.json").read_text())
    assert data["chain"]["intact"] is False and "BROKEN" in data["headline"][0]


@pytest.mark.parametrize(("args", "message"), [
    (["report"], "give either --env"),
    (["report", "--env", "sandbox", "--drill", "x"], "give either --env"),
    (["report", "--drill", "x", "--quarter", "2026-Q4"], "--quarter goes with --env"),
    (["report", "--env", "sandbox", "--quarter", "2026-Q9"], "not a quarter: '2026-Q9'"),
    (["report", "--env", "sandbox", "--format", "html,docx"], "unknown report format docx"),
    (["report", "--drill", "nope"], "no drill 'nope' is recorded"),
    (["report", "--env", "atlantis"], "unknown environment 'atlantis'"),
    (["report", "--env", "../etc"], "not an environment name"),
])
def test_bad_report_arguments_are_one_line_errors_with_exit_2(home, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_remediation_notes_must_map_ids_to_text(home, capsys):
    record(MIX)
    notes = home / "notes.yml"
    notes.write_text("- just a list\n")
    assert main(["report", "--env", "sandbox", "--remediation", str(notes)]) == 2
    assert "must map drill ids to text" in capsys.readouterr().err
    assert main(["report", "--env", "sandbox", "--remediation", str(home / "none.yml")]) == 2
    assert "cannot read remediation notes" in capsys.readouterr().err


def test_the_summary_keeps_paths_urls_and_errors_whole_on_a_narrow_terminal(tmp_path):
    """A scheduled drill's log is 80 columns wide or less: a journal path folded over two
    lines cannot be found by a program reading the log, and an error's brackets are text."""
    import io

    from rich.console import Console

    from drtool.report.console import render_summary

    journal = Journal("20261122T113531Z-ae2e64", "sandbox-s3", "drill",
                      "2026-11-22T11:35:31+00:00", status="failed",
                      failure=Failure("restore", "[errno 5] read error on /srv/x", "check"),
                      warnings=["evidence copy failed: [bold]not markup[/bold]"])
    path = tmp_path / ("long-folder-name-" * 4) / "journal.json"
    anchor = {"url": "s3://drtool-sandbox-evidence/drills/sandbox-s3/chain/"
                     "0000000004-20261122T113531Z-ae2e64.json", "version_id": "f2eb6506"}
    out = io.StringIO()
    render_summary(journal, path, Console(file=out, width=40, highlight=False),
                   anchor=anchor, anchor_problem=None)
    lines = out.getvalue().splitlines()
    assert f"Journal   {path}" in lines
    assert f"Anchored  history head at {anchor['url']} version f2eb6506" in lines
    assert "Failure at restore: [errno 5] read error on /srv/x" in lines
    assert "Warning   evidence copy failed: [bold]not markup[/bold]" in lines


def test_drills_of_scheduled_backups_are_told_apart_from_drills_of_fresh_ones(home):
    from drtool.core.model import BackupRef

    def drill(drill_id: str, day: int, rpo: float, chosen: str | None) -> Journal:
        made = journal(drill_id, at(10, day), rpo=rpo)
        made.backup = BackupRef(f"bk-{drill_id}", at(10, day), "/m", chosen=chosen)
        return made

    only_fresh = model.quarterly_report("sandbox", Q4, record(
        [drill("f-1", 2, 6.0, "fresh"), drill("f-2", 9, 7.0, "fresh")]),
        model.chain_state(2, None, "h", NOW), NOW, {"drtool": "test"})
    assert only_fresh["summary"]["rpo_scheduled"]["count"] == 0
    assert any(line.startswith("Every drill restored a backup it made itself")
               for line in only_fresh["headline"])

    both = model.quarterly_report("sandbox", Q4, record(
        [drill("s-1", 16, 5400.0, "latest"), drill("s-2", 23, 100.0, "random"),
         drill("old", 24, 8.0, None)]),  # a journal before schema 7 says nothing
        model.chain_state(5, None, "h", NOW), NOW, {"drtool": "test"})
    kinds = {d["drill_id"]: d["backup_kind"] for d in both["drills"]}
    assert kinds == {"f-1": "fresh", "f-2": "fresh", "s-1": "scheduled", "s-2": "scheduled",
                     "old": None}
    scheduled = both["summary"]["rpo_scheduled"]
    assert (scheduled["count"], scheduled["max"], scheduled["met"], scheduled["judged"]) == (
        2, 5400.0, 1, 2)
    assert both["summary"]["rpo_fresh"]["count"] == 2
    assert ("2 drills restored a backup the schedule had made: their data loss, worst 1 h 30 "
            "min, is what a real disaster would have cost (1 of 2 within the objective)."
            ) in both["headline"]
    markdown = render.render_markdown(both)
    assert ("| Data loss, drills of scheduled backups (what a disaster would lose) | 2 min "
            "| 1 of 2 | 1 min 40 s | 45 min 50 s | 1 h 30 min |") in markdown
    assert ("| Data loss, drills of their own fresh backups | 2 min | 2 of 2 | 6.0 s | 6.5 s "
            "| 7.0 s |") in markdown
    assert ("| `s-1` (hand-made journal for a unit test) | PASSED | 20.0 s | 1 h 30 min | "
            "scheduled | 1 h 30 min |") in markdown
    assert "Data loss, drills of scheduled backups" in render.render_html(both)


def test_a_drill_report_gives_the_data_loss_of_each_restored_store(home):
    made = journal("d-stores", at(11, 2))
    made.rpo_by_store = [
        {"store": "postgres:main/appdb", "component": "main", "kind": "postgres",
         "backup_id": "bk-1", "backup_consistent_at": at(11, 2, 4), "backup_age_s": 3600.0,
         "newest_heartbeat_at": at(11, 2, 4), "data_loss_s": 3600.0},
        {"store": "redis:cache", "component": "cache", "kind": "redis", "backup_id": "bk-1",
         "backup_consistent_at": at(11, 2, 4), "backup_age_s": 3600.0,
         "newest_heartbeat_at": None, "data_loss_s": None}]
    record([made])
    assert main(["report", "--drill", "d-stores", "--format", "md,html", "--out",
                 str(home)]) == 0
    markdown = (home / "sandbox-d-stores.md").read_text()
    assert ("| `postgres:main/appdb` | 1 h | 2026-11-02 04:00:00 UTC | `bk-1` | 1 h |"
            in markdown)
    assert "| `redis:cache` | - | no heartbeat | `bk-1` | 1 h |" in markdown
    assert "Data loss per restored store" in (home / "sandbox-d-stores.html").read_text()
