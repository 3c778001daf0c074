"""The lab's network: one bridge on this machine, one network namespace per host, each
joined to the bridge by a veth pair. Hosts reach each other and this machine through it;
nothing else is routed."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from drtool.adapters.execute import run
from drtool.errors import ConfigError

PREFIX = re.compile(r"^[a-z][a-z0-9]{1,5}$")
SUBNET = re.compile(r"^10\.(\d{1,3})\.(\d{1,3})$")


@dataclass(frozen=True)
class LabNetwork:
    prefix: str  # names every namespace and link, e.g. "drlab" -> drlab-br, drlab-pg1
    subnet: str  # the first three octets of a /24 in 10.0.0.0/8, e.g. "10.231.7"

    def __post_init__(self) -> None:
        if not PREFIX.match(self.prefix):
            raise ConfigError(f"lab prefix must be 2-6 lowercase letters or digits, "
                              f"got {self.prefix!r}")
        match = SUBNET.match(self.subnet)
        if not match or not all(0 <= int(g) <= 255 for g in match.groups()):
            raise ConfigError(f"lab subnet must look like 10.X.Y (a /24 in 10.0.0.0/8), "
                              f"got {self.subnet!r}")

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def namespace(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def veth(self, short: str) -> str:
        return f"{self.prefix}-{short}-v"  # at most 15 characters, the kernel's limit

    def address(self, octet: int) -> str:
        return f"{self.subnet}.{octet}"


def namespaces() -> set[str]:
    done = run(["ip", "netns", "list"])
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


def pids_inside(namespace: str) -> list[int]:
    """Every process whose network namespace is `namespace`."""
    done = run(["ip", "netns", "pids", namespace], check=False)
    return [int(word) for word in done.stdout.split() if word.isdigit()]


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", name], check=False).returncode == 0


def create_bridge(net: LabNetwork) -> None:
    if link_exists(net.bridge):
        return
    run(["ip", "link", "add", net.bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"{net.gateway}/24", "dev", net.bridge])
    run(["ip", "link", "set", net.bridge, "up"])


def add_host(net: LabNetwork, short: str, octet: int) -> str:
    """Create namespace and veth for one host (idempotent); return its address."""
    ns, veth, address = net.namespace(short), net.veth(short), net.address(octet)
    if ns not in namespaces():
        run(["ip", "netns", "add", ns])
    if not link_exists(veth):
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", veth, "master", net.bridge, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
    return address


def remove_host(net: LabNetwork, short: str) -> None:
    """Delete one host's veth and namespace; waits until the kernel has let both go."""
    ns, veth = net.namespace(short), net.veth(short)
    if link_exists(veth):
        run(["ip", "link", "del", veth])
    if ns in namespaces():
        run(["ip", "netns", "del", ns])
    deadline = time.monotonic() + 10
    while link_exists(veth) and time.monotonic() < deadline:
        time.sleep(0.05)


def remove_bridge(net: LabNetwork) -> None:
    if link_exists(net.bridge):
        run(["ip", "link", "del", net.bridge])
