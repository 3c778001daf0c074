"""Drills over SSH against the lab: restore to other hosts, a whole estate side by side,
preflight, --plan, the production guard's refusals, and a host lost mid-drill."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from drtool.adapters import postgres, redis_client
from tests.conftest import BIN, Drtool, descendants, wait_for_phase, wait_gone
from tests.lab.conftest import SUBNET, lab_state

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]

PRIMARY, TARGET = f"{SUBNET}.11", f"{SUBNET}.12"
REDIS_PRIMARY, REDIS_TARGET = f"{SUBNET}.13", f"{SUBNET}.14"
APP = f"{SUBNET}.15"
CACHE, QUEUE = 6379, 6380  # the ports of the Redis instances, on both Redis hosts
LAB_HOSTS = {"lab-pg-primary", "lab-pg-target", "lab-redis-primary", "lab-redis-target",
             "lab-app"}


def secret(lab: Drtool, name: str) -> str:
    return (lab.home / "lab" / "secrets" / name).read_text().strip()


def pg(lab: Drtool, address: str, database: str = "appdb"):
    return postgres.connect(address, 5432, "postgres", secret(lab, "postgres_password"), database)


def rd(lab: Drtool, address: str, port: int = CACHE):
    return redis_client.connect(address, port, secret(lab, "redis_password"))


def primary_identity(lab: Drtool) -> tuple:
    with pg(lab, PRIMARY, "postgres") as conn:
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = 'appdb'").fetchone()[0]
    return oid, rd(lab, REDIS_PRIMARY).info("server")["run_id"]


@pytest.fixture(scope="module")
def lab_drill(lab: Drtool) -> tuple[dict, tuple]:
    """One drill of the lab's whole estate (with privilege escalation on every host, as the
    lab's inventory asks), shared by the tests that only read what it did: the one Molecule's
    `drill` scenario runs (`drtool drill --env lab`, then its own verify). Returns its
    journal and the primaries' identities before it."""
    evidence = lab.home / "evidence" / "lab"
    earlier = set(evidence.glob("*/journal.json")) if evidence.exists() else set()
    before = primary_identity(lab)

    done = subprocess.run([str(BIN / "molecule"), "test", "-s", "drill"], cwd=ROOT, env=lab.env,
                          capture_output=True, text=True, timeout=900, check=False)

    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    new = sorted(set(evidence.glob("*/journal.json")) - earlier)
    assert len(new) == 1, new
    return json.loads(new[0].read_text()), before


def test_a_drill_over_ssh_restores_on_other_hosts_and_never_writes_to_the_primary(
        lab: Drtool, lab_drill):
    journal, before = lab_drill

    assert journal["status"] == "passed" and 0 < journal["rto_s"] < 300
    tasks = [t for p in journal["phases"] for t in p["tasks"]]
    assert {t["host"] for t in tasks} == LAB_HOSTS
    assert all(t["duration_s"] is not None for t in tasks)
    # The backup travelled source host -> store -> restore target over SSH.
    actions = {(t["host"], t["action"]) for t in tasks}
    assert ("lab-pg-primary", "ansible.builtin.fetch") in actions
    assert ("lab-pg-target", "ansible.builtin.unarchive") in actions
    destructive = {"drtool.drill.pg_database", "drtool.drill.pg_restore",
                   "drtool.drill.redis_admin", "ansible.builtin.copy",
                   "ansible.builtin.systemd_service"}
    assert not [t for t in tasks if t["host"] in ("lab-pg-primary", "lab-redis-primary")
                and t["action"] in destructive]
    assert primary_identity(lab) == before  # never dropped, recreated or restarted
    # What was restored on the target is the backup, exactly.
    checks = {(c["name"], c["target"].split("/")[0]) for c in journal["checks"]}
    assert ("postgres.sentinel", "lab-pg-target") in checks
    assert {c["status"] for c in journal["checks"]} == {"passed"}
    reached = {c["target"] for c in journal["checks"] if c["name"] == "preflight.reachable"}
    assert reached == LAB_HOSTS
    # Staging copies are gone from the hosts; the store keeps the backup.
    work = lab.home / "lab" / "hosts"
    assert not list(work.glob("*/work/backups/*")) and not list(work.glob("*/work/snapshots/*"))
    assert Path(journal["backup"]["manifest"]).is_file()
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in processes.splitlines()
                if line.startswith("ssh: ") and str(lab.home) in line]  # masters closed


