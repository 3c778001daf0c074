"""`drtool lab up|down|status`: a lab of real SSH hosts in network namespaces.

Five hosts, each its own namespace, address and sshd (own host key, key authentication
only), holding the sides of a small estate: a PostgreSQL cluster with two databases (primary
and restore target), two Redis instances (cache and queue: a server each on the Redis
primary and on the Redis target), a file tree (on the PostgreSQL primary, restored onto the
app host) and two services on the app host (the demo app, and the worker, which follows
it). Sources and targets are separate hosts on purpose: a host a component is read from
may never be a destructive target, so one shared host would be refused by drtool's
production guard. The lab writes $DRTOOL_HOME/inventories/lab, which `--env lab` finds.
Namespaces isolate the network only: files, users and PIDs are shared, so each host keeps
its state in its own folder.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sys
import time
from pathlib import Path

from drtool import paths
from drtool.adapters import postgres, redis_client
from drtool.adapters.ansible import close_ssh_masters
from drtool.adapters.execute import run
from drtool.errors import OrchestrationError
from drtool.lab import network
from drtool.lab.inventory import write_inventory
from drtool.lab.layout import (
    HOSTS,
    REDIS,
    SERVICES,
    SOURCE,
    TARGET,
    Lab,
    LabHost,
    current,
    lab_root,
)
from drtool.sandbox import app as demo_app
from drtool.sandbox import layout as sandbox_layout
from drtool.sandbox import seed
from drtool.sandbox.manage import PACKAGES as SANDBOX_PACKAGES
from drtool.sandbox.manage import ensure_packages
from drtool.sandbox.services import ensure_secrets, in_netns, postgres_can_enter
from drtool.util.process import stop_pid

SSHD = "/usr/sbin/sshd"
# sudo: an inventory may reach lab hosts with ansible_become, as real ones often do.
PACKAGES = {**SANDBOX_PACKAGES, SSHD: "openssh-server", "ssh-keygen": "openssh-client",
            "sudo": "sudo"}
TREE_EPOCH = 1_700_000_000  # the tree's mtimes: a fixed past, so a restore that loses them shows


def configured_network() -> network.LabNetwork:
    return network.LabNetwork(os.environ.get("DRTOOL_LAB_PREFIX", "drlab"),
                              os.environ.get("DRTOOL_LAB_SUBNET", "10.231.7"))


# -- up ----------------------------------------------------------------------------------------

def up() -> Lab:
    """Create (or complete) the lab and start every host and service. Idempotent."""
    if os.geteuid() != 0:
        raise OrchestrationError("the lab creates network namespaces: run `drtool lab up` as root")
    ensure_packages(PACKAGES)
    root = lab_root()
    previous = current()
    net = previous.net if previous else configured_network()
    root.mkdir(parents=True, exist_ok=True)
    pg_root = previous.postgres_root if previous else sandbox_layout.postgres_root_for(
        root, postgres_can_enter(root))
    lab = Lab(root, net, pg_root)
    lab.save()
    ensure_secrets(lab.secrets)
    _ssh_keys(lab)
    network.create_bridge(net)
    for host in HOSTS:
        network.add_host(net, host.short, host.octet)
        _start_sshd(lab, host)
    _start_services(lab)
    write_inventory(lab, HOSTS, sys.executable)
    for host in HOSTS:
        _wait_port(lab.address(host), 22, f"sshd on {host.name}")
    return lab


def _ssh_keys(lab: Lab) -> None:
    lab.ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = lab.ssh_dir / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "drtool-lab", "-f", str(key)])
    (lab.ssh_dir / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
    known = []
    for host in HOSTS:
        folder = lab.host_dir(host) / "sshd"
        folder.mkdir(parents=True, exist_ok=True)
        hostkey = folder / "ssh_host_ed25519_key"
        if not hostkey.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)])
        known.append(f"{lab.address(host)} {hostkey.with_suffix('.pub').read_text().strip()}")
    (lab.ssh_dir / "known_hosts").write_text("\n".join(known) + "\n")


def _start_sshd(lab: Lab, host: LabHost) -> None:
    if lab.sshd_pid(host):
        return
    folder = lab.host_dir(host) / "sshd"
    config = folder / "sshd_config"
    config.write_text("\n".join([
        "# drtool lab host " + host.name,
        "Port 22", f"ListenAddress {lab.address(host)}",
        f"HostKey {folder / 'ssh_host_ed25519_key'}", f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {lab.ssh_dir / 'authorized_keys'}",
        "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        # The key files live under DRTOOL_HOME, which may be group- or world-readable.
        "StrictModes no", "UsePAM no", "MaxSessions 64", "MaxStartups 64:30:128",
        "Subsystem sftp internal-sftp", "LogLevel ERROR", "",
    ]))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    run([SSHD, "-t", "-f", str(config)])
    run(in_netns([SSHD, "-f", str(config)], lab.net.namespace(host.short)))
    deadline = time.monotonic() + 10
    while not lab.sshd_pid(host):
        if time.monotonic() > deadline:
            raise OrchestrationError(f"sshd on {host.name} did not start")
        time.sleep(0.05)


def _start_services(lab: Lab) -> None:
    pg_password = (lab.secrets / "postgres_password").read_text().strip()
    redis_password = (lab.secrets / "redis_password").read_text().strip()
    for side in (SOURCE, TARGET):
        cluster = lab.cluster(lab.host("postgres", side))
        cluster.root.mkdir(parents=True, exist_ok=True)
        cluster.initialise(pg_password, allow=f"{lab.net.subnet}.0/24")
        cluster.start()
    for side in (SOURCE, TARGET):
        for instance in REDIS:
            server = lab.redis(lab.host("redis", side), instance)
            server.configure(redis_password)
            server.start()
    source_redis = lab.address(lab.host("redis", SOURCE))
    try:
        seed.seed_postgres(lab.address(lab.host("postgres", SOURCE)), 5432, pg_password)
        seed.seed_redis(source_redis, REDIS["cache"][0], redis_password)
        seed.seed_queue(source_redis, REDIS["queue"][0], redis_password)
    except (postgres.Error, redis_client.Error) as exc:
        raise OrchestrationError(f"seeding the lab failed: {exc}") from exc
    _create_tree(lab)
    app = lab.host("service")

    def stores(side: str, name: str) -> dict[str, tuple[str, int]]:
        """A service's stores on one side: the app's cluster and cache, the worker's queue."""
        redis = lab.address(lab.host("redis", side))
        if name == "worker":
            return {"redis": (redis, REDIS["queue"][0])}
        return {"pg": (lab.address(lab.host("postgres", side)), 5432),
                "redis": (redis, REDIS["cache"][0])}

    for name, port in SERVICES.items():
        config = lab.service_config(name)
        demo_app.AppConfig(
            listen=(lab.address(app), port),
            stores={"primary": stores(SOURCE, name), "restore": stores(TARGET, name)},
            secrets=lab.secrets, state=lab.host_dir(app) / name, name=name,
        ).save(config)
        if demo_app.running_pid(config) is None:
            run(in_netns([sys.executable, "-m", f"drtool.sandbox.{name}", "start", "--stores",
                          "primary", "--config", str(config)], lab.net.namespace(app.short)),
                timeout=60)


