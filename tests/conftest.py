"""Fixtures shared by the integration and end-to-end tests.

They start a real sandbox (two PostgreSQL clusters, two Redis servers, the demo app) under
a temporary DRTOOL_HOME on ports of their own, and stop every process it started, by PID,
at the end of the session. Nothing here mocks PostgreSQL, Redis or Ansible.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
# Not the default 25400, so a developer's own sandbox is left alone; DRTOOL_TEST_PORT_BASE
# lets a second test run share the machine. Under pytest-xdist each worker has a sandbox of
# its own, 1000 ports further for each worker. Below the ephemeral port range (32768-60999):
# there, a client's source port could take a server's port before it starts.
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
PORT_BASE = str(int(os.environ.get("DRTOOL_TEST_PORT_BASE", "26400")) + 1000 * WORKER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The lab's tests first: they are the longest unit of work, and under pytest-xdist
    they go to one worker while the other takes the sandbox's modules."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/lab/"))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: absent without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist, a test module runs whole, in its order, on one worker (later tests
    read what earlier ones left: drills, backups, the history), and the lab's two modules
    together on one worker (its namespaces and addresses are one per machine)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "tests/lab" if module.startswith("tests/lab/") else module

    return ByModule(config, log)


@dataclass
class Drtool:
    """Runs the real `drtool` command against the test sandbox."""

    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "drtool"), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def json(self, *args: str) -> tuple[int, Any]:
        done = self(*args, "--json")
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError:
            pytest.fail(f"drtool {' '.join(args)} printed no JSON (exit {done.returncode}): "
                        f"{done.stdout[-2000:]} {done.stderr[-2000:]}")

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(BIN / "drtool"), *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def secret(self, name: str) -> str:
        return (self.home / "sandbox" / "secrets" / name).read_text().strip()

    @property
    def layout(self) -> Any:
        from drtool.sandbox import layout

        return layout.load(self.home / "sandbox")

    def port(self, service: str) -> int:
        from drtool.sandbox.layout import OFFSETS

        return int(PORT_BASE) + OFFSETS[service]


@pytest.fixture(scope="session")
def drtool_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("drtool-home")
    yield home
    # Last of all: the sandbox and the lab keep their state here until they are down.
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def drtool(drtool_home: Path) -> Drtool:
    env = dict(os.environ, DRTOOL_HOME=str(drtool_home), DRTOOL_SANDBOX_PORT_BASE=PORT_BASE,
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", COLUMNS="200")
    return Drtool(drtool_home, env)


@pytest.fixture(scope="session")
def sandbox(drtool: Drtool) -> Iterator[Drtool]:
    """A running sandbox for the whole session; torn down (and purged) at the end, after
    checking that `sandbox down` stopped every process it had started."""
    up = drtool("sandbox", "up", "--json")
    if up.returncode != 0:  # stop what did start: nothing may outlive the session
        drtool("sandbox", "down", "--purge")
        pytest.fail(f"sandbox up failed: {up.stderr.strip()}")
    pids = [row["pid"] for row in json.loads(up.stdout)]
    assert all(pids), up.stdout
    yield drtool
    status = drtool("sandbox", "status", "--json")
    pids += [row["pid"] for row in json.loads(status.stdout or "[]") if row["pid"]]
    running = identities(pids)
    down = drtool("sandbox", "down", "--purge")
    assert down.returncode == 0, down.stderr
    left = survivors(running)
    assert not left, f"sandbox processes still running after `sandbox down`: {left}"


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie has stopped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def identities(pids: Iterable[int]) -> dict[int, str]:
    """Each running PID with its start time (clock ticks since boot): a PID the kernel hands
    to a new process after the first one exits has another start time. The suite starts
    tens of thousands of processes, so PIDs wrap (pid_max 32768) while it runs."""
    found = {}
    for pid in pids:
        try:
            found[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[19]
        except (OSError, IndexError):
            continue
    return found


def survivors(before: dict[int, str]) -> list[str]:
    """The processes of `before` (from `identities`) that still run, by PID and command line;
    a PID now held by another process is not one of them."""
    now = identities(before)
    left = []
    for pid, start in now.items():
        if start == before[pid] and alive(pid):
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            left.append(f"{pid} {args.strip()}")
    return left


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, children first."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(stat.parent.name))
                frontier.append(int(stat.parent.name))
    return found


def wait_gone(pid: int, timeout: float = 30) -> None:
    """Wait for `pid` to stop; kill it and fail the test if it does not within `timeout`."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"process {pid} was still running after {timeout} s")
        time.sleep(0.05)


