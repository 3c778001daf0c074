"""The production guard with real Ansible, PostgreSQL and Redis: tiers are an allow-list in
the drtool_guard role too, describe.yml publishes the address Ansible really connects to, and
a restore target that *is* a source behind another port is refused at preflight (exit 2),
before anything is destroyed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drtool.paths import content_root
from tests.conftest import BIN, Drtool, copy_inventory_with_components, pg, rd

pytestmark = pytest.mark.integration


# -- the Ansible side: drtool_guard and describe.yml, no sandbox needed ----------------------

GUARD_PLAY = """
- name: Apply the guard to every host and say what it said
  hosts: all
  gather_facts: false
  tasks:
    - name: Guard
      block:
        - name: Apply the guard
          ansible.builtin.import_role:
            name: drtool_guard
        - name: Allowed
          ansible.builtin.set_fact:
            said: allowed
      rescue:
        - name: Refused
          ansible.builtin.set_fact:
            said: "{{ ansible_failed_result.msg }}"

- name: Write down what the guard said to each host
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write
      ansible.builtin.copy:
        content: "{{ dict(groups.all | zip(groups.all | map('extract', hostvars, 'said'))) }}"
        dest: "{{ out }}"
        mode: "0600"
"""
# host: its variables (beyond being a local drill target), and whether the guard allows it.
TIER_CASES: dict[str, tuple[dict[str, Any], bool]] = {
    **{f"t-{t}": ({"drtool_tier": t}, True)
       for t in ("sandbox", "lab", "dev", "test", "staging", "drill")},
    **{f"t-{i}": ({"drtool_tier": t}, False) for i, t in enumerate(
        ("production", "Production", "prod", "PROD", "Staging", "", None, "qa", "staging "))},
    "t-undefined": ({}, False),
    "t-declared": ({"drtool_tier": "qa", "drtool_nonproduction_tiers": ["qa"]}, True),
    "t-declared-prod": ({"drtool_tier": "prod-copy",
                         "drtool_nonproduction_tiers": ["prod-copy"]}, False),
    "t-not-a-target": ({"drtool_tier": "staging", "drtool_drill_target": False}, False),
    # Only true marks a drill target, as drtool's own check reads it.
    **{f"t-marked-{i}": ({"drtool_tier": "staging", "drtool_drill_target": mark}, False)
       for i, mark in enumerate(("yes", "true", 1))},
}


def guard_says(tmp_path: Path, inventory_data: dict[str, Any], play: str,
               forks: int) -> tuple[dict[str, str], str]:
    """Run `play` (GUARD_PLAY or a variant) on an inventory of `inventory_data` (mode
    0600: it may hold the sandbox's passwords); what the guard said to each host, and what
    ansible-playbook printed."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump(inventory_data))
    inventory.chmod(0o600)
    playbook = tmp_path / "guard.yml"
    playbook.write_text(play)
    out = tmp_path / "said.json"
    env = dict(os.environ, ANSIBLE_CONFIG=str(content_root() / "ansible.cfg"),
               ANSIBLE_ANY_ERRORS_FATAL="false", ANSIBLE_FORKS=str(forks),
               PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook),
                           "-e", f"out={out}"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    return json.loads(out.read_text()), done.stdout


def test_the_guard_role_allows_only_the_exact_non_production_tiers(tmp_path: Path):
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                    "drtool_drill_target": True, **variables}
             for name, (variables, _allowed) in TIER_CASES.items()}
    said, _output = guard_says(tmp_path, {"all": {"hosts": hosts}}, GUARD_PLAY, len(TIER_CASES))
    assert sorted(said) == sorted(TIER_CASES)
    assert {n for n, s in said.items() if s == "allowed"} == {
        n for n, (_v, allowed) in TIER_CASES.items() if allowed}
    assert "tier=\"Production\"" in said["t-1"] and "tier=null" in said["t-6"]
    assert "exactly one of sandbox, lab, dev, test, staging, drill," in said["t-1"]
    assert "is not a drill target" in said["t-not-a-target"]


RECOVERY_PLAY = GUARD_PLAY.replace(
    "ansible.builtin.import_role:\n            name: drtool_guard",
    "ansible.builtin.include_role:\n            name: drtool_guard\n"
    "            tasks_from: recovery")


