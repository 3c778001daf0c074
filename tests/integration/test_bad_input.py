"""Bad input, through the real `drtool` command: paths that would make a drill delete a data
store's files, bytes that are not UTF-8 or hold control characters, and environments that do
not exist. Each gets one line on stderr and exit 2, before anything is written or run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from drtool.core.model import Journal
from tests.conftest import Drtool, copy_inventory, pg, rd

NOT_UTF8 = "\udcff"  # what Python makes of the byte 0xff in argv; subprocess sends 0xff back


def refused(done: subprocess.CompletedProcess[str], *named: str) -> str:
    """Assert exit 2 with one line on stderr, naming each of `named`, and no traceback."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("drtool: error: "), done.stderr
    for name in named:
        assert name in done.stderr, done.stderr
    return done.stderr


# -- a backup or snapshot path at /, or at a data directory --------------------------------

def target_state(sandbox: Drtool, data_dir: Path) -> dict[str, Any]:
    """What a refused drill must leave as it was: the target cluster's identity, databases
    and files (with a sentinel row in its `postgres` database), and the target Redis' keys."""
    with pg(sandbox, "pg_target", "postgres") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bad_input_sentinel (marker text)")
        if not conn.execute("SELECT 1 FROM bad_input_sentinel").fetchone():
            conn.execute("INSERT INTO bad_input_sentinel VALUES ('untouched')")
        state = {
            "identity": conn.execute(
                "SELECT system_identifier FROM pg_control_system()").fetchone()[0],
            "databases": [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database ORDER BY 1").fetchall()],
            "sentinel": conn.execute("SELECT marker FROM bad_input_sentinel").fetchall(),
        }
    redis = rd(sandbox, "redis_target")
    try:
        state["keys"] = redis.dbsize()
    finally:
        redis.close()
    state["files"] = sorted(p.name for p in data_dir.iterdir())
    return state


@pytest.mark.parametrize("where", ["root", "target data dir"])
def test_a_snapshot_path_that_would_delete_the_targets_data_is_refused_before_any_phase(
        sandbox: Drtool, where: str):
    data_dir = sandbox.layout.postgres_root / "pg_target" / "data"
    path = "/" if where == "root" else str(data_dir)
    env = copy_inventory(sandbox, f"sandbox-snapshot-{where.replace(' ', '-')}", {},
                         {"sandbox-pg-target": {"drtool_snapshot_path": path}})
    before = target_state(sandbox, data_dir)
    try:
        valid = sandbox("validate", "--env", env)
        refused(valid, env)
        problem = [line for line in valid.stdout.splitlines() if "drtool_snapshot_path" in line]
        assert len(problem) == 1 and "sandbox-pg-target" in problem[0], valid.stdout
        assert (str(data_dir) if where != "root" else "must not be /") in problem[0]

        drill = sandbox("drill", "--env", env)
        refused(drill, "sandbox-pg-target", "drtool_snapshot_path",
                str(data_dir) if where != "root" else "must not be /")
        assert not (sandbox.home / "evidence" / env).exists()  # no phase ran, no journal
        assert target_state(sandbox, data_dir) == before
    finally:
        with pg(sandbox, "pg_target", "postgres") as conn:
            conn.execute("DROP TABLE IF EXISTS bad_input_sentinel")


# -- bytes that are not UTF-8, control characters --------------------------------------------

@pytest.mark.parametrize("note", [f"ticket {NOT_UTF8}", "ticket \x1b[31mred"])
def test_a_note_that_is_not_one_line_of_text_is_refused(drtool: Drtool, note: str):
    # --plan runs nothing: the note is judged before the environment is even read.
    refused(drtool("drill", "--env", "sandbox", "--plan", "--note", note), "--note")


def test_file_names_that_are_not_utf8_are_refused_and_nothing_is_written(
        drtool: Drtool, tmp_path: Path):
    name = str(tmp_path / f"out{NOT_UTF8}")
    refused(drtool("drill", "--env", "sandbox", "--plan", "--junit", name), "--junit",
            "\\xff")
    refused(drtool("report", "--env", "sandbox", "--out", name), "--out")
    refused(drtool("report", "--env", "sandbox", "--remediation", name), "--remediation")
    refused(drtool("backups", "new-key", name), "PATH")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("content", "why"), [
    (b"20261122T051530Z-3fa2c1: restarted the \xff replica\n", "not UTF-8 text"),
    (b"20261122T051530Z-3fa2c1: [restarted\n", "not YAML"),
    (b'20261122T051530Z-3fa2c1: "restarted\\x00 the replica"\n', "control characters"),
])
def test_remediation_notes_that_cannot_be_read_as_text_are_refused_before_any_report(
        drtool: Drtool, tmp_path: Path, content: bytes, why: str):
    notes = tmp_path / "notes.yml"
    notes.write_bytes(content)
    out = tmp_path / "reports"
    refused(drtool("report", "--env", "sandbox", "--out", str(out), "--remediation", str(notes)),
            "remediation notes", why)
    assert not out.exists()


def test_a_drill_id_that_is_not_utf8_is_not_recorded(drtool: Drtool):
    refused(drtool("report", "--drill", f"2026{NOT_UTF8}"), "no drill")


# -- unknown environments --------------------------------------------------------------------

# tests/unit/test_cli.py holds every other command to the same.
@pytest.mark.parametrize("command", [["history"], ["evidence", "verify"], ["schedule", "remove"]])
def test_a_command_given_an_unknown_environment_exits_2(drtool: Drtool, command: list[str]):
    refused(drtool(*command, "--env", "no-such-env"), "unknown environment 'no-such-env'")


def test_history_knows_an_environment_by_its_inventory_or_its_records(drtool: Drtool):
    refused(drtool("history", "--env", "retired"), "unknown environment 'retired'")
    # A drill of `retired` was recorded; its inventory is gone since: it is still listed.
    folder = drtool.home / "evidence" / "retired" / "20260101T000000Z-0a1b2c"
    folder.mkdir(parents=True)
    journal = Journal("20260101T000000Z-0a1b2c", "retired", "drill", "2026-01-01T00:00:00Z",
                      status="passed", ended_at="2026-01-01T00:05:00Z")
    (folder / "journal.json").write_text(json.dumps(journal.to_dict()))
    done = drtool("history", "--env", "retired")
    assert done.returncode == 0, done.stderr
    assert "20260101T000000Z-0a1b2c  drill   passed" in done.stdout
    assert drtool("evidence", "verify", "--env", "retired").returncode == 0