def wait_for_phase(journal_dir: Path, phase: str, timeout: float = 300,
                   proc: subprocess.Popen | None = None) -> Path:
    """The journal of the drill once `phase` runs. Given the drill's process `proc`, only
    its own journal counts, and once that drill has ended (its journal is closed, or the
    process is gone) before `phase`, this fails at once with its failure and what it said.
    (A drill started with --json that ended early blocks writing its journal to a pipe
    nobody reads yet: its process is still there, its journal is not running.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gone = proc is not None and proc.poll() is not None
        ended = None
        for path in sorted(journal_dir.glob("*/journal.json")):
            try:
                data = json.loads(path.read_text())
            except ValueError:
                pytest.fail(f"{path} was read half-written: journals must be written atomically")
            if proc is not None and data.get("pid") != proc.pid:
                continue
            if data["status"] != "running":
                ended = data
            elif any(p["name"] == phase and p["status"] == "running" for p in data["phases"]):
                return path
        if proc is not None and (gone or ended is not None):
            out, err = proc.communicate(timeout=120)
            failure = (ended or {}).get("failure") or {}
            pytest.fail(f"the drill ended (exit {proc.returncode}) before phase {phase}: "
                        f"{failure.get('phase')}: {failure.get('reason')}\n"
                        f"{err.strip()[-2000:] or out.strip()[-2000:]}")
        time.sleep(0.05)
    if proc is None:
        pytest.fail(f"phase {phase} never started")
    # Still running: where it waits, then what it said once stopped (SIGTERM: it aborts
    # cleanly and says why).
    pids = ",".join(str(pid) for pid in [proc.pid, *descendants(proc.pid)])
    tree = subprocess.run(["ps", "-o", "pid,ppid,stat,etimes,args", "-p", pids],
                          capture_output=True, text=True, check=False).stdout
    proc.terminate()
    try:
        _out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    pytest.fail(f"phase {phase} never started within {timeout} s; the drill's processes:\n"
                f"{tree[-3000:]}\nwhat it said:\n{err.strip()[-3000:]}")


@pytest.fixture(autouse=True)
def no_lease_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that used the shared sandbox leaves no lease on its restore targets: one left
    behind refuses the next test's drill (exit 75, at its snapshot), far from its cause."""
    yield
    if "sandbox" not in request.fixturenames:
        return
    left = leases(request.getfixturevalue("sandbox"))
    if left:
        pytest.fail("the test left leases on the sandbox's restore targets (roll its drill "
                    f"back, or run an operation of its environment): {left}")


@pytest.fixture(scope="session")
def passed_drill_target() -> dict[str, Any]:
    """What the restore target's `shop` database held as the passed drill ended (filled by
    passed_drill): later tests on the same sandbox restore it their own ways."""
    return {}


@pytest.fixture(scope="session")
def passed_drill(sandbox: Drtool, passed_drill_target: dict[str, Any]) -> dict[str, Any]:
    """One full drill on the sandbox, shared by the tests that read its journal."""
    code, journal = sandbox.json("drill", "--env", "sandbox")
    assert code == 0, json.dumps(journal.get("failure"), indent=1)
    with pg(sandbox, "pg_target", "shop") as conn:
        passed_drill_target["shop_owner"] = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'").fetchone()[0]
        passed_drill_target["price_changes"] = conn.execute(
            "SELECT count(*) FROM shop.price_changes").fetchone()[0]
    return journal


