"""The quarterly DR evidence report over real sandbox drills (one passed, one failed on a
backup corrupted mid-drill), plus recorded journals for older dates in the quarter, clearly
marked by their note. The HTML is opened in Debian's headless Chromium."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest
from playwright import sync_api

from drtool.core.model import journal_from_dict
from drtool.report.model import parse_quarter, quarter_of
from drtool.store.history import History, record_of
from tests.conftest import Drtool

pytestmark = pytest.mark.e2e

RECORDED_NOTE = "recorded journal for an older date (tests/e2e/test_report.py), not a live drill"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def shifted(journal: dict[str, Any], to: dt.datetime, drill_id: str) -> dict[str, Any]:
    """A copy of a real journal moved to another time: every *_at stamp moves alike."""
    delta = to - dt.datetime.fromisoformat(journal["started_at"])

    def move(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (dt.datetime.fromisoformat(v) + delta).isoformat(timespec="milliseconds")
                    if k.endswith("_at") and isinstance(v, str) and "T" in v else move(v)
                    for k, v in node.items()}
        if isinstance(node, list):
            return [move(v) for v in node]
        return node

    moved = move(copy.deepcopy(journal))
    moved.update(drill_id=drill_id, note=RECORDED_NOTE, pid=None)
    return moved


def record_older(home: Path, journals: list[dict[str, Any]]) -> None:
    """Write journals into the sandbox's evidence and chain them into its history."""
    with History(home / "history.sqlite3") as history:
        for data in journals:
            folder = home / "evidence" / "sandbox" / data["drill_id"]
            folder.mkdir(parents=True)
            path = folder / "journal.json"
            path.write_text(json.dumps(data, indent=2))
            history.append(record_of(journal_from_dict(data)), path)