def test_the_guard_role_lets_a_recovery_onto_confirmed_declared_recovery_targets_only(
        tmp_path: Path):
    # Each host is a production-tier host (the drill rules would refuse every one); the
    # recovery rule asks for the environment's name confirmed and a declared recovery side.
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                    "drtool_tier": "production", **variables}
             for name, variables in {
                 "r-ok": {"drtool_recover_confirmed": "prod"},
                 "r-unconfirmed": {},
                 "r-wrong-name": {"drtool_recover_confirmed": "staging"},
                 "r-not-declared": {"drtool_recover_confirmed": "prod"}}.items()}
    clusters = [{"name": f"db-{host}", "source": {"host": "src"}, "target": {"host": "t"},
                 "recovery": {"host": host}}
                for host in ("r-ok", "r-unconfirmed", "r-wrong-name")]
    said, _output = guard_says(tmp_path, {"all": {"hosts": hosts, "vars": {
        "drtool_env": "prod", "drtool_postgres_clusters": clusters}}}, RECOVERY_PLAY, 4)
    assert said["r-ok"] == "allowed"
    assert 'confirmed: "(nothing)"' in said["r-unconfirmed"]
    assert 'confirmed: "staging", environment: "prod"' in said["r-wrong-name"]
    assert "(here: none)" in said["r-not-declared"]


def test_describe_publishes_the_address_ssh_really_uses_and_the_tier_as_it_is(
        drtool: Drtool, tmp_path: Path):
    from drtool.adapters.ansible import AnsibleAdapter

    folder = tmp_path / "inventory"
    shutil_copy(content_root() / "inventories" / "staging", folder)
    hosts = yaml.safe_load((folder / "hosts.yml").read_text())
    targets = hosts["all"]["children"]["drill_targets"]["hosts"]
    targets["pg-drill-1.example.internal"].update(
        ansible_host="10.20.9.11", ansible_ssh_host="10.20.0.11")
    targets["redis-drill-1.example.internal"].update(ansible_host="10.20.9.21", drtool_tier=None)
    # Without ansible_host, Ansible connects to the inventory name itself.
    targets["app-drill-1.example.internal"] = {"drtool_tier": ""}
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    described = AnsibleAdapter(content_root(), folder, drtool.home / "runs").describe()
    assert described["pg-drill-1.example.internal"]["address"] == "10.20.0.11"
    assert described["redis-drill-1.example.internal"]["address"] == "10.20.9.21"
    assert described["app-drill-1.example.internal"]["address"] == "app-drill-1.example.internal"
    assert described["redis-drill-1.example.internal"]["tier"] is None
    assert described["app-drill-1.example.internal"]["tier"] == ""
    assert described["pg-staging-1.example.internal"]["nonproduction_tiers"] == []


def test_validate_refuses_a_target_behind_the_primarys_ansible_ssh_host(drtool: Drtool):
    # staging's pg target, reached through ansible_ssh_host = the primary's address: the
    # primary under another name. ansible_host says otherwise; Ansible would not listen to it.
    folder = drtool.home / "inventories" / "staging-ssh-host"
    shutil_copy(content_root() / "inventories" / "staging", folder)
    hosts = yaml.safe_load((folder / "hosts.yml").read_text())
    target = hosts["all"]["children"]["drill_targets"]["hosts"]["pg-drill-1.example.internal"]
    target.update(ansible_host="10.20.9.11", ansible_ssh_host="10.20.0.11")
    primary = hosts["all"]["children"]["staging"]["hosts"]["pg-staging-1.example.internal"]
    assert primary["ansible_host"] == "10.20.0.11"  # main's source, as the components say
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    done = drtool("validate", "--env", "staging-ssh-host")
    assert done.returncode == 2, done.stdout
    assert ("drills refused: hosts.yml: pg-drill-1.example.internal: refused as a destructive "
            "target: it is the same machine as backup source pg-staging-1.example.internal "
            "(10.20.0.11)") in done.stdout


# (sandbox-s3 reads the sandbox's S3 keys to resolve: its own tests run it on one.)
@pytest.mark.parametrize("env", ["sandbox", "staging", "production", "sandbox-postgres",
                                 "sandbox-redis", "sandbox-files", "sandbox-physical"])
def test_the_shipped_inventories_still_validate(drtool: Drtool, env: str):
    done = drtool("validate", "--env", env)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = ("can be backed up; drills are refused" if env == "production"
                else "can be drilled")
    assert expected in done.stdout


# -- identity at preflight, against the sandbox ----------------------------------------------