def _create_tree(lab: Lab) -> None:
    """The file tree's source, unless it is there: a few dozen entries with what a restore
    must bring back exactly (nested folders, modes, fixed mtimes, a hard link, links inside
    the tree, a name with a space and non-ASCII characters) and entries the inventory
    excludes (*.tmp, cache/). Built aside and renamed into place, so an interrupted run
    leaves no half tree. The target starts as a folder of its own, which a drill replaces."""
    tree = lab.tree(SOURCE)
    if tree.exists():
        return
    building = tree.with_name(tree.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    rng = random.Random(20260101)  # noqa: S311 - file contents, not secrets
    for index in range(24):
        folder = building / "images" / "2026" / f"{1 + index % 3:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img-{index:02d}.jpg"
        path.write_bytes(rng.randbytes(rng.randint(64, 8192)))
        os.utime(path, (TREE_EPOCH + index, TREE_EPOCH + index))
    docs = building / "docs"
    docs.mkdir()
    (docs / "readme.txt").write_text("Uploads of the lab's shop.\n", encoding="utf-8")
    (docs / "annual report.txt").write_text("a name with a space\n", encoding="utf-8")
    (docs / "Résumé – équipe.txt").write_text("non-ASCII characters\n", encoding="utf-8")
    os.link(docs / "readme.txt", docs / "readme-hardlink.txt")
    private = building / "private"
    private.mkdir(mode=0o700)
    (private / "keys.txt").write_text("not for everyone\n", encoding="utf-8")
    (private / "keys.txt").chmod(0o600)
    (building / "latest.jpg").symlink_to("images/2026/03/img-23.jpg")
    (building / "pictures").symlink_to("images")
    (building / "draft.tmp").write_text("left out of the backup\n", encoding="utf-8")
    (building / "cache").mkdir()
    (building / "cache" / "thumb.bin").write_bytes(rng.randbytes(256))
    tree.parent.mkdir(parents=True, exist_ok=True)
    building.rename(tree)
    target = lab.tree(TARGET)
    target.mkdir(parents=True, exist_ok=True)
    (target / "placeholder.txt").write_text("the restore target before any drill\n",
                                            encoding="utf-8")


def _wait_port(address: str, port: int, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise OrchestrationError(f"{what} ({address}:{port}) does not answer") from exc
            time.sleep(0.1)


# -- down --------------------------------------------------------------------------------------

def down(purge: bool = False) -> list[str]:
    """Stop every lab process by PID, delete its namespaces and links; with `purge`, its
    files and inventory too. Returns what was stopped."""
    lab = current()
    if lab is None:
        return []
    stopped: list[str] = []
    # ssh masters first, while the hosts can still answer: their sessions end cleanly.
    # drtool's own live under the short control root; the Molecule scenarios' under
    # DRTOOL_HOME/run/cp/molecule (.config/molecule/config.yml).
    if (close_ssh_masters(paths.ssh_control_root())
            + close_ssh_masters(paths.runs_dir() / "cp")):
        stopped.append("ssh masters")
    for name in SERVICES:
        config = lab.service_config(name)
        if config.exists() and demo_app.running_pid(config):
            demo_app.stop(config)
            stopped.append(f"{lab.host('service').name}: {name}")
    for host in HOSTS:
        for instance in REDIS if host.kind == "redis" else ():
            if lab.redis(host, instance).stop():
                stopped.append(f"{host.name}: redis {instance}")
        if host.kind == "postgres" and lab.cluster(host).stop():
            stopped.append(f"{host.name}: postgres")
    present = network.namespaces()
    for host in HOSTS:
        if stop_pid(lab.sshd_pid(host)):
            stopped.append(f"{host.name}: sshd")
        namespace = lab.net.namespace(host.short)
        # Whatever still runs inside (ssh sessions whose listener is gone, anything a drill
        # started there) would outlive its namespace with no way to be reached.
        leftovers = network.pids_inside(namespace) if namespace in present else []
        for pid in leftovers:
            stop_pid(pid, timeout=10)
        if leftovers:
            stopped.append(f"{host.name}: {len(leftovers)} more processes")
        network.remove_host(lab.net, host.short)
    network.remove_bridge(lab.net)
    if purge:
        if lab.postgres_root.parent != lab.root:
            shutil.rmtree(lab.postgres_root.parent, ignore_errors=True)
        shutil.rmtree(lab.root, ignore_errors=True)
        shutil.rmtree(paths.drtool_home() / "inventories" / "lab", ignore_errors=True)
    return stopped
