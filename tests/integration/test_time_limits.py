"""A hung phase is bounded: a restore that goes over its time limit is stopped, what it
started on the hosts is reaped, the drill fails with the reason (exit 3), and the targets are
rolled back.

The restore hangs for real: pg_restore is the slow wrapper of test_interrupts, made to wait
600 s before it runs the real one, and the environment gives the restore 20 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import Drtool, alive
from tests.e2e.test_drill import target_state
from tests.integration.test_failures import app_health
from tests.integration.test_interrupts import (
    assert_rolled_back,
    leftovers,
    slow_restore_env,
)

pytestmark = pytest.mark.integration

LIMIT_S = 20
SLEEP_S = 600  # the wrapper's wait: a restore that ran to its end takes at least that long


def set_all_vars(drtool: Drtool, env: str, values: dict) -> Path:
    """Set `values` in the group `all` of environment `env`'s hosts.yml; return the file."""
    path = drtool.home / "inventories" / env / "hosts.yml"
    hosts = yaml.safe_load(path.read_text())
    hosts["all"]["vars"] = values
    path.write_text(yaml.safe_dump(hosts))
    return path


def test_a_restore_over_its_time_limit_is_stopped_and_rolled_back(sandbox: Drtool,
                                                                  passed_drill):
    # After a passed drill the targets hold data: the rollback has counts to prove.
    env, bindir = slow_restore_env(sandbox, "sandbox-restore-limit", (1,), {1: SLEEP_S})
    # A limit that is no number of seconds, or names no phase, is refused up front.
    set_all_vars(sandbox, env, {"drtool_phase_timeout_s": {"restore": 0, "rollback": 60}})
    refused = sandbox("validate", "--env", env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "hosts.yml: drtool_phase_timeout_s.restore: must be a positive number" in (
        refused.stdout)
    assert "hosts.yml: drtool_phase_timeout_s.rollback: not a phase" in refused.stdout
    set_all_vars(sandbox, env, {"drtool_phase_timeout_s": {"restore": LIMIT_S}})
    before = target_state(sandbox)

    code, journal = sandbox.json("drill", "--env", env)

    # On the code before this test the limit did not exist: the restore waited its 40 s,
    # went on, and the drill passed.
    assert code == 3, journal["failure"]
    assert journal["status"] == "failed"
    assert journal["failure"]["kind"] == "timeout"
    assert journal["failure"]["phase"] == "restore"
    assert journal["failure"]["reason"] == f"restore exceeded its time limit of {LIMIT_S} s"
    statuses = [p["status"] for p in journal["phases"]]
    assert statuses == ["passed"] * 4 + ["failed"] + ["skipped"] * 3
    restore = journal["phases"][4]
    assert restore["error"] == journal["failure"]["reason"]
    # Stopped at its limit (ansible-runner asks whether to stop every 5 s, and the phase's
    # time includes the reaping), not when the waiting pg_restore would have ended.
    assert LIMIT_S <= restore["duration_s"] < SLEEP_S / 2, restore["duration_s"]
    # What the restore had started on the host was stopped before the rollback.
    restore_pid = int((bindir / "slow-1.pid").read_text())
    assert not alive(restore_pid), "the pg_restore of the stopped restore outlived the drill"
    assert leftovers(journal["drill_id"]) == []
    assert not [w for w in journal["warnings"] if w.startswith("after the time limit")]
    assert_rolled_back(sandbox, journal, before)
    assert app_health(sandbox)["stores"] == "primary"
    saved = json.loads((sandbox.home / "evidence" / env / journal["drill_id"] /
                        "journal.json").read_text())
    assert saved["status"] == "failed" and saved["failure"]["kind"] == "timeout"
