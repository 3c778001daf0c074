"""Journals written before components (schema 5: one host per group, checks named by host)
still load, enter the history, verify and report. The fixture is a real journal of a passed
sandbox drill made by drtool at that schema, kept as it was written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from drtool.core.model import SCHEMA_VERSION, journal_from_dict
from tests.conftest import BIN

FIXTURE = Path(__file__).parents[1] / "fixtures" / "journal-v5" / "journal.json"


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DRTOOL_HOME=str(home), COLUMNS="200")
    return subprocess.run([str(BIN / "drtool"), *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_schema_5_journal_loads_verifies_and_reports(tmp_path: Path):
    old = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert old["schema_version"] == 5 < SCHEMA_VERSION
    journal = journal_from_dict(old)
    assert journal.status == "passed" and all(not p.components for p in journal.phases)

    home = tmp_path / "home"
    folder = home / "evidence" / old["env"] / old["drill_id"]
    folder.mkdir(parents=True)
    shutil.copyfile(FIXTURE, folder / "journal.json")

    # Listing the history records the journal it lacks (as a killed drill's would be).
    done = run(home, "history", "--env", old["env"], "--json")
    assert done.returncode == 0, done.stderr
    assert [r["drill_id"] for r in json.loads(done.stdout)] == [old["drill_id"]]

    out = tmp_path / "out"
    done = run(home, "report", "--drill", old["drill_id"], "--format", "md,json,html",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    text = (out / f"{old['env']}-{old['drill_id']}.md").read_text(encoding="utf-8")
    assert "**Result: PASSED**" in text
    assert "sandbox-pg-target/appdb:public.orders" in text  # a check named as it was then
    assert "side by side" not in text  # no restore by component in it
    data = json.loads((out / f"{old['env']}-{old['drill_id']}.json").read_text())
    assert data["drill"]["checks_failed"] == 0 and data["drill"]["restores"] == []

    # The quarter's report shows its scope as the journal had it (no component then).
    done = run(home, "report", "--env", old["env"], "--quarter", "2026Q4", "--format", "md",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    quarter = (out / f"{old['env']}-2026-Q4.md").read_text(encoding="utf-8")
    assert "| - | PostgreSQL | source | sandbox-pg-primary |" in quarter

    done = run(home, "evidence", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    # The journal is the one the history's hash chain holds: altering it is seen.
    (folder / "journal.json").write_text(FIXTURE.read_text().replace('"passed"', '"failed"', 1))
    assert run(home, "evidence", "verify").returncode == 1
