"""The recovery runbook of the sandbox, proven by the session's passed drill: written in
every format, opened in Debian's headless Chromium (a screenshot of it), its Markdown read
as a terminal shows it, every step with its time at that drill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pypdf
import pytest

from tests.conftest import Drtool
from tests.e2e.test_report import opened

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runbook(sandbox: Drtool, passed_drill: dict[str, Any], tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runbook")
    done = sandbox("runbook", "--env", "sandbox", "--format", "html,md,json,pdf", "--out",
                   str(out))
    assert done.returncode == 0, done.stderr
    files = {p.suffix[1:]: p for p in map(Path, done.stdout.split())}
    assert sorted(files) == ["html", "json", "md", "pdf"]
    return files


def newest_passed_drill(sandbox: Drtool) -> dict[str, Any]:
    """The journal of the sandbox's newest passed drill, from the history and the evidence
    folder (other modules of this session drill it too, before and after the shared one)."""
    code, records = sandbox.json("history", "--env", "sandbox")
    assert code == 0
    newest = max((r for r in records if r["operation"] == "drill" and r["status"] == "passed"),
                 key=lambda r: r["started_at"])
    path = sandbox.home / "evidence" / "sandbox" / newest["drill_id"] / "journal.json"
    return json.loads(path.read_text())


def test_the_runbook_is_proven_by_the_newest_passed_drill_and_times_every_step(
        runbook: dict[str, Path], sandbox: Drtool):
    data = json.loads(runbook["json"].read_text())
    proving = newest_passed_drill(sandbox)
    assert data["proven"]["drill_id"] == proving["drill_id"]
    assert not data["proven"]["stale"]
    # The backup a recovery takes by default: the newest one a drill verified.
    code, catalog = sandbox.json("backups", "list", "--env", "sandbox")
    assert code == 0
    verified = max((b for b in catalog if b["verified"]), key=lambda b: b["id"])
    assert data["command"] == f"drtool recover --env sandbox --backup {verified['id']}"
    assert data["backup"]["verified_by"] == verified["verified_by"]
    restored = {s["component"] for s in data["steps"] if s["phase"] == "restore"}
    assert restored == {"main", "cache", "queue", "uploads"}
    assert all(s["last_s"] is not None and s["last_s"] > 0 for s in data["steps"]), [
        (s["phase"], s["component"]) for s in data["steps"] if not s["last_s"]]
    restore = {c["component"]: c["duration_s"] for p in proving["phases"]
               if p["name"] == "restore" for c in p["components"]}
    assert next(s for s in data["steps"] if s["component"] == "cache")["last_s"] == (
        restore["cache"])
    assert [c["name"] for c in data["contacts"]] == ["Sandbox on-call", "Database team"]


def test_the_markdown_reads_in_a_terminal(runbook: dict[str, Path]):
    text = runbook["md"].read_text()
    data = json.loads(runbook["json"].read_text())
    assert text.startswith("# Recovery runbook: sandbox\n")
    assert f"**Last proven:** drill `{data['proven']['drill_id']}`" in text
    assert "NOT PROVEN" not in text
    assert "pg_restore --jobs=2 --exit-on-error --dbname=appdb" in text
    assert max(len(line) for line in text.splitlines()) < 400  # no line a pager cannot show


def test_the_html_shows_every_step_with_its_last_duration_in_chromium(
        runbook: dict[str, Path], tmp_path: Path):
    data = json.loads(runbook["json"].read_text())
    with opened(runbook["html"]) as (page, problems, requests):
        shot = tmp_path / "runbook.png"
        page.screenshot(path=str(shot), full_page=True)
        steps = page.locator("ol.steps > li").all_inner_texts()
        stale = page.locator(".stale").count()
    assert problems == [] and requests == [runbook["html"].as_uri()]
    assert len(steps) == len(data["steps"]) and stale == 0
    assert all("(last drill " in s and "(last drill -;" not in s for s in steps), steps
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000


def test_the_pdf_and_no_secret_in_any_form(runbook: dict[str, Path], sandbox: Drtool):
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(str(runbook["pdf"])).pages)
    assert "Recovery runbook: sandbox" in text
    secrets = [sandbox.secret("postgres_password"), sandbox.secret("redis_password")]
    for path in runbook.values():
        content = text if path.suffix == ".pdf" else path.read_text()
        assert not any(secret in content for secret in secrets), path
