"""Module payloads: Ansible builds each module's payload once for every run of drtool's
playbooks (the drtool.drill.payload_cache callback links each run's folder to one shared
folder), not once in every ansible-playbook run, and with the bytecode of its module_utils,
which the module runs import instead of compiling the source."""

from __future__ import annotations

import base64
import io
import pickle
import zipfile
import zipimport
from pathlib import Path

import pytest

from tests.conftest import Drtool, copy_inventory

pytestmark = pytest.mark.integration


def payloads(home: Path) -> dict[str, tuple[int, int]]:
    """Each payload in the one shared folder: its file's inode and change time (a payload
    built again is a new file renamed into place)."""
    [folder] = (home / "run" / "payloads").iterdir()
    return {p.name: (p.stat().st_ino, p.stat().st_ctime_ns) for p in folder.iterdir()
            if not p.name.endswith((".lock", "-part"))}


def test_a_second_operation_builds_no_payload_the_first_one_built(sandbox: Drtool):
    env = copy_inventory(sandbox, "sandbox-payloads", {}, keep={"main"})
    first = sandbox("backup", "--env", env)
    assert first.returncode == 0, first.stderr
    built = payloads(sandbox.home)
    # The modules the preflight and the backup ran (named by where Ansible found them).
    modules = {name.split("-")[0].rsplit(".", 1)[-1] for name in built}
    assert modules >= {"pg_facts", "pg_backup"}, built
    # Every payload the passed backup's modules ran from holds the bytecode of its files but
    # the module's own, which zipimport takes over the source: the code of pg_backup's
    # module_utils carries the name it was compiled with, not the path of the zip it is in.
    [folder] = (sandbox.home / "run" / "payloads").iterdir()
    for name in built:
        with (folder / name).open("rb") as cached:  # ansible-core's own cache file
            data = base64.b64decode(pickle.load(cached).zip_data)  # noqa: S301
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        module = name.split("-")[0].replace(".", "/") + ".py"
        sources = sorted(n for n in names if n.endswith(".py") and n != module)
        assert module in names and module + "c" not in names, name
        assert sorted(n[:-1] for n in names if n.endswith(".pyc")) == sources, name
        if ".pg_backup-" in name:
            zipped = sandbox.home / "pg_backup-payload.zip"
            zipped.write_bytes(data)
            code = zipimport.zipimporter(f"{zipped}/ansible/module_utils/").get_code(
                "ansible.module_utils.basic")
            assert code.co_filename == "/ansible/module_utils/basic.py"

    # (A run killed by an earlier test leaves its own folder behind: only new ones count.)
    runs_tmp = sandbox.home / "run" / "ansible-tmp"
    left = set(runs_tmp.glob("ansible-local-*"))

    second = sandbox("backup", "--env", env)

    assert second.returncode == 0, second.stderr
    assert payloads(sandbox.home) == built
    # Each run's own folder of Ansible's, with its link to the shared one, went with the run.
    assert set(runs_tmp.glob("ansible-local-*")) == left