def test_a_drill_over_ssh_restores_the_whole_estate_side_by_side_in_order(lab: Drtool,
                                                                         lab_drill):
    journal, _ = lab_drill

    scope = {c["name"]: c for c in journal["scope"]["components"]}
    assert {(name, c["kind"]) for name, c in scope.items()} == {
        ("main", "postgres"), ("cache", "redis"), ("queue", "redis"), ("uploads", "files"),
        ("app", "service"), ("worker", "service")}
    assert scope["main"]["databases"] == ["appdb", "shop"]
    # Every component restored, each checked where it was restored.
    assert {c["status"] for c in journal["checks"]} == {"passed"}
    checks = {(c["name"], c["target"]) for c in journal["checks"]}
    for database in ("appdb", "shop"):
        assert ("postgres.sentinel", f"lab-pg-target/main/{database}:drtool.sentinel") in checks
    assert ("postgres.row_count", "lab-pg-target/main/shop:shop.price_changes") in checks
    assert ("postgres.roles", "lab-pg-target/main/shop") in checks
    for instance in ("cache", "queue"):
        assert ("redis.key_count", f"lab-redis-target/{instance}:db0") in checks
        assert ("redis.heartbeat", instance) in checks
    assert ("files.tree", "lab-app/uploads") in checks
    # The team's checks ran over SSH on the hosts they read, one of each kind.
    team = {c["name"]: c for c in journal["checks"] if c["name"].startswith("team.")}
    assert {name: c["target"].split(" ")[0] for name, c in team.items()} == {
        "team.orders-exist": "lab-pg-target/main/appdb",
        "team.job-queue": "lab-redis-target/queue:db0",
        "team.app-reports-the-restored-orders": "lab-app",
        "team.uploads-readme": "lab-app"}
    orders = team["team.orders-exist"]["actual"]
    assert orders == 60000 and team["team.app-reports-the-restored-orders"]["actual"] == orders
    assert {(n, t) for n, t in checks if n.startswith("service.")} == {
        ("service.health", f"app http://{APP}:8080/health"),
        ("service.health_field", f"app http://{APP}:8080/health status"),
        ("service.health", f"worker http://{APP}:8081/health"),
        ("service.health_field", f"worker http://{APP}:8081/health backlog")}
    # The data components were restored side by side, each in its own run, on its own host.
    restore = next(p for p in journal["phases"] if p["name"] == "restore")
    runs = {r["component"]: r for r in restore["components"]}
    assert {name: (r["host"], r["status"]) for name, r in runs.items()} == {
        "main": ("lab-pg-target", "passed"), "cache": ("lab-redis-target", "passed"),
        "queue": ("lab-redis-target", "passed"), "uploads": ("lab-app", "passed")}
    for a, b in itertools.combinations(runs.values(), 2):
        assert at(a["started_at"]) < at(b["ended_at"]), (a, b)
        assert at(b["started_at"]) < at(a["ended_at"]), (a, b)
    # The worker was started only once the app it follows had answered its health check
    # (the inventory declares the worker first: only its `after` orders the two).
    restart = next(p for p in journal["phases"] if p["name"] == "restart")
    folder = lab.home / "evidence" / "lab" / journal["drill_id"] / restart["artifacts"]
    answered = task_result(folder, "ansible.builtin.uri",
                           lambda res: res.get("url") == f"http://{APP}:8080/health")
    worker_started = task_result(folder, "ansible.builtin.command",
                                 lambda res: "drtool.sandbox.worker" in res.get("cmd", []))
    assert "--stores restore" in " ".join(worker_started["res"]["cmd"])
    assert at(answered["end"]) <= at(worker_started["start"]), (answered, worker_started)
    # What the targets hold now, read from them directly.
    with pg(lab, TARGET, "shop") as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                             "WHERE datname = 'shop'").fetchone()[0]
        assert owner == "shop_owner"
        assert conn.execute("SELECT count(*) FROM shop.price_changes").fetchone()[0] == 500
    queue = rd(lab, REDIS_TARGET, QUEUE)
    assert queue.xlen("queue:jobs") == 2000
    assert queue.config_get("appendonly") == {"appendonly": "no"}
    assert not rd(lab, REDIS_TARGET, CACHE).exists("queue:jobs")  # two instances, kept apart
    hosts = lab.home / "lab" / "hosts"
    source, target = hosts / "lab-pg-primary/files/uploads", hosts / "lab-app/files/uploads"
    assert tree(target) == {k: v for k, v in tree(source).items()
                            if not k.endswith(".tmp") and not k.startswith("cache")}
    assert "docs/readme.txt" in tree(target) and "latest.jpg" in tree(target)


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def task_result(folder: Path, action: str, matches) -> dict:
    """The event data of the one task of `action` whose result `matches`, among the ansible-
    runner events of every run under `folder`."""
    found = []
    for path in folder.rglob("job_events/*.json"):
        event = json.loads(path.read_text())
        data = event.get("event_data", {})
        if (event.get("event") == "runner_on_ok" and data.get("task_action") == action
                and matches(data.get("res") or {})):
            found.append(data)
    assert len(found) == 1, (action, found)
    return found[0]


