"""Failed and interrupted drills: the targets are rolled back and the journal says why."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from drtool.paths import content_root
from tests.conftest import Drtool, copy_inventory_with_components, descendants, pg, rd, wait_gone
from tests.e2e.test_drill import target_state

pytestmark = pytest.mark.integration


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


def test_a_phase_that_fails_rolls_the_targets_back(sandbox: Drtool, passed_drill):
    # passed_drill: a complete backup to restore first, so that the targets hold data.
    # The application's start command asks for stores it does not know.
    services = yaml.safe_load((content_root() / "inventories" / "sandbox" / "group_vars" /
                               "all.yml").read_text())["drtool_services"]
    service, start = services[0]["name"], services[0]["start_command"]
    assert services[0]["host"] == "sandbox-app" and start[-2:] == ["--stores", "restore"], start
    env = copy_inventory_with_components(sandbox, "sandbox-broken-app", {
        "drtool_services[0].start_command": [*start[:-1], "nowhere"]})
    restored = sandbox("restore", "--env", "sandbox", "--backup", latest_backup(sandbox))
    assert restored.returncode == 0, restored.stderr
    before = target_state(sandbox)

    code, journal = sandbox.json("drill", "--env", env)

    assert code == 3, journal["failure"]
    assert journal["status"] == "failed"
    assert journal["failure"]["phase"] == "restart"
    assert journal["failure"]["kind"] == "orchestration"
    assert journal["failure"]["hosts"] == ["sandbox-app"]
    # The reason names the service, and is the start command's own error (its stderr), not
    # "non-zero return code".
    assert journal["failure"]["reason"].startswith(
        f"sandbox-app: {service}: task 'Start the application on the restored stores with its "
        "command' failed: non-zero return code: usage:"), journal["failure"]
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