class Forwarder:
    """A TCP port on loopback that forwards every connection to another port, as a pooler,
    a NAT rule or an ssh tunnel does: the guard cannot see through it by address or port."""

    def __init__(self, to_port: int) -> None:
        self.to_port = to_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.server.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.to_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def forwarder() -> Iterator[Any]:
    opened: list[Forwarder] = []

    def open_to(port: int) -> Forwarder:
        opened.append(Forwarder(port))
        return opened[-1]

    yield open_to
    for one in opened:
        one.close()


def primary_state(drtool: Drtool) -> dict[str, object]:
    """What the primaries hold and are, exactly enough to see them dropped, flushed or
    restarted (the app's heartbeats keep growing and are left out)."""
    with pg(drtool, "pg_primary", "postgres") as admin:
        oid = admin.execute("SELECT oid FROM pg_database WHERE datname = 'appdb'").fetchone()
        system = admin.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    with pg(drtool, "pg_primary") as conn:
        rows = conn.execute("SELECT (SELECT count(*) FROM customers), "
                            "(SELECT count(*) FROM order_items)").fetchone()
    client = rd(drtool, "redis_primary")
    return {"appdb_oid": oid, "system_identifier": system, "rows": rows,
            "redis_run_id": client.info("server")["run_id"], "redis_keys": client.dbsize()}


@pytest.mark.parametrize(("store", "component", "target", "source", "identity"), [
    ("pg", "drtool_postgres_clusters[0]", "sandbox-pg-target", "sandbox-pg-primary",
     "PostgreSQL system_identifier"),
    ("redis", "drtool_redis_instances[0]", "sandbox-redis-target", "sandbox-redis-primary",
     "Redis run_id"),
])
def test_a_target_that_is_the_primary_behind_another_port_is_refused_at_preflight(
        sandbox: Drtool, forwarder, store, component, target, source, identity):
    via = forwarder(sandbox.port(f"{store}_primary"))
    env = copy_inventory_with_components(sandbox, f"sandbox-forwarded-{store}",
                                         {f"{component}.target.port": via.port})
    name = "main" if store == "pg" else "cache"
    # The first, cheap line sees two ports and lets it through: only identity can tell.
    valid = sandbox("validate", "--env", env)
    assert valid.returncode == 0, valid.stdout
    before = primary_state(sandbox)

    code, journal = sandbox.json("drill", "--env", env)

    assert code == 2, journal["failure"]
    assert journal["status"] == "failed"
    failure = journal["failure"]
    assert failure["phase"] == "preflight" and failure["kind"] == "guard"
    assert failure["hosts"] == [target]
    assert f"{target} is backup source {source} ({name}): same {identity}" in failure["reason"]
    assert [p["status"] for p in journal["phases"]] == ["failed"] + ["skipped"] * 7
    assert journal["rollback"] is None
    refused = [c for c in journal["checks"] if c["name"] == "guard.identity"
               and c["status"] == "failed"]
    assert [c["target"] for c in refused] == [f"{target}/{name}"]
    scoped = next(c for c in journal["scope"]["components"] if c["name"] == name)
    assert (scoped["source"], scoped["target"]) == (source, target)
    key = "system_identifier" if store == "pg" else "run_id"
    assert scoped["identity"]["target"][key] == scoped["identity"]["source"][key]
    assert primary_state(sandbox) == before


def test_the_sandbox_drill_passes_the_identity_check_and_records_who_was_who(passed_drill):
    # Every PostgreSQL and Redis component of the sandbox, as its inventory declares them.
    declared = yaml.safe_load((content_root() / "inventories" / "sandbox" / "group_vars" /
                               "all.yml").read_text())
    stores = {c["name"]: ("system_identifier" if key == "drtool_postgres_clusters" else "run_id",
                          c["source"]["host"], c["target"]["host"])
              for key in ("drtool_postgres_clusters", "drtool_redis_instances")
              for c in declared[key]}
    assert {"main", "cache"} <= set(stores)
    checks = {c["target"]: c for c in passed_drill["checks"] if c["name"] == "guard.identity"}
    assert sorted(checks) == sorted(f"{target}/{name}" for name, (_k, _s, target)
                                    in stores.items())
    assert {c["status"] for c in checks.values()} == {"passed"}
    hosts = {h["name"]: h for h in passed_drill["scope"]["hosts"]}
    assert {h["connection_address"] for h in hosts.values()} == {"this machine"}
    scoped = {c["name"]: c for c in passed_drill["scope"]["components"]}
    for name, (key, source, target) in stores.items():
        assert (scoped[name]["source"], scoped[name]["target"]) == (source, target)
        found = scoped[name]["identity"]
        assert found["source"][key] and found["target"][key], (name, found)
        assert found["source"][key] != found["target"][key], (name, found)
        if key == "run_id":  # and each Redis loads its own RDB file
            assert found["source"]["dir"] != found["target"]["dir"], (name, found)
    assert scoped["main"]["identity"]["source"]["system_identifier"].isdigit()
    # One machine (connection local): one machine-id, as a sha256, never the id itself.
    machine = Path("/etc/machine-id").read_text().strip()
    sides = [side for name in stores for side in scoped[name]["identity"].values()]
    assert len(sides) == 2 * len(stores)
    fingerprints = {side.get("machine_id_sha256") for side in sides}
    assert len(fingerprints) == 1 and len(fingerprints.pop()) == 64
    assert machine not in json.dumps(passed_drill)


