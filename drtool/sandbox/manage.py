"""`drtool sandbox up|down|status`: the embedded environment on this machine."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from drtool import paths
from drtool.adapters import postgres, redis_client
from drtool.adapters.execute import run
from drtool.errors import OrchestrationError
from drtool.sandbox import app as demo_app
from drtool.sandbox import layout as lay
from drtool.sandbox import physical, seed, uploads
from drtool.sandbox import worker as demo_worker
from drtool.sandbox.services import (
    PostgresCluster,
    RedisServer,
    S3Server,
    ensure_secrets,
    postgres_can_enter,
)
from drtool.store import crypto

# The sandbox's S3 buckets: backups, and evidence copies under Object Lock
# (inventories/sandbox-s3 names them too).
S3_BUCKETS = {"drtool-sandbox-backups": False, "drtool-sandbox-evidence": True}
SECRETS = ("postgres_password", "redis_password", "s3_access_key_id", "s3_secret_access_key")

# The sandbox processes a drill itself stops and starts (disaster, restore, rollback; a
# physical drill's snapshot stops pg_physical to copy it): one a killed drill left stopped
# is for the next operation's rollback to start, not a sandbox to set up again.
DRILL_STOPS = frozenset({"app", "redis_target", "worker", "queue_target", "pg_physical"})
# The Redis servers, by service name: their folders under the sandbox's. The queue's two serve
# the worker (inventories/sandbox-estate); the cache's, the app.
REDIS_FOLDERS = {"redis_primary": "redis-primary", "redis_target": "redis-target",
                 "queue_primary": "redis-queue-primary", "queue_target": "redis-queue-target"}
# Debian packages the sandbox needs, by the binary that shows each is installed.
PACKAGES = {"redis-server": "redis-server", str(lay.PG_BIN / "initdb"): "postgresql-15",
            "pgbackrest": "pgbackrest"}


@dataclass(frozen=True)
class Sandbox:
    layout: lay.Layout
    cleared: Path | None = None  # stale clusters `up` removed (see clear_orphaned_clusters)

    @property
    def clusters(self) -> dict[str, PostgresCluster]:
        return {
            name: PostgresCluster(name, self.layout.postgres_root / name, self.layout.port(name),
                                  lay.PG_BIN)
            for name in ("pg_primary", "pg_target", "pg_physical")
        }

    @property
    def redises(self) -> dict[str, RedisServer]:
        return {name: RedisServer(name, self.layout.root / folder, self.layout.port(name))
                for name, folder in REDIS_FOLDERS.items()}

    @property
    def s3(self) -> S3Server:
        return S3Server("s3", self.layout.root / "s3", self.layout.port("s3"))

    @property
    def app_config(self) -> Path:
        return self.layout.root / "app.json"

    def write_app_config(self) -> None:
        port = self.layout.port
        demo_app.AppConfig(
            listen=("127.0.0.1", port("app")),
            stores={"primary": {"pg": ("127.0.0.1", port("pg_primary")),
                                "redis": ("127.0.0.1", port("redis_primary"))},
                    "restore": {"pg": ("127.0.0.1", port("pg_target")),
                                "redis": ("127.0.0.1", port("redis_target"))}},
            secrets=self.layout.secrets, state=self.layout.root / "app",
        ).save(self.app_config)

    @property
    def worker_config(self) -> Path:
        return self.layout.root / "worker.json"

    def write_worker_config(self) -> None:
        port = self.layout.port
        demo_app.AppConfig(
            listen=("127.0.0.1", port("worker")),
            stores={"primary": {"redis": ("127.0.0.1", port("queue_primary"))},
                    "restore": {"redis": ("127.0.0.1", port("queue_target"))}},
            secrets=self.layout.secrets, state=self.layout.root / "worker", name="worker",
        ).save(self.worker_config)

    def processes(self) -> list[tuple[str, int, int | None]]:
        """(service, port, pid or None) for every sandbox process. The queue's Redis servers
        and the worker are left out of a sandbox set up before it had them, until `up`
        starts them."""
        rows = [(n, c.port, c.pid) for n, c in self.clusters.items()]
        rows += [(n, r.port, r.pid) for n, r in self.redises.items() if r.conf.exists()]
        rows.append(("app", self.layout.port("app"), demo_app.running_pid(self.app_config)))
        if self.worker_config.exists():
            rows.append(("worker", self.layout.port("worker"),
                         demo_app.running_pid(self.worker_config)))
        rows.append(("s3", self.s3.port, self.s3.pid))
        return rows


def sandbox_root() -> Path:
    return paths.drtool_home() / "sandbox"


def current() -> Sandbox | None:
    found = lay.load(sandbox_root())
    return Sandbox(found) if found else None


def ensure_packages(packages: dict[str, str] = PACKAGES) -> list[str]:
    """Install the Debian packages (by the binary that shows each is there) that are
    missing, as root; return what was installed."""
    missing = sorted({pkg for binary, pkg in packages.items()
                      if not (shutil.which(binary) or Path(binary).exists())})
    if not missing:
        return []
    if os.geteuid() != 0:
        raise OrchestrationError(f"drtool needs {', '.join(missing)}: install them, or run "
                                 "this as root to have drtool install them")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env, timeout=900)
    run(["apt-get", "install", "-y", "-qq", *missing], env=env, timeout=1800)
    return missing


def up() -> Sandbox:
    """Start (and on first use create and seed) the sandbox; idempotent."""
    ensure_packages()
    root = sandbox_root()
    root.mkdir(parents=True, exist_ok=True)
    previous = lay.load(root)
    layout = lay.Layout(root, lay.port_base(), previous.postgres_root if previous else
                        lay.postgres_root_for(root, postgres_can_enter(root)))
    cleared = None if previous else clear_orphaned_clusters(layout)
    ensure_secrets(layout.secrets, SECRETS)
    backup_key = layout.secrets / "backup.key"  # client-side encryption, for sandbox-s3
    if not backup_key.exists():
        backup_key.write_text(crypto.new_key(), encoding="utf-8")
        backup_key.chmod(0o600)
    layout.logs.mkdir(exist_ok=True)
    layout.postgres_root.mkdir(parents=True, exist_ok=True)
    layout.save()
    sandbox = Sandbox(layout, cleared)
    pg_password = layout.secret("postgres_password")
    redis_password = layout.secret("redis_password")
    primary = sandbox.clusters["pg_primary"]
    for cluster in sandbox.clusters.values():
        cluster.initialise(pg_password)
    physical.write_config(layout, primary)
    if physical.ensure_archiving(layout, primary):
        primary.stop()  # a sandbox set up before it archived: the settings need a restart
    for cluster in sandbox.clusters.values():
        cluster.start()
    for server in sandbox.redises.values():
        server.configure(redis_password)
        server.start()
    try:
        seed.seed_postgres("127.0.0.1", layout.port("pg_primary"), pg_password)
        seed.seed_redis("127.0.0.1", layout.port("redis_primary"), redis_password)
        seed.seed_queue("127.0.0.1", layout.port("queue_primary"), redis_password)
    except (postgres.Error, redis_client.Error) as exc:
        raise OrchestrationError(f"seeding the sandbox failed: {exc}") from exc
    physical.ensure_stanza(layout)  # inventories/sandbox-physical's repository
    uploads.ensure(layout.root)  # the directory trees of inventories/sandbox-files
    sandbox.s3.start()
    create_buckets(layout)
    sandbox.write_app_config()
    if demo_app.running_pid(sandbox.app_config) is None and demo_app.start(
            sandbox.app_config, "primary") != 0:
        raise OrchestrationError(
            f"the sandbox app did not start; see {demo_app.AppConfig.load(sandbox.app_config).log}")
    sandbox.write_worker_config()
    if demo_app.running_pid(sandbox.worker_config) is None and demo_worker.start(
            sandbox.worker_config, "primary") != 0:
        raise OrchestrationError("the sandbox worker did not start; see "
                                 f"{demo_app.AppConfig.load(sandbox.worker_config).log}")
    return sandbox


def clear_orphaned_clusters(layout: lay.Layout) -> Path | None:
    """A sandbox set up for the first time at its folder owns no clusters yet. Clusters
    already at its relocated PostgreSQL folder (/var/lib/drtool/<name>-<hash>, named after
    the sandbox's folder) were left by an earlier sandbox at the same path whose state was
    deleted without `sandbox down --purge`; their password went with that state, so they
    cannot be used. Stop them (by their PIDs) and remove them; return where they were."""
    relocated = layout.postgres_root.parent
    if relocated == layout.root or not relocated.exists():
        return None
    for cluster in Sandbox(layout).clusters.values():
        cluster.stop()
    shutil.rmtree(relocated)
    return relocated


def create_buckets(layout: lay.Layout) -> None:
    """The sandbox's buckets, on its S3 server (which forgets them when it stops)."""
    from drtool.store.s3 import client  # noqa: PLC0415 - boto3 only here
    from drtool.store.settings import S3Connection  # noqa: PLC0415

    s3 = client(S3Connection("drtool-sandbox-backups", "", "us-east-1",
                             f"http://127.0.0.1:{layout.port('s3')}", None,
                             layout.secret("s3_access_key_id"),
                             layout.secret("s3_secret_access_key")))
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket, locked in S3_BUCKETS.items():
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=locked)


def down(purge: bool = False) -> list[str]:
    """Stop every sandbox process by its PID; with `purge`, delete the sandbox's state.
    Returns the services that were running."""
    sandbox = current()
    if sandbox is None:
        return []
    stopped = []
    if demo_app.running_pid(sandbox.app_config) is not None:
        stopped.append("app")
    if sandbox.app_config.exists():
        demo_app.stop(sandbox.app_config)
    if demo_app.running_pid(sandbox.worker_config) is not None:
        stopped.append("worker")
    if sandbox.worker_config.exists():
        demo_app.stop(sandbox.worker_config)
    for name, server in sandbox.redises.items():
        if server.stop():
            stopped.append(name)
    if sandbox.s3.stop():
        stopped.append("s3")
    for name, cluster in sandbox.clusters.items():
        if cluster.stop():
            stopped.append(name)
    if purge:
        relocated = sandbox.layout.postgres_root.parent  # /var/lib/drtool/sandbox-<hash>
        if relocated != sandbox.layout.root:
            shutil.rmtree(relocated, ignore_errors=True)
        shutil.rmtree(sandbox.layout.root, ignore_errors=True)
    return stopped
