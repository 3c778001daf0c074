"""Every Molecule scenario, run against the lab the test session built (the `default`
driver: no container engine here). A scenario that fails fails this test with its output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, Drtool

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


def test_there_is_a_scenario_per_role_and_one_for_the_drill():
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
    expected = sorted([*roles, "drill"])
    assert expected == SCENARIOS


# The `drill` scenario is run by tests/lab/test_lab.py, whose tests read that drill.
@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "drill"])
def test_molecule_scenario(lab: Drtool, scenario: str):
    done = subprocess.run([str(BIN / "molecule"), "test", "-s", scenario], cwd=ROOT,
                          env=lab.env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
