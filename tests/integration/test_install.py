"""A lean install: drtool's wheel, installed without extras into a fresh virtualenv, has what
a drill of real hosts needs and nothing of the sandbox's; it validates an inventory given by
path, and `drtool sandbox up` names the extra it lacks in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BIN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[object], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=900, check=False, **kwargs)  # type: ignore[call-overload]


def test_the_wheel_without_extras_validates_an_inventory_by_path_and_refuses_the_sandbox(
        tmp_path: Path):
    built = run([BIN / "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ROOT])
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("drtool-*.whl")
    venv = tmp_path / "lean"
    assert run([sys.executable, "-m", "venv", venv]).returncode == 0
    installed = run([venv / "bin" / "pip", "install", "-q", wheel])
    assert installed.returncode == 0, installed.stderr
    listed = run([venv / "bin" / "pip", "list", "--format=json"])
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"ansible-core", "ansible-runner", "psycopg", "redis", "boto3"} <= names
    assert not names & {"moto", "pytest", "molecule", "playwright", "ansible-lint"}, names

    inventory = tmp_path / "infra" / "staging-eu"
    shutil.copytree(ROOT / "inventories" / "staging", inventory)
    env = dict(os.environ, DRTOOL_HOME=str(tmp_path / "home"),
               PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    done = run([venv / "bin" / "drtool", "validate", "-i", inventory, "--json"], env=env,
               cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["env"] == "staging-eu" and answer["valid"] is True
    # The playbooks and roles it ran are the wheel's own, not this checkout's.
    where = run([venv / "bin" / "python", "-c",
                 "from drtool import paths; print(paths.content_root())"], cwd=tmp_path)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr

    up = run([venv / "bin" / "drtool", "sandbox", "up"], env=env, cwd=tmp_path)
    assert up.returncode == 2
    assert up.stderr == ("drtool: error: the sandbox needs drtool's sandbox extra (its S3 "
                         "server): pip install 'drtool[sandbox]'\n")
    assert not (tmp_path / "home" / "sandbox").exists()
