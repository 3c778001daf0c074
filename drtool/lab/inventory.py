"""The lab's inventory, written where `--env lab` finds it: $DRTOOL_HOME/inventories/lab."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from drtool import paths

if TYPE_CHECKING:
    from collections.abc import Iterable

    from drtool.lab.layout import Lab, LabHost

HEADER = "# Written by `drtool lab up`: the lab's hosts, reached over SSH. Do not edit.\n"


def write_inventory(lab: Lab, hosts: Iterable[LabHost], python: str, app_port: int) -> None:
    folder = paths.drtool_home() / "inventories" / "lab"
    (folder / "group_vars").mkdir(parents=True, exist_ok=True)
    children: dict[str, Any] = {}
    for host in hosts:
        address = lab.address(host)
        hostvars: dict[str, Any] = {"ansible_host": address}
        # Each data store's directory, so that `drtool validate` refuses a backup or
        # snapshot path that is, or holds, one of them.
        if host.group.startswith("pg_"):
            hostvars["drtool_postgres_host"] = address
            hostvars["drtool_postgres_data_dir"] = str(lab.cluster(host).data)
        if host.group.startswith("redis_"):
            hostvars["drtool_redis_host"] = address
            hostvars["drtool_redis_rdb_path"] = str(lab.redis(host).rdb)
        if host.group in ("pg_restore_target", "redis_restore_target", "app"):
            hostvars["drtool_drill_target"] = True
        if host.group == "redis_restore_target":
            server = lab.redis(host)
            hostvars.update(drtool_redis_rdb_path=str(server.rdb),
                            drtool_redis_service_manager="command",
                            drtool_redis_start_command=["redis-server", str(server.conf)])
        if host.group == "app":
            app = [python, "-m", "drtool.sandbox.app"]
            config = ["--config", str(lab.app_config)]
            hostvars.update(
                drtool_app_manager="command",
                drtool_app_stop_command=[*app, "stop", *config],
                drtool_app_start_command=[*app, "start", "--stores", "restore", *config],
                drtool_app_resume_command=[*app, "start", "--stores", "primary", *config],
                drtool_app_health_url=f"http://{address}:{app_port}/health")
        children[host.group] = {"hosts": {host.name: hostvars}}
    write(folder / "hosts.yml", {"all": {"children": children}})
    write(folder / "group_vars" / "all.yml", {
        "drtool_tier": "lab",
        "drtool_rto_objective_s": 300,
        "drtool_rpo_objective_s": 120,
        "drtool_drill_cadence_days": 7,
        "drtool_verify_growing_tables": ["public.app_heartbeat"],
        "ansible_connection": "ssh",
        "ansible_user": "root",
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
        "drtool_postgres_database": "appdb",
        "drtool_postgres_bin_dir": "/usr/lib/postgresql/15/bin",
        "drtool_postgres_heartbeat_query": "SELECT max(beat_at) FROM public.app_heartbeat",
        "drtool_redis_port": 6379,
        "drtool_redis_password":
            f"{{{{ lookup('ansible.builtin.file', '{lab.secrets / 'redis_password'}') }}}}",
        "drtool_redis_heartbeat_key": "app:heartbeat",
    })


def write(path: Any, data: dict[str, Any]) -> None:
    path.write_text(HEADER + "---\n" + yaml.safe_dump(data, sort_keys=False, width=100))
