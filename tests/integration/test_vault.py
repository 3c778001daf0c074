"""A vault-encrypted inventory: opened with a password file, an executable password script or
a vault id, as ansible-playbook opens it; refused, saying why, without one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, Drtool, copy_inventory

pytestmark = pytest.mark.integration

PASSWORD = "vault-Pa55word-of-the-tests"


@pytest.fixture(scope="module")
def vaulted(sandbox: Drtool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the sandbox (its cluster only) whose PostgreSQL password is in a
    vault-encrypted group_vars/all/vault.yml, the way teams keep vault_* variables; and a
    password file and a password script that open it."""
    env = copy_inventory(sandbox, "sandbox-vault", {}, keep={"main"})
    group_vars = sandbox.home / "inventories" / env / "group_vars"
    values = yaml.safe_load((group_vars / "all.yml").read_text())
    values["drtool_postgres_password"] = "{{ vault_postgres_password }}"
    (group_vars / "all.yml").unlink()
    (group_vars / "all").mkdir()
    (group_vars / "all" / "main.yml").write_text(yaml.safe_dump(values, sort_keys=False))
    keys = tmp_path_factory.mktemp("vault")
    password_file = keys / "vault-pass"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    script = keys / "vault-pass.sh"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{PASSWORD}'\n")
    script.chmod(0o700)
    vault = group_vars / "all" / "vault.yml"
    vault.write_text(yaml.safe_dump({"vault_postgres_password":
                                     sandbox.secret("postgres_password")}))
    subprocess.run([str(BIN / "ansible-vault"), "encrypt", "--vault-password-file",
                    str(password_file), str(vault)], check=True, capture_output=True)
    assert vault.read_text().startswith("$ANSIBLE_VAULT;")
    return {"env": env, "file": password_file, "script": script}


def test_without_the_vault_password_the_inventory_is_refused_saying_why(
        sandbox: Drtool, vaulted: dict[str, Any], tmp_path: Path):
    done = sandbox("validate", "--env", vaulted["env"])
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("drtool: error: inventory ") and done.stderr.rstrip().endswith(
        "Ansible cannot resolve it: Attempting to decrypt but no vault secrets found."), \
        done.stderr
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    done = sandbox("validate", "--env", vaulted["env"], "--vault-password-file", str(wrong))
    assert done.returncode == 2 and "Decryption failed" in done.stderr, done.stderr


def test_a_password_file_a_script_a_vault_id_and_the_variable_each_open_it(
        sandbox: Drtool, vaulted: dict[str, Any]):
    env = vaulted["env"]
    for how in (["--vault-password-file", str(vaulted["file"])],
                ["--vault-password-file", str(vaulted["script"])],
                ["--vault-id", f"prod@{vaulted['script']}"]):
        done = sandbox("validate", "--env", env, *how)
        assert done.returncode == 0, (how, done.stderr)
    by_variable = Drtool(sandbox.home, dict(sandbox.env,
                                            ANSIBLE_VAULT_PASSWORD_FILE=str(vaulted["file"])))
    done = by_variable("validate", "--env", env)
    assert done.returncode == 0, done.stderr


def test_a_backup_of_the_inventory_by_path_runs_with_the_vaulted_password_and_writes_no_secret(
        sandbox: Drtool, vaulted: dict[str, Any], tmp_path: Path):
    # The inventory where a team keeps it, given by path; the backup's playbooks connect
    # with the password only the vault holds.
    folder = tmp_path / "ledger"
    shutil.copytree(sandbox.home / "inventories" / vaulted["env"], folder)
    code, journal = sandbox.json("backup", "-i", str(folder), "--vault-id",
                                 str(vaulted["script"]))
    assert code == 0, journal.get("failure")
    assert journal["env"] == "ledger" and journal["inventory"] == str(folder)
    secrets = (PASSWORD, sandbox.secret("postgres_password"))
    written = [*(sandbox.home / "evidence" / "ledger").rglob("*"),
               *(sandbox.home / "runs").rglob("*")]
    assert any(path.name == "journal.json" for path in written)
    holding = [str(path) for path in written
               if path.is_file() and any(s.encode() in path.read_bytes() for s in secrets)]
    assert holding == []
