"""A database owned by an application role, restored onto a target cluster that lacks the
role: real drills on the sandbox, whose seed gives `shop_owner` (on the primary only) the
database `shop`, its schema `shop` with a table, a view, a function and a trigger, and a grant
in `appdb`. The drills restore both databases of the cluster `main`.

The role is created from the backup's globals (with its password from the inventory, found
nowhere afterwards); or, where creating roles is forbidden, the restore runs without owners
and grants and the journal says so; or, with that fallback off too, the drill is refused at
the snapshot, naming the role, before anything is destroyed. A tablespace the target lacks
is refused there as well."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from drtool.sandbox.seed import APP_ROLE, SHOP_DATABASE
from tests.conftest import Drtool, copy_inventory, copy_inventory_with_components, leases, pg

# The roles are the cluster's business: these drills leave the other components out.
MAIN = {"main"}

pytestmark = pytest.mark.integration

PASSWORD = "shop-0wner-PASSWORD-from-the-vault"
AFTER_BACKUP = ["disaster", "restore", "restart", "verify", "cleanup"]
# The cluster's databases, restored in turn: appdb (which grants to the role), then the role's.
BOTH_DATABASES = {"drtool_postgres_clusters[0].databases": ["appdb", SHOP_DATABASE]}


def drop_role_on_target(sandbox: Drtool) -> None:
    """Make the target cluster lack the application role: drop it with what it owns, the
    databases it owns included."""
    with pg(sandbox, "pg_target", "postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone():
            return
        for (owned,) in conn.execute("SELECT datname FROM pg_database "
                                     "WHERE datdba = %s::regrole", (APP_ROLE,)).fetchall():
            conn.execute(f'DROP DATABASE "{owned}" WITH (FORCE)')
        databases = [row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn").fetchall()]
    for database in databases:
        with pg(sandbox, "pg_target", database) as conn:
            conn.execute(f"DROP OWNED BY {APP_ROLE} CASCADE")
    with pg(sandbox, "pg_target", "postgres") as conn:
        conn.execute(f"DROP ROLE {APP_ROLE}")


def role_on_target(sandbox: Drtool) -> dict[str, Any] | None:
    with pg(sandbox, "pg_target", "postgres") as conn:
        row = conn.execute("SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = %s",
                           (APP_ROLE,)).fetchone()
    return None if row is None else {"login": row[0], "password": row[1]}


def shop_owners(sandbox: Drtool) -> dict[str, str]:
    """Who owns the target's database shop and each object of its schema shop."""
    with pg(sandbox, "pg_target", SHOP_DATABASE) as conn:
        rows = conn.execute("""
            SELECT 'database shop', pg_get_userbyid(datdba) FROM pg_database
              WHERE datname = current_database()
            UNION ALL SELECT 'schema shop', pg_get_userbyid(nspowner) FROM pg_namespace
              WHERE nspname = 'shop'
            UNION ALL SELECT relkind::text || ' ' || relname, pg_get_userbyid(relowner)
              FROM pg_class WHERE relnamespace = 'shop'::regnamespace AND relkind IN ('r', 'v')
            UNION ALL SELECT 'function ' || proname, pg_get_userbyid(proowner) FROM pg_proc
              WHERE pronamespace = 'shop'::regnamespace""").fetchall()
        triggers = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = "
                                "'shop.price_changes'::regclass AND NOT tgisinternal").fetchone()
    assert triggers[0] == 1
    return dict(rows)


def target_state(sandbox: Drtool) -> dict[str, Any]:
    """What a drill refused before anything was destroyed must leave as it was: each
    database of the cluster (None when the target has none by that name)."""
    with pg(sandbox, "pg_target", "postgres") as conn:
        oids = dict(conn.execute("SELECT datname, oid FROM pg_database "
                                 "WHERE datname IN ('appdb', %s)", (SHOP_DATABASE,)).fetchall())
    state: dict[str, Any] = {"appdb": oids.get("appdb"), "shop": oids.get(SHOP_DATABASE)}
    if state["appdb"] is not None:
        with pg(sandbox, "pg_target") as conn:
            state["counts"] = {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("public.orders", "public.order_items", "public.customers")}
            state["schemas"] = [row[0] for row in conn.execute(
                "SELECT nspname FROM pg_namespace ORDER BY 1").fetchall()]
    if state["shop"] is not None:
        with pg(sandbox, "pg_target", SHOP_DATABASE) as conn:
            state["price_changes"] = conn.execute(
                "SELECT count(*) FROM shop.price_changes").fetchone()[0]
    return state


