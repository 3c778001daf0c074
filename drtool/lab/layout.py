"""Where the lab's hosts are and what runs on each: five hosts, each with its namespace,
address and folder, holding sides of the lab's components (a small estate: a PostgreSQL
cluster with two databases, two Redis instances, a file tree and two services), and the
state `drtool lab up` records in $DRTOOL_HOME/lab."""

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
    kind: str  # the kind of its main component: postgres, redis or service
    side: str  # which side of it: source or target (a service's host is a target)
    group: str  # the inventory group it is listed in (Molecule's scenarios name them)


SOURCE, TARGET = "source", "target"
# The lab's components. The PostgreSQL cluster (both databases seeded by
# drtool.sandbox.seed: `shop` is owned by the role shop_owner, which the target lacks).
CLUSTER, DATABASES = "main", ("appdb", "shop")
# The Redis instances, each a server on both Redis hosts: its port, and its folder under the
# host's (its configuration, RDB and log). The cache serves the app, the queue the worker.
REDIS = {"cache": (6379, "redis"), "queue": (6380, "redis-queue")}
# The file tree: a small tree on the PostgreSQL primary, restored onto the app host.
TREE, TREE_EXCLUDE = "uploads", ("*.tmp", "cache/")
# The services on the app host and their ports: the demo app on the cache and the cluster,
# and the worker on the queue, started after the app.
SERVICES = {"app": 8080, "worker": 8081}

HOSTS = (
    LabHost("lab-pg-primary", "pg1", 11, "postgres", SOURCE, "pg_primary"),
    LabHost("lab-pg-target", "pg2", 12, "postgres", TARGET, "pg_restore_target"),
    LabHost("lab-redis-primary", "rd1", 13, "redis", SOURCE, "redis_primary"),
    LabHost("lab-redis-target", "rd2", 14, "redis", TARGET, "redis_restore_target"),
    LabHost("lab-app", "app", 15, "service", TARGET, "app"),
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
        return self.service_config("app")

    def service_config(self, name: str) -> Path:
        """The configuration of one of the app host's services (app.json, worker.json)."""
        return self.root / f"{name}.json"

    def host(self, kind: str, side: str = TARGET) -> LabHost:
        """The host of `side` of the lab's components of `kind` (postgres, redis, service)."""
        return next(h for h in HOSTS if h.kind == kind and h.side == side)

    def tree_host(self, side: str) -> LabHost:
        """The host of `side` of the file tree: the PostgreSQL primary, the app host."""
        return self.host("postgres", SOURCE) if side == SOURCE else self.host("service")

    def tree(self, side: str) -> Path:
        return self.host_dir(self.tree_host(side)) / "files" / TREE

    def components(self, host: LabHost) -> list[str]:
        """The components `host` holds a side of, its main one first."""
        names = {"postgres": [CLUSTER], "redis": list(REDIS), "service": list(SERVICES)}[host.kind]
        return names + [TREE for side in (SOURCE, TARGET) if self.tree_host(side) == host]

    def cluster(self, host: LabHost) -> PostgresCluster:
        return PostgresCluster(host.name, self.postgres_root / host.name, 5432,
                               sandbox_layout.PG_BIN, self.address(host),
                               self.net.namespace(host.short))

    def redis(self, host: LabHost, instance: str = "cache") -> RedisServer:
        port, folder = REDIS[instance]
        return RedisServer(f"{host.name} {instance}", self.host_dir(host) / folder, port,
                           self.address(host), self.net.namespace(host.short))

    def sshd_pid(self, host: LabHost) -> int | None:
        return live_pid(self.host_dir(host) / "sshd" / "sshd.pid")

    def service_pids(self, host: LabHost) -> dict[str, int | None]:
        """The PID of each server or service on `host` ({name: PID or None}), its main one
        first."""
        if host.kind == "postgres":
            return {CLUSTER: self.cluster(host).pid}
        if host.kind == "redis":
            return {name: self.redis(host, name).pid for name in REDIS}
        return {name: demo_app.running_pid(self.service_config(name)) for name in SERVICES}

    def status(self) -> list[dict[str, object]]:
        """A row per host: its main component (`component`, of `kind`, its `side`) and all
        it holds a side of (`components`). `service_pid` is its main server's or service's
        PID while every one of them runs (None once any is down); `services` has each one's."""
        present = network.namespaces()
        rows = []
        for h in HOSTS:
            pids = self.service_pids(h)
            rows.append({
                "host": h.name, "address": self.address(h), "group": h.group,
                "component": self.components(h)[0], "kind": h.kind, "side": h.side,
                "components": self.components(h),
                "namespace": self.net.namespace(h.short),
                "namespace_exists": self.net.namespace(h.short) in present,
                "sshd_pid": self.sshd_pid(h),
                "service_pid": next(iter(pids.values())) if all(pids.values()) else None,
                "services": pids})
        return rows

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
