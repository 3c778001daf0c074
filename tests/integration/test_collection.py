"""The drtool.drill collection, built from the repository (scripts/build-collection) and
installed where an Ansible user installs collections, runs its own playbooks and roles
without drtool: `ansible-playbook drtool.drill.verify` measures the sandbox's restored
targets as a drill's verify phase does."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from tests.conftest import BIN, Drtool, copy_inventory_with_components, pg

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[object], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600,
                          check=False, env=env, cwd=cwd)


def test_the_built_collection_verifies_the_sandbox_with_its_own_roles(
        sandbox: Drtool, passed_drill: dict[str, Any], tmp_path: Path):
    # Nothing of drtool's own configuration: no ansible.cfg, roles path or collections path
    # of the repository's (the folder it runs in has none either).
    env = {k: v for k, v in sandbox.env.items() if not k.startswith("ANSIBLE_")}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"),
               ANSIBLE_SHOW_CUSTOM_STATS="1")
    built = run([ROOT / "scripts" / "build-collection", tmp_path / "dist"], env, tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    [tarball] = (tmp_path / "dist").glob("drtool-drill-*.tar.gz")
    installed = run([BIN / "ansible-galaxy", "collection", "install", tarball, "-p",
                     tmp_path / "collections"], env, tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    collection = tmp_path / "collections" / "ansible_collections" / "drtool" / "drill"
    assert (collection / "roles" / "drtool_postgres" / "meta" / "argument_specs.yml").is_file()
    assert (collection / "playbooks" / "verify.yml").is_file()

    # The sandbox's cluster, restored by the passed drill; the team's checks left out (some
    # write to the targets, which later tests restore their own ways).
    name = copy_inventory_with_components(sandbox, "sandbox-collection", {"drtool_checks": []},
                                          keep={"main"})
    backup = passed_drill["backup"]
    extravars = {"drtool_env": name, "drtool_drill_id": "collection-check",
                 "drtool_backup_id": backup["id"], "drtool_store_backup_path": backup["location"]}
    done = run([BIN / "ansible-playbook", "drtool.drill.verify", "-i",
                sandbox.home / "inventories" / name, "-e", json.dumps(extravars)], env, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Gathering Facts" not in done.stdout
    stats = json.loads(done.stdout.split("CUSTOM STATS:", 1)[1].split("RUN:", 1)[1]
                       .strip().splitlines()[0])
    measured = stats["drtool_postgres_verify"]["main"]
    assert set(measured) == {"appdb", "shop"}
    counts = measured["appdb"]["counts"]
    assert measured["appdb"]["exists"] is True and counts, measured["appdb"]
    # The counts are the target's, as a direct count reads them now (the application's
    # heartbeat table aside: it grows).
    with pg(sandbox, "pg_target", "appdb") as conn:
        for table in sorted(set(counts) - {"public.app_heartbeat"}):
            schema, relation = table.split(".", 1)
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema),
                                                                 sql.Identifier(relation))
            assert conn.execute(query).fetchone()[0] == counts[table], table
