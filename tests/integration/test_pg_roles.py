"""A database owned by an application role, restored onto a target cluster that lacks the
role: real drills on the sandbox, whose seed gives `shop_owner` (on the primary only) the
schema `shop` with a table, a view, a function and a trigger.

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

from drtool.sandbox.seed import APP_ROLE
from tests.conftest import Drtool, copy_inventory, pg

pytestmark = pytest.mark.integration

PASSWORD = "shop-0wner-PASSWORD-from-the-vault"
AFTER_SNAPSHOT = ["disaster", "restore", "restart", "verify", "cleanup"]


def drop_role_on_target(sandbox: Drtool) -> None:
    """Make the target cluster lack the application role: drop it with what it owns."""
    with pg(sandbox, "pg_target", "postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone():
            return
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
    """Who owns each object of the schema shop in the target's appdb."""
    with pg(sandbox, "pg_target") as conn:
        rows = conn.execute("""
            SELECT 'schema shop', pg_get_userbyid(nspowner) FROM pg_namespace
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
    """What a drill refused before anything was destroyed must leave as it was."""
    with pg(sandbox, "pg_target", "postgres") as conn:
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = 'appdb'").fetchone()
    if oid is None:
        return {"appdb": None}
    with pg(sandbox, "pg_target") as conn:
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("public.orders", "public.order_items", "public.customers")}
        schemas = [row[0] for row in conn.execute(
            "SELECT nspname FROM pg_namespace ORDER BY 1").fetchall()]
    return {"appdb": oid[0], "counts": counts, "schemas": schemas}


def roles_check(journal: dict[str, Any]) -> dict[str, Any]:
    [check] = [c for c in journal["checks"] if c["name"] == "postgres.roles"]
    assert check["status"] == "passed" and check["target"] == "sandbox-pg-target/appdb"
    return check


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
    env = copy_inventory(sandbox, "roles-create", {"drtool_postgres_role_passwords": {
        APP_ROLE: f"{{{{ lookup('ansible.builtin.file', '{secret}') }}}}"}})
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
    assert set(shop_owners(sandbox)) == {"schema shop", "r price_changes", "v current_prices",
                                         "function stamp_change"}
    check = roles_check(journal)
    assert check["actual"] == f"created {APP_ROLE}"
    assert APP_ROLE in check["expected"].split(", ")
    assert f"passwords from drtool_postgres_role_passwords for {APP_ROLE}" in check["detail"]
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
                              "appdb") as conn:
            assert conn.execute("SELECT count(*) FROM shop.current_prices").fetchone()[0] == 500
    finally:
        with pg(sandbox, "pg_target", "postgres") as conn:
            conn.execute(f"ALTER ROLE {APP_ROLE} NOLOGIN")

    # ...and it is nowhere else: not in the journal, the artifacts, the backup, the output.
    evidence = sandbox.home / "evidence" / env / journal["drill_id"]
    assert (evidence / "artifacts" / "restore" / "stdout").stat().st_size > 0
    assert files_holding(sandbox.home, PASSWORD) == []
    assert PASSWORD not in done.stdout + done.stderr


def test_where_roles_may_not_be_created_the_restore_runs_without_them_and_says_so(
        sandbox: Drtool):
    env = copy_inventory(sandbox, "roles-fallback", {"drtool_postgres_create_roles": False})
    drop_role_on_target(sandbox)
    code, journal = sandbox.json("drill", "--env", env)
    assert code == 0, json.dumps(journal.get("failure"), indent=1)
    assert journal["status"] == "passed"

    assert role_on_target(sandbox) is None  # nothing created
    assert set(shop_owners(sandbox).values()) == {"postgres"}  # the restore role owns it all
    check = roles_check(journal)
    assert check["actual"] == f"restored without {APP_ROLE}"
    assert (f"the target lacks {APP_ROLE}: restored with --no-owner --no-privileges "
            "--role=postgres because drtool_postgres_create_roles is false") in check["detail"]
    # Every table still counted exactly, the role's own included.
    counts = {c["target"].split(":", 1)[1]: c for c in journal["checks"]
              if c["name"] == "postgres.row_count"}
    assert counts["shop.price_changes"]["actual"] == 500


def test_with_creation_and_the_fallback_off_the_drill_is_refused_before_anything_is_destroyed(
        sandbox: Drtool):
    # The PostgreSQL hosts stage the backup outside the store, as over SSH: the check reads a
    # copy of the dump's table of contents on the target.
    staged = {"drtool_backup_path": "{{ drtool_home }}/staging/{{ drtool_backup_id }}"}
    env = copy_inventory(sandbox, "roles-refused", {"drtool_postgres_create_roles": False,
                                                    "drtool_postgres_role_fallback": False},
                         {"sandbox-pg-primary": staged, "sandbox-pg-target": staged})
    drop_role_on_target(sandbox)
    before = target_state(sandbox)
    code, journal = sandbox.json("drill", "--env", env)
    assert code == 3, json.dumps(journal.get("failure"), indent=1)
    failure = journal["failure"]
    assert failure["phase"] == "snapshot" and failure["kind"] == "orchestration"
    assert failure["hosts"] == ["sandbox-pg-target"]
    assert f"needs roles the target lacks: {APP_ROLE}" in failure["reason"]
    assert "drtool_postgres_create_roles: false" in failure["reason"]
    assert "drtool_postgres_role_fallback: false" in failure["reason"]
    phases = {p["name"]: p["status"] for p in journal["phases"]}
    assert phases["snapshot"] == "failed"
    assert [phases[name] for name in AFTER_SNAPSHOT] == ["skipped"] * len(AFTER_SNAPSHOT)
    assert journal["disaster_declared_at"] is None and journal["rollback"] is None
    tasks = {t["name"]: t["status"] for t in journal["phases"][2]["tasks"]}
    assert tasks["Copy the backup's table of contents and globals to the target"] == "changed"
    assert tasks["Remove the copy of the table of contents"] == "changed"
    # The target database is the same database, holding the same rows; no role was made.
    assert target_state(sandbox) == before
    assert role_on_target(sandbox) is None


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
        code, journal = sandbox.json("drill", "--env", "sandbox")
        assert code == 3, json.dumps(journal.get("failure"), indent=1)
        assert journal["failure"]["phase"] == "snapshot"
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