@pytest.fixture(scope="module")
def copies(sandbox: Drtool, passed_drill: dict[str, Any]) -> Iterator[Any]:
    """copy(suffix): a copy of the passed drill's backup with its own id (its verified.json
    left out: no drill verified the copy); its folder. The copies go with the module."""
    original = Path(passed_drill["backup"]["location"])
    made: list[Path] = []

    def copy(suffix: str) -> Path:
        folder = original.with_name(f"{original.name}-{suffix}")
        shutil.copytree(original, folder, ignore=shutil.ignore_patterns("verified.json"))
        made.append(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["backup_id"] = folder.name
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
        return folder

    yield copy
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


# What a copy of the sandbox keeps unless a test asks for the whole estate: a cluster of two
# databases (one owned by an application role), a Redis and the API that uses both. The
# mechanics most tests drive (failures, interrupts, rollbacks, stores, notifications) are
# the same with the queue, the worker and the uploads tree, whose drills cost about twice
# as much; tests/integration/test_estate.py and the e2e drill keep the whole estate.
SLIM_COMPONENTS = {"main", "cache", "api"}


def copy_inventory(drtool: Drtool, name: str, all_vars: dict[str, Any],
                   host_vars: dict[str, dict[str, Any]] | None = None,
                   estate: bool = False, keep: set[str] | None = None) -> str:
    """A copy of the sandbox inventory as environment NAME under DRTOOL_HOME/inventories,
    with `all_vars` added to the group `all` and any host's vars overridden; with only the
    components in `keep` (default SLIM_COMPONENTS; and the hosts and team checks they use)
    unless `estate`."""
    import yaml

    folder = drtool.home / "inventories" / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(Path(__file__).resolve().parents[1] / "inventories" / "sandbox", folder)
    hosts = yaml.safe_load((folder / "hosts.yml").read_text())
    if not estate:
        slim(folder, hosts, keep or SLIM_COMPONENTS)
    hosts["all"]["vars"] = all_vars
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    for host, values in (host_vars or {}).items():
        (folder / "host_vars").mkdir(exist_ok=True)
        (folder / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values))
    return name


def slim(folder: Path, hosts: dict[str, Any], keep: set[str]) -> None:
    """Keep only the components named in `keep` in the inventory copy at `folder`, the
    team's checks that read them, and the hosts they are on (`hosts`: its hosts.yml, edited
    in place)."""
    import yaml

    path = folder / "group_vars" / "all.yml"
    values = yaml.safe_load(path.read_text())
    used = set()
    for variable in ("drtool_postgres_clusters", "drtool_redis_instances", "drtool_file_trees",
                     "drtool_services"):
        kept = [e for e in values.get(variable) or [] if e["name"] in keep]
        values[variable] = kept
        used |= {e.get("host") for e in kept} | {
            e[side]["host"] for e in kept for side in ("source", "target", "recovery")
            if "host" in e.get(side, {})}
    values["drtool_checks"] = [c for c in values.get("drtool_checks") or []
                               if (c.get("component") or c.get("service")) in keep]
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    for group in hosts["all"]["children"].values():
        group["hosts"] = {h: v for h, v in group["hosts"].items() if h in used}


def copy_inventory_with_components(drtool: Drtool, name: str, changes: dict[str, Any],
                                   all_vars: dict[str, Any] | None = None,
                                   host_vars: dict[str, dict[str, Any]] | None = None,
                                   estate: bool = False, keep: set[str] | None = None) -> str:
    """copy_inventory, then `changes` made in the copy's group_vars/all.yml, where the
    component lists are: each key says where, as `drtool_postgres_clusters[0].target.port`
    (a mapping's key after a dot, a list's index in brackets), each value what it becomes.
    Every step but the last must exist: a change to something the sandbox no longer
    declares fails the test instead of being ignored."""
    import re

    import yaml

    copy_inventory(drtool, name, all_vars or {}, host_vars, estate, keep)
    path = drtool.home / "inventories" / name / "group_vars" / "all.yml"
    values = yaml.safe_load(path.read_text())
    for where, value in changes.items():
        steps = [int(s[1:-1]) if s.startswith("[") else s
                 for s in re.findall(r"\[\d+\]|[^.\[\]]+", where)]
        node = values
        for step in steps[:-1]:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                pytest.fail(f"{where}: the sandbox's group_vars/all.yml has no {step!r} there")
        node[steps[-1]] = value
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return name


def leases(drtool: Drtool) -> dict[str, dict]:
    """The sandbox's leases on its restore targets, by file name: who holds each."""
    folder = drtool.home / "sandbox" / "leases"
    return {p.name: json.loads(p.read_text()) for p in folder.glob("*.lease")}


def pg(drtool: Drtool, service: str, database: str = "appdb") -> Any:
    from drtool.adapters import postgres

    return postgres.connect("127.0.0.1", drtool.port(service), "postgres",
                            drtool.secret("postgres_password"), database)


def rd(drtool: Drtool, service: str) -> Any:
    from drtool.adapters import redis_client

    return redis_client.connect("127.0.0.1", drtool.port(service), drtool.secret("redis_password"))