def roles_checks(journal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The postgres.roles check of each database of the cluster main, by database."""
    checks = {c["target"]: c for c in journal["checks"] if c["name"] == "postgres.roles"}
    assert set(checks) == {"sandbox-pg-target/main/appdb",
                           f"sandbox-pg-target/main/{SHOP_DATABASE}"}, checks
    assert {c["status"] for c in checks.values()} == {"passed"}
    return {where.rsplit("/", 1)[1]: check for where, check in checks.items()}


def files_holding(home: Path, secret: str) -> list[str]:
    """Every file under `home` holding `secret`, but the sandbox's own secrets folder."""
    return [str(path.relative_to(home)) for path in sorted(home.rglob("*"))
            if path.is_file() and (home / "sandbox" / "secrets") not in path.parents
            and secret.encode() in path.read_bytes()]


def test_a_target_without_the_role_gets_it_from_the_backups_globals(sandbox: Drtool,
                                                                    tmp_path: Path):
    # The password comes from a file outside DRTOOL_HOME, as a vault lookup would give it.
    secret = tmp_path / "shop_owner_password"
    secret.write_text(PASSWORD)
    env = copy_inventory_with_components(sandbox, "roles-create", BOTH_DATABASES, {
        "drtool_postgres_role_passwords": {
            APP_ROLE: f"{{{{ lookup('ansible.builtin.file', '{secret}') }}}}"}}, keep=MAIN)
    drop_role_on_target(sandbox)
    assert role_on_target(sandbox) is None
    # A user at -vvv: whatever Ansible prints more must still hold no password.
    user = Drtool(sandbox.home, {**sandbox.env, "ANSIBLE_VERBOSITY": "3"})
    done = user("drill", "--env", env, "--json")
    journal = json.loads(done.stdout)
    assert done.returncode == 0, json.dumps(journal.get("failure"), indent=1)
    assert journal["status"] == "passed"

    role = role_on_target(sandbox)
    assert role is not None and role["login"] is False  # NOLOGIN, as on the primary
    assert role["password"].startswith("SCRAM-SHA-256$")
    assert set(shop_owners(sandbox).values()) == {APP_ROLE}
    assert set(shop_owners(sandbox)) == {"database shop", "schema shop", "r price_changes",
                                         "v current_prices", "function stamp_change"}
    # appdb, restored first, needed the role for its grant and created it; shop found it.
    checks = roles_checks(journal)
    check = checks["appdb"]
    assert check["actual"] == f"created {APP_ROLE}"
    assert APP_ROLE in check["expected"].split(", ")
    assert f"passwords from drtool_postgres_role_passwords for {APP_ROLE}" in check["detail"]
    assert checks[SHOP_DATABASE]["actual"] == "all present"
    assert APP_ROLE in checks[SHOP_DATABASE]["expected"].split(", ")
    # The restore went with the owners and grants: shop_owner's grant on products is back.
    with pg(sandbox, "pg_target") as conn:
        assert conn.execute("SELECT has_table_privilege(%s, 'public.products', 'SELECT')",
                            (APP_ROLE,)).fetchone()[0]

    # The password is the one given: the role logs in with it (for this check only).
    with pg(sandbox, "pg_target", "postgres") as conn:
        conn.execute(f"ALTER ROLE {APP_ROLE} LOGIN")
    try:
        from drtool.adapters import postgres

        with postgres.connect("127.0.0.1", sandbox.port("pg_target"), APP_ROLE, PASSWORD,
                              SHOP_DATABASE) as conn:
            assert conn.execute("SELECT count(*) FROM shop.current_prices").fetchone()[0] == 500
    finally:
        with pg(sandbox, "pg_target", "postgres") as conn:
            conn.execute(f"ALTER ROLE {APP_ROLE} NOLOGIN")

    # ...and it is nowhere else: not in the journal, the artifacts, the backup, the output.
    evidence = sandbox.home / "evidence" / env / journal["drill_id"]
    assert (evidence / "artifacts" / "restore" / "stdout").stat().st_size > 0  # (-vvv)
    assert files_holding(sandbox.home, PASSWORD) == []
    assert PASSWORD not in done.stdout + done.stderr


def test_where_roles_may_not_be_created_the_restore_runs_without_them_and_says_so(
        sandbox: Drtool):
    env = copy_inventory_with_components(sandbox, "roles-fallback", BOTH_DATABASES,
                                         {"drtool_postgres_create_roles": False}, keep=MAIN)
    drop_role_on_target(sandbox)
    code, journal = sandbox.json("drill", "--env", env)
    assert code == 0, json.dumps(journal.get("failure"), indent=1)
    assert journal["status"] == "passed"

    assert role_on_target(sandbox) is None  # nothing created
    assert set(shop_owners(sandbox).values()) == {"postgres"}  # the restore role owns it all
    for check in roles_checks(journal).values():  # neither database could have the role
        assert check["actual"] == f"restored without {APP_ROLE}"
        assert (f"the target lacks {APP_ROLE}: restored with --no-owner --no-privileges "
                "--role=postgres because drtool_postgres_create_roles is false"
                ) in check["detail"]
    # Every table still counted exactly, the role's own included.
    counts = {c["target"]: c for c in journal["checks"] if c["name"] == "postgres.row_count"}
    assert counts[f"sandbox-pg-target/main/{SHOP_DATABASE}:shop.price_changes"]["actual"] == 500


def test_with_creation_and_the_fallback_off_the_drill_is_refused_before_anything_is_destroyed(
        sandbox: Drtool):
    # The PostgreSQL hosts stage the backup outside the store, as over SSH: the check reads a
    # copy of the dump's table of contents on the target.
    staged = {"drtool_backup_path": "{{ drtool_home }}/staging/{{ drtool_backup_id }}"}
    env = copy_inventory_with_components(
        sandbox, "roles-refused", BOTH_DATABASES,
        {"drtool_postgres_create_roles": False, "drtool_postgres_role_fallback": False},
        {"sandbox-pg-primary": staged, "sandbox-pg-target": staged}, keep=MAIN)
    drop_role_on_target(sandbox)
    before = target_state(sandbox)
    code, journal = sandbox.json("drill", "--env", env)
    assert code == 3, json.dumps(journal.get("failure"), indent=1)
    failure = journal["failure"]
    # The backup's last step, once its dump exists and before the disaster.
    assert failure["phase"] == "backup" and failure["kind"] == "orchestration"
    assert failure["hosts"] == ["sandbox-pg-target"]
    assert failure["reason"].startswith("sandbox-pg-target: main: "), failure["reason"]
    assert f"needs roles the target lacks: {APP_ROLE}" in failure["reason"]
    assert "drtool_postgres_create_roles: false" in failure["reason"]
    assert "drtool_postgres_role_fallback: false" in failure["reason"]
    phases = {p["name"]: p["status"] for p in journal["phases"]}
    assert (phases["snapshot"], phases["backup"]) == ("passed", "failed")
    assert [phases[name] for name in AFTER_BACKUP] == ["skipped"] * len(AFTER_BACKUP)
    assert journal["disaster_declared_at"] is None and journal["rollback"] is None
    # Nothing changed the target: its safety snapshot and its leases are given up.
    assert not (sandbox.home / "snapshots" / env / journal["drill_id"]).exists()
    assert leases(sandbox) == {}
    tasks = {t["name"]: t["status"] for t in journal["phases"][2]["tasks"]}
    assert tasks["Copy the backup's table of contents and globals to the target"] == "changed"
    assert tasks["Remove the copy of the table of contents"] == "changed"
    # The target database is the same database, holding the same rows; no role was made.
    assert target_state(sandbox) == before
    assert role_on_target(sandbox) is None
    # The backup itself is complete (its manifest written): it is drillable, and a drill
    # of it is refused by the same check, in its snapshot phase, before the disaster.
    backup_id = journal["backup"]["id"]
    assert (sandbox.home / "backups" / env / backup_id / "manifest.json").is_file()
    code, stored = sandbox.json("drill", "--env", env, "--backup", backup_id)
    assert code == 3, json.dumps(stored.get("failure"), indent=1)
    assert stored["failure"]["phase"] == "snapshot", stored["failure"]
    assert f"needs roles the target lacks: {APP_ROLE}" in stored["failure"]["reason"]
    assert stored["disaster_declared_at"] is None and stored["rollback"] is None
    assert not (sandbox.home / "snapshots" / env / stored["drill_id"]).exists()
    assert leases(sandbox) == {}
    assert target_state(sandbox) == before


def test_a_tablespace_the_target_lacks_is_refused_before_anything_is_destroyed(
        sandbox: Drtool):
    # A tablespace on the primary, in a folder its server's user owns, holding one table.
    data_dir = sandbox.layout.postgres_root / "pg_primary" / "data"
    folder = sandbox.layout.postgres_root / "roles-test-tablespace"
    folder.mkdir()
    os.chown(folder, data_dir.stat().st_uid, data_dir.stat().st_gid)
    with pg(sandbox, "pg_primary", "postgres") as conn:
        conn.execute(f"CREATE TABLESPACE drill_probe_ts LOCATION '{folder}'")
    try:
        with pg(sandbox, "pg_primary") as conn:
            conn.execute("CREATE TABLE public.tablespace_probe (id int) TABLESPACE drill_probe_ts")
        before = target_state(sandbox)
        # An environment of its own: the backup it leaves in its store (with the table in the
        # tablespace) is no other test's latest.
        env = copy_inventory(sandbox, "roles-tablespace", {}, keep=MAIN)
        code, journal = sandbox.json("drill", "--env", env)
        assert code == 3, json.dumps(journal.get("failure"), indent=1)
        assert journal["failure"]["phase"] == "backup"
        assert ("puts objects in tablespaces the target lacks: drill_probe_ts"
                in journal["failure"]["reason"])
        assert journal["disaster_declared_at"] is None and journal["rollback"] is None
        assert target_state(sandbox) == before
    finally:
        with pg(sandbox, "pg_primary") as conn:
            conn.execute("DROP TABLE IF EXISTS public.tablespace_probe")
        with pg(sandbox, "pg_primary", "postgres") as conn:
            conn.execute("DROP TABLESPACE IF EXISTS drill_probe_ts")
        shutil.rmtree(folder, ignore_errors=True)