def corrupted_mid_drill(sandbox: Drtool) -> dict[str, Any]:
    """A real drill whose backup gets a flipped byte in the store between the backup and the
    restore (bit rot, a bad disk): the restore must refuse it."""
    evidence = sandbox.home / "evidence" / "sandbox"
    before = {p.name for p in evidence.iterdir()}
    process = sandbox.popen("drill", "--env", "sandbox", "--json")
    deadline = time.monotonic() + 300
    location = None
    while location is None and time.monotonic() < deadline and process.poll() is None:
        for folder in evidence.iterdir():
            if folder.name in before or not (folder / "journal.json").is_file():
                continue
            data = json.loads((folder / "journal.json").read_text())
            if any(p["name"] == "disaster" and p["status"] == "running"
                   for p in data["phases"]):
                location = Path(data["backup"]["location"])
        time.sleep(0.05)
    assert location is not None, "the drill never reached its disaster phase"
    # The dump of the cluster main's database appdb, in its own folder of the backup.
    victim = max((location / "postgres" / "main" / "appdb").glob("*.dat.gz"),
                 key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    out, err = process.communicate(timeout=600)
    assert process.returncode == 1, err
    return json.loads(out)


@pytest.fixture(scope="module")
def quarter_history(sandbox: Drtool, passed_drill: dict[str, Any]) -> dict[str, Any]:
    failed = corrupted_mid_drill(sandbox)
    now = dt.datetime.now(dt.UTC)
    quarter = quarter_of(now)
    first_real = dt.datetime.fromisoformat(passed_drill["started_at"])
    span = first_real - max(quarter.start, first_real - dt.timedelta(days=60))
    older = []
    for k, status in enumerate(("passed", "failed", "aborted"), start=1):
        when = first_real - span + span * k / 4
        data = shifted(passed_drill, when, f"{when:%Y%m%dT%H%M%SZ}-rec{k:03d}")
        if status == "failed":
            data["status"] = "failed"
            data["failure"] = {"phase": "verify", "kind": "check", "hosts": [],
                               "reason": "postgres.row_count public.orders: expected 5000, "
                                         "actual 4990"}
            data["checks"][0].update(status="failed", actual=4990, expected=5000)
        if status == "aborted":
            data["status"] = "aborted"
            data["rto_s"] = data["rpo_measured_s"] = None
            data["failure"] = {"phase": "restore", "kind": "interrupted", "hosts": [],
                               "reason": "interrupted by a signal"}
        older.append(data)
    record_older(sandbox.home, older)
    return {"quarter": quarter, "failed": failed, "passed": passed_drill, "older": older}


@pytest.fixture(scope="module")
def report_files(sandbox: Drtool, quarter_history: dict[str, Any], tmp_path_factory
                 ) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("report")
    label = quarter_history["quarter"].label
    done = sandbox("report", "--env", "sandbox", "--quarter", label, "--out", str(out))
    assert done.returncode == 0, done.stderr
    files = {p.suffix[1:]: p for p in map(Path, done.stdout.split())}
    assert sorted(files) == ["html", "json", "md", "pdf"]
    assert all(p.parent == out and p.name == f"sandbox-{label}{p.suffix}" for p in files.values())
    return files


def drills_in_history(home: Path, quarter_label: str) -> dict[str, str]:
    """drill id -> status of every drill the history holds in the quarter, read straight
    from SQLite, not through drtool's report code."""
    quarter = parse_quarter(quarter_label)
    db = sqlite3.connect(home / "history.sqlite3")
    rows = db.execute("SELECT record FROM drills WHERE env = 'sandbox'").fetchall()
    db.close()
    found = {}
    for (text,) in rows:
        record = json.loads(text)
        started = dt.datetime.fromisoformat(record["started_at"])
        if record["operation"] == "drill" and quarter.start <= started < quarter.end:
            found[record["drill_id"]] = record["status"]
    return found


def test_the_failed_drill_refused_the_corrupted_backup(quarter_history):
    failed = quarter_history["failed"]
    assert failed["status"] == "failed" and failed["failure"]["phase"] == "restore"
    assert failed["failure"]["kind"] == "check"
    assert "sha256 mismatch" in failed["failure"]["reason"]


def test_the_quarterly_json_holds_every_drill_of_the_quarter(sandbox: Drtool, quarter_history,
                                                             report_files):
    report = json.loads(report_files["json"].read_text())
    expected = drills_in_history(sandbox.home, quarter_history["quarter"].label)
    assert {d["drill_id"]: d["status"] for d in report["drills"]} == expected
    statuses = list(expected.values())
    summary = report["summary"]
    assert (summary["drills"], summary["passed"], summary["failed"], summary["aborted"]) == (
        len(statuses), statuses.count("passed"), statuses.count("failed"),
        statuses.count("aborted"))
    ids = {d["drill_id"] for d in report["drills"]}
    assert quarter_history["passed"]["drill_id"] in ids
    assert quarter_history["failed"]["drill_id"] in ids
    assert {d["drill_id"] for d in quarter_history["older"]} <= ids
    marked = [d for d in report["drills"] if d["note"] == RECORDED_NOTE]
    assert len(marked) == 3
    exceptions = {d["drill_id"]: d for d in report["exceptions"]}
    assert set(exceptions) == {i for i, s in expected.items() if s != "passed"}
    real_failure = exceptions[quarter_history["failed"]["drill_id"]]
    assert real_failure["failure"]["phase"] == "restore"
    assert report["chain"]["intact"] is True
    with History(sandbox.home / "history.sqlite3") as history:
        assert report["chain"]["head_hash"] == history.links("sandbox")[-1][0].hash
    scope = report["scope"]
    port, files = sandbox.layout.port, sandbox.layout.root / "files"
    assert {(s["component"], s["role"], s["endpoint"]) for s in scope["data_stores"]} == {
        ("main", "source", f"127.0.0.1:{port('pg_primary')}"),
        ("main", "restore target", f"127.0.0.1:{port('pg_target')}"),
        ("cache", "source", f"127.0.0.1:{port('redis_primary')}"),
        ("cache", "restore target", f"127.0.0.1:{port('redis_target')}"),
        ("queue", "source", f"127.0.0.1:{port('queue_primary')}"),
        ("queue", "restore target", f"127.0.0.1:{port('queue_target')}"),
        ("uploads", "source", str(files / "uploads")),
        ("uploads", "restore target", str(files / "uploads-restored"))}
    assert scope["inventory_version"]["commit"] is None or len(
        scope["inventory_version"]["commit"]) == 40
    assert report["cadence"]["assessed"] is True and report["cadence"]["cadence_days"] == 7
    controls = {f["control"] for f in report["frameworks"]}
    assert controls >= {"A1.3", "CC7.5", "A.5.30", "A.8.13", "Art. 11", "Art. 12", "12.10.2",
                        "45 CFR 164.308(a)(7)(ii)(D)"}


def test_the_markdown_names_every_drill_and_its_failures(report_files, quarter_history):
    markdown = report_files["md"].read_text()
    report = json.loads(report_files["json"].read_text())
    for drill in report["drills"]:
        assert f"`{drill['drill_id']}`" in markdown
    assert "## Failed and aborted drills" in markdown and "sha256 mismatch" in markdown
    assert "## Cadence compliance" in markdown and "## Sign-off" in markdown


def test_the_html_renders_in_chromium_with_charts_and_no_errors(report_files, tmp_path):
    report = json.loads(report_files["json"].read_text())
    measured_rto = sum(1 for d in report["drills"] if d["rto_s"] is not None)
    with opened(report_files["html"]) as (page, problems, requests):
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        charts = page.locator("svg.chart")
        assert charts.count() == 2
        assert charts.first.locator("circle.point").count() == measured_rto
        chart_shot = charts.first.screenshot()
        tables = page.locator("table").count()
        height = page.evaluate("document.documentElement.scrollHeight")
    assert problems == [] and requests == [report_files["html"].as_uri()]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, tall = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, tall) == (1100, height) and tall > 2000
    assert len(png) > 100_000 and len(chart_shot) > 10_000  # drawn, not blank
    assert tables >= 8


