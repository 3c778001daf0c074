"""An inventory given by path (-i), as ansible-playbook takes it: a folder, a file beside its
group_vars, several; the environment named by --env, else drtool_env_name, else its folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import Drtool, copy_inventory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def payments(sandbox: Drtool, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sandbox's inventory (its cluster only) in a folder of its own, outside
    every folder `--env` looks in."""
    name = copy_inventory(sandbox, "sandbox-by-path", {}, keep={"main"})
    folder = tmp_path_factory.mktemp("estate") / "payments"
    shutil.move(sandbox.home / "inventories" / name, folder)
    return folder


def test_a_folder_given_by_path_is_the_environment_named_after_it(sandbox: Drtool,
                                                                   payments: Path):
    code, answer = sandbox.json("validate", "-i", str(payments))
    assert code == 0, answer
    assert answer["env"] == "payments" and answer["valid"] is True
    assert answer["inventory"] == str(payments)
    # --env names it otherwise; without -i the name alone finds nothing.
    code, answer = sandbox.json("validate", "--env", "payments-eu", "-i", str(payments))
    assert code == 0 and answer["env"] == "payments-eu", answer
    alone = sandbox("validate", "--env", "payments")
    assert alone.returncode == 2
    assert alone.stderr.startswith("drtool: error: unknown environment 'payments' (known: ")
    assert alone.stderr.rstrip().endswith("or give its inventory with -i PATH)")


def test_a_file_with_its_group_vars_is_named_by_drtool_env_name(sandbox: Drtool,
                                                                 payments: Path,
                                                                 tmp_path: Path):
    folder = tmp_path / "inventories"
    shutil.copytree(payments, folder)
    hosts = yaml.safe_load((folder / "hosts.yml").read_text())
    hosts["all"]["vars"] = {"drtool_env_name": "payments-prod-eu"}
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    # The file alone: Ansible reads the group_vars beside it, where the components are.
    code, answer = sandbox.json("validate", "-i", str(folder / "hosts.yml"))
    assert code == 0, answer
    assert answer["env"] == "payments-prod-eu"
    assert answer["inventory"] == str(folder / "hosts.yml")


def test_a_second_source_adds_its_hosts_and_its_variables(sandbox: Drtool, payments: Path,
                                                          tmp_path: Path):
    # drtool's settings kept in a second inventory source, as teams split them: what it
    # sets reaches the environment (here a time limit it then refuses).
    extra = tmp_path / "limits.yml"
    extra.write_text(yaml.safe_dump({"all": {"vars": {"drtool_phase_timeout_s": {"restore": 0}}}}))
    code, answer = sandbox.json("validate", "-i", str(payments), "-i", str(extra))
    assert code == 2, answer
    assert any("drtool_phase_timeout_s.restore: must be a positive number" in line
               for line in answer["problems"]), answer["problems"]
    assert answer["inventory"] == f"{payments}, {extra}"


def test_inventories_that_cannot_be_used_are_one_line_errors(sandbox: Drtool, tmp_path: Path):
    missing = sandbox("drill", "-i", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "does not exist" in missing.stderr
    unnamed = tmp_path / "my estate"
    unnamed.mkdir()
    (unnamed / "hosts.yml").write_text("all: {}\n")
    done = sandbox("drill", "-i", str(unnamed / "hosts.yml"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("drtool: error: cannot name the environment of ")
    assert done.stderr.rstrip().endswith("give --env NAME or set drtool_env_name")
    neither = sandbox("drill")
    assert neither.returncode == 2 and "--env ENV, or its inventory with -i PATH" in (
        neither.stderr)
