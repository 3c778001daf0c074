"""Two drills never share a restore target, and a drill whose evidence cannot be written
still rolls its targets back.

- Targets are locked by what they are, not by the environment's name: a second environment
  naming the same PostgreSQL and Redis (spelled another way) is refused before any phase,
  and a second controller (its own lock folder) is refused by the lease file on the target's
  host when its snapshot phase begins.
- A full file system under DRTOOL_HOME (a small tmpfs mounted over the environment's
  evidence folder, filled by the test mid-drill) fails the drill with "cannot write the
  journal", exit 3, after a rollback; the journal's last state is kept outside the home and
  put back by the next operation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import (
    BIN,
    Drtool,
    copy_inventory,
    copy_inventory_with_components,
    leases,
    wait_for_phase,
)
from tests.e2e.test_drill import target_state
from tests.integration.test_interrupts import (
    REAL_BIN,
    STATE_KEYS,
    leftovers,
    rollback_failure,
    wait_for_file,
    wrapped_bin_dir,
)

pytestmark = pytest.mark.integration


SLOW_DUMP = """#!/bin/sh
# pg_dump that waits (until it is stopped) before it runs the real one, writing its PID.
dir=$(dirname "$0")
[ "$1" = --version ] && exec {real}/pg_dump "$@"
echo $$ > "$dir/dump.pid"; sleep 600
exec {real}/pg_dump "$@"
"""


def test_a_target_is_drilled_by_one_environment_and_one_controller_at_a_time(
        sandbox: Drtool, passed_drill, tmp_path):
    # The holder waits in its safety snapshot (the target's pg_dump), when it has leased the
    # targets and before the disaster: the application still runs, so the others get as far
    # as their own snapshot.
    bindir = wrapped_bin_dir(sandbox, "slow-dump-bin", "pg_dump", SLOW_DUMP.format(real=REAL_BIN))
    env = copy_inventory_with_components(sandbox, "sandbox-holder", {
        "drtool_postgres_clusters[0].target.bin_dir": str(bindir),
        "drtool_postgres_clusters[0].snapshot_method": "dump"}, estate=True)
    before = target_state(sandbox)
    holder = sandbox.popen("drill", "--env", env, "--json")
    try:
        check_refusals(sandbox, holder, bindir, env, tmp_path)
    except BaseException:
        holder.kill()  # a failed test must not leave a drill holding the sandbox's targets
        holder.wait()
        raise
    # Killed in its snapshot: nothing changed, but its leases stay until its environment's
    # next operation (here `drtool rollback`) finds it, stops what it left and gives them back.
    journal_path = next((sandbox.home / "evidence" / env).glob("*/journal.json"))
    holder.kill()
    holder.wait(timeout=30)
    assert {lease["drill_id"] for lease in leases(sandbox).values()} == {
        json.loads(journal_path.read_text())["drill_id"]}
    recovered = sandbox("rollback", "--env", env)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    ended = json.loads(journal_path.read_text())
    assert ended["status"] == "aborted" and ended["rollback"] is None
    assert ended["failure"]["phase"] == "snapshot"
    assert "before it changed its targets; their leases were given back" in (
        ended["failure"]["reason"])
    assert leftovers(ended["drill_id"]) == []
    after = target_state(sandbox)
    for key in STATE_KEYS:
        assert after.get(key) == before.get(key), key
    assert leases(sandbox) == {}
    # Nothing changed the targets: the safety snapshot went with the leases.
    assert not (sandbox.home / "snapshots" / env / ended["drill_id"]).exists()
    assert (sandbox.home / "snapshots").is_dir()
    assert not any((tmp_path / "locks").glob("*.owner.json"))
    code, history = sandbox.json("history", "--env", env)
    assert code == 0 and [r["status"] for r in history][:1] == ["aborted"]


def check_refusals(sandbox: Drtool, holder: subprocess.Popen[str], bindir: Path, env: str,
                   tmp_path: Path) -> None:
    """While `holder` waits in its snapshot: another environment and another controller
    are both refused the targets."""
    wait_for_file(bindir / "dump.pid")
    holder_id = json.loads(next((sandbox.home / "evidence" / env).glob("*/journal.json"))
                           .read_text())["drill_id"]
    held = leases(sandbox)
    assert {lease["drill_id"] for lease in held.values()} == {holder_id}, held
    # One lease per restore target: the cluster, each Redis, the file tree (by its path).
    tree = str(sandbox.layout.root / "files" / "uploads-restored")
    assert sorted(held) == sorted([
        f"postgres-{sandbox.port('pg_target')}.lease",
        f"redis-{sandbox.port('redis_target')}.lease",
        f"redis-{sandbox.layout.port('queue_target')}.lease",
        f"files-{hashlib.sha256(tree.encode()).hexdigest()[:12]}.lease"])

    # Another environment, the same PostgreSQL and Redis spelled another way, and nothing
    # else (an unchanged tree or queue would be refused by its own name): refused before
    # any phase.
    declared = yaml.safe_load((Path(__file__).resolve().parents[2] / "inventories" / "sandbox"
                               / "group_vars" / "all.yml").read_text())
    alias = copy_inventory_with_components(sandbox, "sandbox-alias", {
        "drtool_redis_instances": [r for r in declared["drtool_redis_instances"]
                                   if r["name"] == "cache"],
        "drtool_file_trees": [],
        "drtool_services": [s for s in declared["drtool_services"] if s["name"] == "api"],
        "drtool_postgres_clusters[0].target.address": "localhost",
        "drtool_redis_instances[0].target.address": "0.0.0.0"})  # noqa: S104
    refused = sandbox("drill", "--env", alias)
    assert refused.returncode == 75, refused.stdout + refused.stderr
    assert refused.stderr.startswith(
        f"drtool: error: restore target postgres this machine:{sandbox.port('pg_target')} "
        f"is busy: drill {holder_id} of {env}"), refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert not (sandbox.home / "evidence" / alias).exists()

    # Another controller: its own lock folder, so only the lease on the host stops it, when
    # its snapshot phase begins and before it touches anything.
    # Its snapshot path is the holder's own folder, not named for its drill: refused, it
    # must not remove that folder (it removes only a snapshot folder named for itself).
    held = sandbox.home / "snapshots" / env / holder_id
    assert held.is_dir()
    second = copy_inventory(sandbox, "sandbox-second-controller", {}, {
        host: {"drtool_snapshot_path": str(held)}
        for host in ("sandbox-pg-target", "sandbox-redis-target", "sandbox-app")})
    other = subprocess.run(
        [str(BIN / "drtool"), "drill", "--env", second, "--json"],
        env=dict(sandbox.env, DRTOOL_LOCK_DIR=str(tmp_path / "locks")),
        capture_output=True, text=True, timeout=300, check=False)
    assert other.returncode == 75, other.stderr
    journal = json.loads(other.stdout)
    assert journal["failure"]["kind"] == "locked" and journal["failure"]["phase"] == "snapshot"
    assert f"drill {holder_id} of {env}" in journal["failure"]["reason"]
    assert [p["status"] for p in journal["phases"]] == (
        ["passed", "failed"] + ["skipped"] * 6)
    assert journal["rollback"] is None
    assert held.is_dir() and any(held.iterdir()), "the refused drill removed the holder's snapshot"
    assert {lease["drill_id"] for lease in leases(sandbox).values()} == {holder_id}
    assert holder.poll() is None


def test_a_full_evidence_disk_still_rolls_back_and_says_why(sandbox: Drtool, passed_drill):
    env = copy_inventory(sandbox, "sandbox-full-disk", {})
    folder = sandbox.home / "evidence" / env
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)], check=True)
    fallback = None
    # Created while there is room: on a full tmpfs even creating a file may fail.
    filler = open(folder / "filler", "wb")  # noqa: SIM115 (closed below)
    try:
        before = target_state(sandbox)
        drill = sandbox.popen("drill", "--env", env, "--json")
        journal_path = wait_for_phase(folder, "disaster", proc=drill)
        drill_id = json.loads(journal_path.read_text())["drill_id"]
        try:  # the disk fills as the disaster begins
            while True:
                filler.write(b"\0" * (1 << 20))
                filler.flush()
        except OSError:
            pass
        out, err = drill.communicate(timeout=300)

        assert drill.returncode == 3, err
        assert "cannot write the journal" in err and "Traceback" not in err
        journal = json.loads(out)
        assert journal["status"] == "failed"
        assert journal["failure"]["kind"] == "evidence", journal["failure"]
        assert journal["failure"]["reason"].startswith("cannot write the journal: [Errno 28]")
        assert journal["rollback"]["status"] == "passed", rollback_failure(journal)
        assert leftovers(drill_id) == []
        after = target_state(sandbox)
        for key in STATE_KEYS[1:]:
            assert after.get(key) == before.get(key), key
        # What the full disk holds is the journal as it was when the disk filled.
        assert json.loads(journal_path.read_text())["status"] == "running"
        fallback = Path(next(line.split("its last state is at ", 1)[1].split(",")[0]
                             for line in err.splitlines() if "its last state is at" in line))
        assert json.loads(fallback.read_text())["status"] == "failed"
    finally:
        with contextlib.suppress(OSError):  # what it still buffers does not fit, as meant
            filler.close()
        subprocess.run(["umount", "-l", str(folder)], check=False)
    # With room again (the tmpfs gone), the next operation puts the journal in place and
    # records the drill as it ended: failed, not killed.
    done = sandbox("rollback", "--env", env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((folder / drill_id / "journal.json").read_text())["status"] == "failed"
    assert not fallback.exists()
    code, history = sandbox.json("history", "--env", env)
    assert code == 0
    assert (history[0]["drill_id"], history[0]["status"]) == (drill_id, "failed")
    # The rollback's artifacts stay in the fallback folder, where the journal says they are;
    # the test home goes at the end of the session, and its fallback folder with it.
    journal = json.loads((folder / drill_id / "journal.json").read_text())
    assert Path(journal["rollback"]["artifacts"]).is_relative_to(fallback.parent.parent)
    shutil.rmtree(fallback.parent.parent)