def test_the_primary_written_another_way_is_refused_before_any_phase(sandbox: Drtool):
    # ::ffff:127.0.0.1 is 127.0.0.1: the target's PostgreSQL is the primary's.
    env = copy_inventory_with_components(sandbox, "sandbox-mapped-address", {
        "drtool_postgres_clusters[0].target.address": "::ffff:127.0.0.1",
        "drtool_postgres_clusters[0].target.port": sandbox.port("pg_primary")})
    before = primary_state(sandbox)
    done = sandbox("drill", "--env", env)
    assert done.returncode == 2, done.stderr
    assert ("sandbox-pg-target: refused as a destructive target: its postgres endpoint "
            f"this machine:{sandbox.port('pg_primary')} is backup source sandbox-pg-primary's"
            ) in done.stderr
    assert not (sandbox.home / "evidence" / env).exists()
    assert primary_state(sandbox) == before


def shutil_copy(source: Path, folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)


def test_the_guard_role_refuses_a_target_that_is_the_primary_behind_a_forwarder(
        sandbox: Drtool, forwarder, tmp_path: Path):
    # The role alone, as a playbook run without drtool would apply it: each forwarded target
    # answers with its primary's identity; the sandbox's own targets are allowed. Each target
    # is a component's, read from the primary.
    pg_via = forwarder(sandbox.port("pg_primary"))
    redis_via = forwarder(sandbox.port("redis_primary"))

    def pairs(source: str, port: int, targets: dict[str, int], **also: Any) -> list[dict]:
        return [{"name": target, **also, "source": {"host": source, "port": port},
                 "target": {"host": target, "port": target_port}}
                for target, target_port in targets.items()]

    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "drtool_tier": "sandbox", "drtool_postgres_user": "postgres",
             "drtool_postgres_password": sandbox.secret("postgres_password"),
             "drtool_redis_password": sandbox.secret("redis_password"),
             "drtool_postgres_clusters": pairs(
                 "pg-primary", sandbox.port("pg_primary"),
                 {"pg-forwarded": pg_via.port, "pg-target": sandbox.port("pg_target")},
                 databases=["appdb"]),
             "drtool_redis_instances": pairs(
                 "redis-primary", sandbox.port("redis_primary"),
                 {"redis-forwarded": redis_via.port,
                  "redis-target": sandbox.port("redis_target")})}
    hosts = {"pg-primary": {}, "redis-primary": {},
             **{target: {"drtool_drill_target": True} for target in (
                 "pg-forwarded", "pg-target", "redis-forwarded", "redis-target")}}
    before = primary_state(sandbox)
    said, output = guard_says(tmp_path, {"all": {"vars": local, "hosts": hosts}}, GUARD_PLAY, 6)
    assert said["pg-target"] == "allowed" and said["redis-target"] == "allowed", said
    with pg(sandbox, "pg_primary", "postgres") as admin:
        system = admin.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
    run_id = rd(sandbox, "redis_primary").info("server")["run_id"]
    assert said["pg-forwarded"] == (
        "pg-forwarded is refused as a destructive target: pg-forwarded is backup source "
        f"pg-primary: same PostgreSQL system_identifier {system}")
    assert said["redis-forwarded"].startswith(
        "redis-forwarded is refused as a destructive target: redis-forwarded is backup source "
        f"redis-primary: same Redis run_id {run_id}; redis-forwarded uses backup source "
        "redis-primary's RDB file: ")
    secrets = (sandbox.secret("postgres_password"), sandbox.secret("redis_password"))
    assert not any(secret in output for secret in secrets)
    assert primary_state(sandbox) == before
