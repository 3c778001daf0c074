"""The lab's inventory, written where `--env lab` finds it: $DRTOOL_HOME/inventories/lab.

Each host's own settings (its address, where its main store listens and keeps its files, how
its main service is started) are its host variables: the roles read them when they run on the
host outside a component, as the Molecule scenarios run them. group_vars/all.yml declares the
components drtool reads, each pairing its hosts; a component takes from its hosts' variables
what it does not set itself (the drtool.drill.resolve filter): the second Redis instance and
the second service set their own port, files and commands. The inventory groups are the
hosts' parts (pg_primary, ...): drtool does not read them, the Molecule scenarios target them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from drtool import paths
from drtool.lab.layout import (
    CLUSTER,
    DATABASES,
    SERVICES,
    SOURCE,
    TARGET,
    TREE,
    TREE_EXCLUDE,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from drtool.lab.layout import Lab, LabHost

HEADER = "# Written by `drtool lab up`: the lab's hosts, reached over SSH. Do not edit.\n"


def host_vars(lab: Lab, host: LabHost, python: str) -> dict[str, Any]:
    """What `host` itself is: its address, and its main store's or service's settings."""
    address = lab.address(host)
    out: dict[str, Any] = {"ansible_host": address}
    if host.side == TARGET:
        out["drtool_drill_target"] = True
    # Each data store's directory or file, so that `drtool validate` refuses a backup or
    # snapshot path that is, or holds, one of them.
    if host.kind == "postgres":
        out.update(drtool_postgres_host=address,
                   drtool_postgres_data_dir=str(lab.cluster(host).data))
    elif host.kind == "redis":
        server = lab.redis(host)
        out.update(drtool_redis_host=address, drtool_redis_rdb_path=str(server.rdb))
        if host.side == TARGET:
            out.update(drtool_redis_service_manager="command",
                       drtool_redis_start_command=["redis-server", str(server.conf)])
    elif host.kind == "service":
        out.update({f"drtool_service_{key}": value
                    for key, value in service(lab, "app", python).items()})
    return out


def service(lab: Lab, name: str, python: str) -> dict[str, Any]:
    """How one of the app host's services is stopped, started and checked: the demo app
    (drtool.sandbox.app) or the worker (drtool.sandbox.worker), each with its configuration."""
    module = [python, "-m", f"drtool.sandbox.{name}"]
    config = ["--config", str(lab.service_config(name))]
    return {
        "manager": "command",
        "stop_command": [*module, "stop", *config],
        "start_command": [*module, "start", "--stores", "restore", *config],
        "resume_command": [*module, "start", "--stores", "primary", *config],
        "health_url": f"http://{lab.address(lab.host('service'))}:{SERVICES[name]}/health",
    }


def components(lab: Lab, python: str) -> dict[str, list[dict[str, Any]]]:
    """The lab's component lists: each component names its hosts, one per side, and what
    it does not take from their host variables (the queue's port and files, say)."""
    def sides(kind: str, **settings: dict[str, Any]) -> dict[str, Any]:
        return {side: {"host": lab.host(kind, side).name, **settings.get(side, {})}
                for side in (SOURCE, TARGET)}

    def queue(side: str) -> dict[str, Any]:
        server = lab.redis(lab.host("redis", side), "queue")
        out: dict[str, Any] = {"port": server.port, "rdb_path": str(server.rdb)}
        if side == TARGET:
            out["start_command"] = ["redis-server", str(server.conf)]
        return out

    return {
        "drtool_postgres_clusters": [
            {"name": CLUSTER, "databases": list(DATABASES), **sides("postgres")}],
        "drtool_redis_instances": [
            {"name": "cache", **sides("redis")},
            # The worker's heartbeat, written about once a second: the queue's data loss.
            {"name": "queue", "heartbeat_key": "worker:heartbeat",
             **sides("redis", source=queue(SOURCE), target=queue(TARGET))},
        ],
        "drtool_file_trees": [
            {"name": TREE, "exclude": list(TREE_EXCLUDE),
             **{side: {"host": lab.tree_host(side).name, "path": str(lab.tree(side))}
                for side in (SOURCE, TARGET)}}],
        "drtool_services": [
            # Declared first, started second: only its `after` makes the restart start it
            # once the app answers its health check (a later wave).
            {"name": "worker", "host": lab.host("service").name, "after": ["queue", "app"],
             **service(lab, "worker", python), "health_field": "backlog", "health_value": "0"},
            # Its commands are the app host's own variables (see host_vars).
            {"name": "app", "host": lab.host("service").name, "after": [CLUSTER, "cache"],
             "health_field": "status", "health_value": "ok"},
        ],
    }


def checks(lab: Lab) -> list[dict[str, Any]]:
    """The team's checks of the lab (one of each kind), each run over SSH on its host."""
    app = lab.address(lab.host("service"))
    return [
        {"name": "orders-exist", "kind": "sql", "component": CLUSTER, "database": "appdb",
         "query": "SELECT count(*) FROM orders", "expect": {"at_least": 1}},
        {"name": "job-queue", "kind": "redis", "component": "queue", "key": "queue:jobs",
         "type": "stream"},
        {"name": "app-reports-the-restored-orders", "kind": "http", "service": "app",
         "url": f"http://{app}:{SERVICES['app']}/health", "json_path": "orders",
         "expect": {"equals_check": "orders-exist"}},
        {"name": "uploads-readme", "kind": "command", "host": lab.tree_host(TARGET).name,
         "argv": ["cat", f"{lab.tree(TARGET)}/docs/readme.txt"],
         "expect": {"matches": "^Uploads of"}},
    ]


def write_inventory(lab: Lab, hosts: Iterable[LabHost], python: str) -> None:
    folder = paths.drtool_home() / "inventories" / "lab"
    (folder / "group_vars").mkdir(parents=True, exist_ok=True)
    hosts = list(hosts)
    children: dict[str, Any] = {}
    for host in hosts:
        children.setdefault(host.group, {"hosts": {}})["hosts"][host.name] = host_vars(
            lab, host, python)
    write(folder / "hosts.yml", {"all": {"children": children}})
    write(folder / "group_vars" / "all.yml", {
        "drtool_tier": "lab",
        "drtool_rto_objective_s": 300,
        "drtool_rpo_objective_s": 120,
        "drtool_drill_cadence_days": 7,
        "drtool_verify_growing_tables": ["public.app_heartbeat"],
        "ansible_connection": "ssh",
        "ansible_user": "root",
        # As many estates connect: privilege escalation on every host (sudo), which
        # drtool's preflight checks host by host.
        "ansible_become": True,
        "ansible_python_interpreter": python,
        "ansible_ssh_private_key_file": str(lab.ssh_dir / "id_ed25519"),
        "ansible_ssh_common_args": (f"-o UserKnownHostsFile={lab.ssh_dir / 'known_hosts'} "
                                    "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"),
        # Each host stages backups in its own folder; the backup travels host -> store
        # (on this machine) -> restore target, by Ansible's fetch and copy over SSH.
        "drtool_host_work_dir": f"{lab.root}/hosts/{{{{ inventory_hostname }}}}/work",
        "drtool_backup_path": "{{ drtool_host_work_dir }}/backups/{{ drtool_backup_id }}",
        "drtool_snapshot_path": "{{ drtool_host_work_dir }}/snapshots/{{ drtool_drill_id }}",
        # The lab's hosts share this machine's file system: each keeps its leases apart.
        "drtool_lease_dir": "{{ drtool_host_work_dir }}/locks",
        "drtool_postgres_port": 5432,
        "drtool_postgres_user": "postgres",
        "drtool_postgres_password":
            f"{{{{ lookup('ansible.builtin.file', '{lab.secrets / 'postgres_password'}') }}}}",
        # The database a role run outside a component (as Molecule runs them) backs up.
        "drtool_postgres_database": "appdb",
        "drtool_postgres_bin_dir": "/usr/lib/postgresql/15/bin",
        "drtool_postgres_heartbeat_query": "SELECT max(beat_at) FROM public.app_heartbeat",
        "drtool_redis_port": 6379,
        "drtool_redis_password":
            f"{{{{ lookup('ansible.builtin.file', '{lab.secrets / 'redis_password'}') }}}}",
        "drtool_redis_heartbeat_key": "app:heartbeat",
        # What the lab holds, as drtool reads it, and the team's checks of it.
        **components(lab, python),
        "drtool_checks": checks(lab),
    })


def write(path: Any, data: dict[str, Any]) -> None:
    path.write_text(HEADER + "---\n" + yaml.safe_dump(data, sort_keys=False, width=100))
