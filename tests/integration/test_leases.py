"""The lease a drill takes on a restore target's host (the target_lock module), run by real
Ansible on this machine: who may take a lease over, and a target kept for a person."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.ansible_probe import Probe, probe_runner

pytestmark = pytest.mark.integration


@pytest.fixture
def probe(tmp_path: Path) -> Probe:
    return probe_runner(tmp_path)


def step(name: str, path: Path, state: str, drill: str, env: str = "", controller: str = "",
         lease_s: int = 3600) -> dict:
    return {"name": name, "ignore_errors": True, "drtool.drill.target_lock": {
        "path": str(path), "state": state, "drill_id": drill, "env": env,
        "controller": controller, "lease_s": lease_s}}


def test_a_lease_is_taken_over_only_by_its_environment_from_its_controller_or_once_expired(
        probe, tmp_path):
    lease = tmp_path / "locks" / "postgres-5432.lease"
    run = probe([
        step("a takes", lease, "present", "d-a", "staging", "ctl-1"),
        step("b, another environment, is refused", lease, "present", "d-b", "qa", "ctl-1"),
        step("c, another controller, is refused", lease, "present", "d-c", "staging", "ctl-2"),
        step("b checks a rollback's target", lease, "held", "d-b"),
        step("b releases what is not its own", lease, "absent", "d-b"),
        step("d, the same environment and controller, takes over", lease, "present", "d-d",
             "staging", "ctl-1", lease_s=1),
        {"name": "the lease runs out", "ansible.builtin.pause": {"seconds": 2}},
        step("e, another controller, takes the expired lease", lease, "present", "d-e", "qa",
             "ctl-2"),
        step("e's rollback failed: kept for a person", lease, "stuck", "d-e"),
        step("f, e's own environment and controller, is refused", lease, "present", "d-f",
             "qa", "ctl-2"),
        step("e's retried rollback still may run", lease, "held", "d-e"),
    ])
    status = {t.name: ("failed" if t.status == "failed" else "ok", t.message or "")
              for t in run.tasks}
    assert status["a takes"][0] == "ok"
    refused = status["b, another environment, is refused"]
    assert refused[0] == "failed" and "restore target is busy: drill d-a of staging from " \
        "controller ctl-1 holds" in refused[1]
    assert status["c, another controller, is refused"][0] == "failed"
    assert status["b checks a rollback's target"][0] == "failed"
    assert status["b releases what is not its own"][0] == "ok"
    assert status["d, the same environment and controller, takes over"][0] == "ok"
    assert status["e, another controller, takes the expired lease"][0] == "ok"
    stuck = status["f, e's own environment and controller, is refused"]
    assert stuck[0] == "failed" and "left for a person: remove" in stuck[1], stuck
    assert status["e's retried rollback still may run"][0] == "ok"
    held = json.loads(lease.read_text())
    assert held["drill_id"] == "d-e" and held["stuck"] is True and held["expires_at"] is None
    assert held["taken_at"] < time.time()