def tree(root: Path) -> dict[str, tuple]:
    """Every entry below `root`: its kind, mode and content (a link: its target; a file: its
    bytes and mtime)."""
    out: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            entry: tuple = ("link", os.readlink(path))
        elif path.is_dir():
            entry = ("dir", oct(info.st_mode & 0o7777))
        else:
            entry = ("file", oct(info.st_mode & 0o7777), path.read_bytes(), int(info.st_mtime))
        out[str(path.relative_to(root))] = entry
    return out


def test_plan_lists_what_is_destroyed_where_and_changes_nothing(lab: Drtool):
    evidence = lab.home / "evidence" / "lab"
    journals = set(evidence.glob("*")) if evidence.exists() else set()
    code, plan = lab.json("drill", "--env", "lab", "--plan")
    assert code == 0
    assert [p["phase"] for p in plan["plan"]] == ["preflight", "snapshot", "backup", "disaster",
                                                 "restore", "restart", "verify", "cleanup"]
    destroyed = {(s["host"], s["address"]) for p in plan["plan"] for s in p["steps"]
                 if s["destroys"]}
    assert destroyed == {("lab-app", f"{SUBNET}.15"), ("lab-pg-target", TARGET),
                         ("lab-redis-target", REDIS_TARGET)}
    assert (set(evidence.glob("*")) if evidence.exists() else set()) == journals


@pytest.mark.parametrize(("name", "edit", "refusal"), [
    ("same-host", (f"ansible_host: {TARGET}", f"ansible_host: {PRIMARY}"),
     "lab-pg-target: refused as a destructive target: it is the same machine as backup source "
     f"lab-pg-primary ({PRIMARY})"),
    ("primary-endpoint", (f"drtool_postgres_host: {TARGET}", f"drtool_postgres_host: {PRIMARY}"),
     f"lab-pg-target: refused as a destructive target: its postgres endpoint {PRIMARY}:5432 is "
     "backup source lab-pg-primary's"),
    ("production-group", None,
     "lab-redis-target: drtool_tier: refused as a destructive target: its tier is production"),
])
def test_the_production_guard_refuses_every_bypass(lab: Drtool, name, edit, refusal):
    source = lab.home / "inventories" / "lab"
    variant = lab.home / "inventories" / f"lab-{name}"
    shutil.rmtree(variant, ignore_errors=True)
    shutil.copytree(source, variant)
    if edit:
        hosts = variant / "hosts.yml"
        assert edit[0] in hosts.read_text()
        hosts.write_text(hosts.read_text().replace(edit[0], edit[1]))
    else:  # a group from a production inventory, pulled in with its own group_vars
        (variant / "group_vars" / "redis_restore_target.yml").write_text(
            "---\ndrtool_tier: production\n")
    before = primary_identity(lab)

    for command in (("drill",), ("restore", "--backup", "bk-any"), ("verify", "--backup", "x")):
        done = lab(*command, "--env", f"lab-{name}")
        assert done.returncode == 2, (command, done.stderr)
        assert refusal in done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (lab.home / "evidence" / f"lab-{name}").exists()  # refused before any phase
    assert primary_identity(lab) == before
    shutil.rmtree(variant)


