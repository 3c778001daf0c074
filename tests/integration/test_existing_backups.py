"""Drills of the backups the schedule made (`drtool drill --backup`): the drill restores
that backup instead of making one, says so, and its data loss is at least the backup's age."""

from __future__ import annotations

import json
import time

import pytest

from drtool.store.base import BackupSummary
from drtool.store.choose import choose
from tests.conftest import Drtool, copy_inventory, copy_inventory_with_components

pytestmark = pytest.mark.integration

ENV = "sandbox-scheduled"


@pytest.fixture(scope="module")
def three_backups(sandbox: Drtool) -> list[str]:
    """Three backups of a copy of the sandbox, as cron would have made them, oldest first."""
    # Backups every hour: a drill of one of them may lose up to its age, within the hour.
    copy_inventory_with_components(sandbox, ENV, {"drtool_rpo_objective_s": 3600},
                                   keep={"main"})
    made = []
    for _ in range(3):
        code, backup = sandbox.json("backup", "--env", ENV)
        assert code == 0, backup.get("failure")
        made.append(backup["backup"]["id"])
    return made


def test_a_drill_of_the_latest_backup_restores_it_and_loses_at_least_its_age(
        sandbox: Drtool, three_backups):
    time.sleep(2)  # the backup is older than the disaster by at least this
    done = sandbox("drill", "--env", ENV, "--backup", "latest", "--json")

    journal = json.loads(done.stdout)
    assert done.returncode == 0, journal.get("failure")
    assert f"drilling backup {three_backups[-1]} (latest)" in done.stderr
    assert journal["backup"]["id"] == three_backups[-1]
    assert journal["backup"]["chosen"] == "latest"
    phases = {p["name"]: p["status"] for p in journal["phases"]}
    assert phases.pop("backup") == "skipped"  # no new backup was made
    assert set(phases.values()) == {"passed"}
    assert journal["rpo_backup_age_s"] >= 2
    assert journal["rpo_measured_s"] >= journal["rpo_backup_age_s"]
    out = sandbox.home / "reports-scheduled"
    done = sandbox("report", "--drill", journal["drill_id"], "--format", "md", "--out", str(out))
    assert done.returncode == 0, done.stderr
    text = (out / f"{ENV}-{journal['drill_id']}.md").read_text(encoding="utf-8")
    assert "the newest backup the store held (made earlier, by the schedule)" in text


def test_a_random_drill_picks_one_of_the_three_as_its_seed_says(sandbox: Drtool, three_backups):
    code, listed = sandbox.json("backups", "list", "--env", ENV)
    assert code == 0
    catalog = [BackupSummary(**{k: v for k, v in b.items() if k != "verified"})
               for b in listed]
    # A seed whose pick is not the newest: the pick is the chooser's, not "latest" again.
    seed = next(s for s in range(100) if choose(catalog, "random", s)[0] != three_backups[-1])
    expected = choose(catalog, "random", seed)[0]
    assert expected in three_backups

    code, journal = sandbox.json("drill", "--env", ENV, "--backup", "random", "--seed",
                                 str(seed))

    assert code == 0, journal.get("failure")
    assert (journal["backup"]["id"], journal["backup"]["chosen"]) == (expected, "random")
    assert journal["rpo_measured_s"] >= journal["rpo_backup_age_s"] > 0


def test_picks_that_cannot_be_made_are_clear_errors(drtool: Drtool):
    env = copy_inventory(drtool, "sandbox-no-backups", {})
    for args, says in ((["--backup", "latest"], "holds no complete backup"),
                       (["--backup", "bk-20990101T000000Z-000000"], "bk-20990101T000000Z"),
                       (["--seed", "3"], "--seed"), (["--plan", "--seed", "3"], "--seed")):
        done = drtool("drill", "--env", env, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert says in done.stderr and "Traceback" not in done.stderr
        assert done.stderr.count("\n") <= 2, done.stderr
    assert not (drtool.home / "evidence" / env).exists()  # refused before any phase
