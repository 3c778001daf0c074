"""Failed and interrupted drills: the targets are rolled back and the journal says why."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from drtool.paths import content_root
from tests.conftest import (
    Drtool,
    copy_inventory_with_components,
    descendants,
    leases,
    pg,
    rd,
    wait_for_phase,
    wait_gone,
)
from tests.e2e.test_drill import target_state

pytestmark = pytest.mark.integration


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
    # Its backup, not the newest: another test's drill may have left a corrupted one.
    code, restored = sandbox.json("restore", "--env", "sandbox",
                                  "--backup", passed_drill["backup"]["id"])
    assert code == 0, restored.get("failure")
    # A restore keeps the safety snapshot of what it replaced, for its operator.
    kept = sandbox.home / "snapshots" / "sandbox" / restored["drill_id"]
    assert kept.is_dir() and any(kept.iterdir())
    shutil.rmtree(kept)
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
    journal_path = wait_for_phase(sandbox.home / "evidence" / "sandbox", "backup", proc=drill)
    below = descendants(drill.pid)

    drill.kill()
    drill.wait(timeout=30)
    for pid in below:  # ansible-playbook finishes its phase on its own; wait for it
        wait_gone(pid, timeout=120)

    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "running" and journal["ended_at"] is None
    assert journal["pid"] == drill.pid
    phases = {p["name"]: p for p in journal["phases"]}
    assert phases["preflight"]["status"] == "passed" and phases["preflight"]["tasks"]
    assert phases["snapshot"]["status"] == "passed"  # the safety snapshot comes first
    assert phases["backup"]["status"] == "running" and phases["backup"]["started_at"]
    # The sandbox is still usable: nothing destructive had started.
    assert rd(sandbox, "redis_primary").ping()
    with pg(sandbox, "pg_primary") as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 20000
    # Killed after its snapshot leased the targets, before it changed them: the
    # environment's next operation gives the leases back and removes the snapshot.
    assert {lease["drill_id"] for lease in leases(sandbox).values()} == {journal["drill_id"]}
    recovered = sandbox("rollback", "--env", "sandbox")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    ended = json.loads(journal_path.read_text())
    assert (ended["status"], ended["rollback"]) == ("aborted", None), ended["failure"]
    assert ended["failure"]["phase"] == "backup"
    assert leases(sandbox) == {}
    assert not (sandbox.home / "snapshots" / "sandbox" / journal["drill_id"]).exists()

