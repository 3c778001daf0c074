"""Where the lab's hosts are and what runs on each: five hosts, each with its namespace,
address and folder, and the state `drtool lab up` records in $DRTOOL_HOME/lab."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from drtool import paths
from drtool.lab import network
from drtool.sandbox import app as demo_app
from drtool.sandbox import layout as sandbox_layout
from drtool.sandbox.services import PostgresCluster, RedisServer
from drtool.util.process import live_pid


@dataclass(frozen=True)
class LabHost:
    name: str  # inventory hostname
    short: str  # namespace suffix
    octet: int  # last octet of its address
    group: str  # the inventory group it serves


HOSTS = (
    LabHost("lab-pg-primary", "pg1", 11, "pg_primary"),
    LabHost("lab-pg-target", "pg2", 12, "pg_restore_target"),
    LabHost("lab-redis-primary", "rd1", 13, "redis_primary"),
    LabHost("lab-redis-target", "rd2", 14, "redis_restore_target"),
    LabHost("lab-app", "app", 15, "app"),
)


@dataclass(frozen=True)
class Lab:
    root: Path  # $DRTOOL_HOME/lab
    net: network.LabNetwork
    postgres_root: Path

    # -- where things are ------------------------------------------------------------------

    def host_dir(self, host: LabHost) -> Path:
        return self.root / "hosts" / host.name

    def address(self, host: LabHost) -> str:
        return self.net.address(host.octet)

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def app_config(self) -> Path:
        return self.root / "app.json"

    def host(self, group: str) -> LabHost:
        return next(h for h in HOSTS if h.group == group)

    def cluster(self, host: LabHost) -> PostgresCluster:
        return PostgresCluster(host.name, self.postgres_root / host.name, 5432,
                               sandbox_layout.PG_BIN, self.address(host),
                               self.net.namespace(host.short))

    def redis(self, host: LabHost) -> RedisServer:
        return RedisServer(host.name, self.host_dir(host) / "redis", 6379, self.address(host),
                           self.net.namespace(host.short))

    def sshd_pid(self, host: LabHost) -> int | None:
        return live_pid(self.host_dir(host) / "sshd" / "sshd.pid")

    def service_pid(self, host: LabHost) -> int | None:
        if host.group.startswith("pg_"):
            return self.cluster(host).pid
        if host.group.startswith("redis_"):
            return self.redis(host).pid
        return demo_app.running_pid(self.app_config)

    def status(self) -> list[dict[str, object]]:
        present = network.namespaces()
        return [{"host": h.name, "address": self.address(h), "group": h.group,
                 "namespace": self.net.namespace(h.short),
                 "namespace_exists": self.net.namespace(h.short) in present,
                 "sshd_pid": self.sshd_pid(h), "service_pid": self.service_pid(h)}
                for h in HOSTS]

    def save(self) -> None:
        (self.root / "state.json").write_text(json.dumps({
            "prefix": self.net.prefix, "subnet": self.net.subnet,
            "postgres_root": str(self.postgres_root)}, indent=2) + "\n", encoding="utf-8")


def lab_root() -> Path:
    return paths.drtool_home() / "lab"


def current() -> Lab | None:
    """The lab recorded by `lab up`, or None when it was never set up."""
    try:
        data = json.loads((lab_root() / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Lab(lab_root(), network.LabNetwork(data["prefix"], data["subnet"]),
               Path(data["postgres_root"]))
