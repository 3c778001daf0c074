"""The lab: real SSH hosts in network namespaces, started by `drtool lab up` with a prefix
and subnet of the tests' own, and checked to be gone after `drtool lab down`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import Drtool, identities, survivors

# The lab's namespaces and /24 are one per machine: a test run with a DRTOOL_TEST_PORT_BASE
# of its own (a second run sharing the machine) gets a lab of its own as well.
_OFFSET = (int(os.environ.get("DRTOOL_TEST_PORT_BASE", "26400")) - 26400) // 100 % 200
PREFIX = "drtst" if _OFFSET == 0 else f"drt{_OFFSET:03d}"
SUBNET = f"10.231.{8 + _OFFSET}"


@pytest.fixture(scope="session")
def lab(drtool: Drtool) -> Iterator[Drtool]:
    if os.geteuid() != 0:
        pytest.skip("the lab creates network namespaces: it needs root")
    lab_drtool = Drtool(drtool.home, dict(drtool.env, DRTOOL_LAB_PREFIX=PREFIX,
                                          DRTOOL_LAB_SUBNET=SUBNET))
    up = lab_drtool("lab", "up", "--json")
    assert up.returncode == 0, up.stderr
    rows = json.loads(up.stdout)
    pids = {r["sshd_pid"] for r in rows} | {p for r in rows for p in r["services"].values()}
    assert all(pids) and len(rows) == 5
    yield lab_drtool
    # Everything running inside the lab's namespaces now, sessions and services alike.
    inside = {int(p) for n in run("ip", "netns", "list").split() if n.startswith(PREFIX)
              for p in run("ip", "netns", "pids", n).split()}
    running = identities(pids | inside)
    down = lab_drtool("lab", "down", "--purge")
    assert down.returncode == 0, down.stderr
    leftovers = {
        "namespaces": [n for n in run("ip", "netns", "list").split() if n.startswith(PREFIX)],
        "links": [line for line in run("ip", "-o", "link").splitlines() if f"{PREFIX}-" in line],
        "processes": survivors(running),
        "ssh masters": [line for line in run("ps", "-eo", "args").splitlines()
                        if line.startswith("ssh: ") and (str(drtool.home) in line
                                                         or control_root(drtool) in line)],
    }
    assert leftovers == {k: [] for k in leftovers}, leftovers
    assert not (drtool.home / "inventories" / "lab").exists()


def control_root(drtool: Drtool) -> str:
    """Where drtool under this test home keeps its ssh control sockets."""
    from drtool import paths

    before = os.environ.get("DRTOOL_HOME")
    os.environ["DRTOOL_HOME"] = str(drtool.home)
    try:
        return str(paths.ssh_control_root())
    finally:
        if before is None:
            del os.environ["DRTOOL_HOME"]
        else:
            os.environ["DRTOOL_HOME"] = before


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def lab_state(drtool: Drtool) -> dict:
    rows = json.loads(drtool("lab", "status", "--json").stdout)
    return {row["host"]: row for row in rows}