def test_the_pdf_is_printed_from_the_same_report(report_files, quarter_history):
    reader = pypdf.PdfReader(str(report_files["pdf"]))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 3
    label = quarter_history["quarter"].label
    assert f"sandbox, {label}" in text and "Cadence compliance" in text
    assert quarter_history["failed"]["drill_id"] in text.replace("\n", "")


def test_one_drill_report_and_no_secret_in_any_report(sandbox: Drtool, quarter_history,
                                                      report_files, tmp_path):
    failed = quarter_history["failed"]["drill_id"]
    done = sandbox("report", "--drill", failed, "--format", "html,md,json", "--out",
                   str(tmp_path))
    assert done.returncode == 0, done.stderr
    markdown = (tmp_path / f"sandbox-{failed}.md").read_text()
    assert "**Result: FAILED**, at restore" in markdown and "backup.integrity" in markdown
    secrets = [sandbox.secret("postgres_password"), sandbox.secret("redis_password")]
    for path in [*report_files.values(), *tmp_path.iterdir()]:
        content = (" ".join(p.extract_text() for p in pypdf.PdfReader(str(path)).pages)
                   if path.suffix == ".pdf" else path.read_text())
        for secret in secrets:
            assert secret not in content, f"a secret is in {path}"


@contextlib.contextmanager
def opened(html: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    """`html` open in headless Chromium, 1100 px wide: (the page, every console error or
    warning and page error so far, every URL it requested so far)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri())
        try:
            yield page, problems, requests
        finally:
            browser.close()


def chromium() -> str:
    from drtool.adapters import chromium as adapter

    found = adapter.find()
    assert found, "Chromium is not installed: scripts/bootstrap installs it"
    return found