def test_privilege_escalation_is_checked_on_every_host_when_the_inventory_asks_for_it(
        lab_drill):
    journal, _ = lab_drill
    become = {c["target"]: c["status"] for c in journal["checks"]
              if c["name"] == "preflight.become"}
    assert become == dict.fromkeys(LAB_HOSTS, "passed")


def test_preflight_lists_every_problem_and_changes_nothing(lab: Drtool):
    state = lab_state(lab)
    target_redis = rd(lab, REDIS_TARGET)
    keys_before = target_redis.dbsize()
    os.kill(state["lab-app"]["sshd_pid"], signal.SIGTERM)
    os.kill(state["lab-redis-primary"]["service_pid"], signal.SIGTERM)
    try:
        wait_gone(state["lab-app"]["sshd_pid"])
        wait_gone(state["lab-redis-primary"]["service_pid"])

        code, journal = lab.json("drill", "--env", "lab")

        assert code == 3
        assert journal["failure"]["phase"] == "preflight"
        assert journal["failure"]["kind"] == "preflight"
        failed = [c for c in journal["checks"] if c["status"] == "failed"]
        assert {(c["name"], c["target"]) for c in failed} == {
            ("preflight.reachable", "lab-app"),
            ("preflight.service.redis.cache", "lab-redis-primary"),
        }
        assert "lab-app" in journal["failure"]["reason"]
        assert "lab-redis-primary" in journal["failure"]["reason"]
        assert [p["status"] for p in journal["phases"]] == ["failed"] + ["skipped"] * 7
        assert journal["phases"][0]["tasks"] == []  # not even the preflight playbook ran
        assert rd(lab, REDIS_TARGET).dbsize() == keys_before
    finally:
        assert lab("lab", "up").returncode == 0  # idempotent: restarts what was stopped
    assert all(row["sshd_pid"] and row["service_pid"] for row in lab_state(lab).values())


def test_a_host_lost_mid_drill_fails_that_phase_with_exit_3(lab: Drtool):
    target_sshd = lab_state(lab)["lab-pg-target"]["sshd_pid"]
    drill = lab.popen("drill", "--env", "lab")
    journal_path = wait_for_phase(lab.home / "evidence" / "lab", "restore", proc=drill)

    for pid in [*descendants(target_sshd), target_sshd]:  # the listener and every session
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _out, err = drill.communicate(timeout=600)

    try:
        assert drill.returncode == 3, err
        journal = json.loads(journal_path.read_text())
        assert journal["status"] == "failed"
        assert journal["failure"]["phase"] == "restore"
        assert journal["failure"]["kind"] == "orchestration"
        assert journal["failure"]["hosts"] == ["lab-pg-target"]
        assert "lab-pg-target" in err and "restore" in err
        phases = {p["name"]: p["status"] for p in journal["phases"]}
        assert phases["restore"] == "failed" and phases["verify"] == "skipped"
        assert journal["rollback"] is not None  # attempted; the lost host cannot be rolled back
    finally:
        assert lab("lab", "up").returncode == 0
        # What the drill started on the lost host could not be stopped, so nothing was rolled
        # back and the drill's leases stay, as the person who repairs the targets finds them;
        # they remove them once done, as the tests after this one need.
        for lease in (lab.home / "lab" / "hosts").glob("*/work/locks/*.lease"):
            if journal_path.parent.name in lease.read_text():
                lease.unlink()


