"""Failed and interrupted drills: the targets are rolled back and the journal says why."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from drtool.paths import content_root
from tests.conftest import Drtool, descendants, pg, rd, wait_gone
from tests.e2e.test_drill import target_state

pytestmark = pytest.mark.integration


def inventory_variant(drtool: Drtool, name: str, replace: tuple[str, str]) -> str:
    """A copy of the sandbox inventory under $DRTOOL_HOME/inventories with one line changed."""
    folder = drtool.home / "inventories" / name
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(content_root() / "inventories" / "sandbox", folder)
    hosts = folder / "hosts.yml"
    text = hosts.read_text()
    assert replace[0] in text
    hosts.write_text(text.replace(replace[0], replace[1]))
    return name


def wait_for_phase(journal_dir: Path, phase: str, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in journal_dir.glob("*/journal.json"):
            try:
                data = json.loads(path.read_text())
            except ValueError:
                pytest.fail(f"{path} was read half-written: journals must be written atomically")
            if any(p["name"] == phase and p["status"] == "running" for p in data["phases"]):
                return path
        time.sleep(0.05)
    pytest.fail(f"phase {phase} never started")


def app_health(drtool: Drtool) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{drtool.port('app')}/health", timeout=5) as r:
        return json.loads(r.read())


def test_a_phase_that_fails_rolls_the_targets_back(sandbox: Drtool):
    env = inventory_variant(sandbox, "sandbox-broken-app",
                            ("start, --stores, restore]", "start, --stores, nowhere]"))
    restored = sandbox("restore", "--env", "sandbox", "--backup", latest_backup(sandbox))
    assert restored.returncode == 0, restored.stderr
    before = target_state(sandbox)

    code, journal = sandbox.json("drill", "--env", env)

    assert code == 3, journal["failure"]
    assert journal["status"] == "failed"
    assert journal["failure"]["phase"] == "restart"
    assert journal["failure"]["kind"] == "orchestration"
    assert journal["failure"]["hosts"] == ["sandbox-app"]
    # The reason is the start command's own error (its stderr), not "non-zero return code".
    assert journal["failure"]["reason"].startswith(
        "sandbox-app: task 'Start the application on the restored stores with its command' "
        "failed: non-zero return code: usage:"), journal["failure"]
    assert "error: argument --stores: invalid choice: 'nowhere'" in journal["failure"]["reason"]
    statuses = {p["name"]: p["status"] for p in journal["phases"]}
    assert statuses["restore"] == "passed" and statuses["restart"] == "failed"
    assert statuses["verify"] == statuses["cleanup"] == "skipped"
    assert journal["rollback"]["status"] == "passed", journal["rollback"]
    assert journal["rto_s"] is None  # never verified
    after = target_state(sandbox)
    # Same data as before the drill (the database and Redis were recreated to get there).
    for key in ("sentinels", "rows", "redis_keys", "redis_sentinels"):
        assert after[key] == before[key], key
    assert app_health(sandbox)["stores"] == "primary"  # the application was resumed


def test_a_killed_drill_still_leaves_a_readable_journal(sandbox: Drtool):
    drill = sandbox.popen("drill", "--env", "sandbox")
    journal_path = wait_for_phase(sandbox.home / "evidence" / "sandbox", "backup")
    below = descendants(drill.pid)

    drill.kill()
    drill.wait(timeout=30)
    for pid in below:  # ansible-playbook finishes its phase on its own; wait for it
        wait_gone(pid, timeout=120)

    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "running" and journal["ended_at"] is None
    assert journal["pid"] == drill.pid
    assert journal["phases"][0]["status"] == "passed" and journal["phases"][0]["tasks"]
    assert journal["phases"][1]["status"] == "running" and journal["phases"][1]["started_at"]
    # The sandbox is still usable: nothing destructive had started.
    assert rd(sandbox, "redis_primary").ping()
    with pg(sandbox, "pg_primary") as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 20000


def latest_backup(drtool: Drtool) -> str:
    code, backups = drtool.json("backups", "list", "--env", "sandbox")
    assert code == 0
    return next(b["id"] for b in backups if b["complete"])
