#!/usr/bin/python
"""Ansible module: the roles and tablespaces a dump needs on the target cluster; create the
missing roles from the backup's globals, or say how to restore without them."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_roles
short_description: Give a restore target the roles a dump needs, or refuse before anything changes
description:
  - Reads the dump's table of contents (C(pg_restore --schema-only), which reads only
    C(toc.dat)) for the owners of its objects, the roles its ACL entries grant to, and the
    roles its policies and user mappings name, and the tablespaces it uses; then asks the
    target cluster which of them it lacks.
  - A missing tablespace always fails (drtool maps none). Missing roles are created from the
    source cluster's globals (I(globals), from C(pg_dumpall --globals-only
    --no-role-passwords)) with I(create) - C(CREATE ROLE), its C(ALTER ROLE) attributes and
    settings, its comment and its memberships, for the missing roles only, in one
    transaction; a role the target has is never changed. Without I(create), the module
    returns the arguments of a restore without them (C(--no-owner --no-privileges
    --role=)I(fallback_role)), or fails naming them when no I(fallback_role) is given.
  - "With I(check_only) (or Ansible's check mode) it decides and changes nothing: the check
    before a drill destroys anything."
  - Passwords from I(passwords) reach the server as SCRAM verifiers computed here, never in
    clear, and are never returned. Messages name the drtool_postgres role's settings.
extends_documentation_fragment:
  - drtool.drill.postgres
options:
  user:
    description: Role to connect as; it creates the roles.
    type: str
    default: postgres
  database:
    description: The database the dump is restored into (named in messages).
    type: str
    required: true
  dump:
    description: The directory-format dump (its toc.dat is enough).
    type: path
    required: true
  globals:
    description: The source cluster's pg_dumpall --globals-only script; may be absent.
    type: path
  pg_restore:
    description: pg_restore executable.
    type: str
    default: pg_restore
  create:
    description: Create the missing roles from I(globals).
    type: bool
    default: true
  fallback_role:
    description:
      - Without I(create), restore as this role without owners and privileges. Unset, a
        missing role fails the module.
    type: str
  passwords:
    description: "Passwords of roles it creates, {role: password}."
    type: dict
    default: {}
  check_only:
    description: Decide only; create nothing.
    type: bool
    default: false
author: drtool maintainers
"""

RETURN = r"""
needed:
  description: Every role the dump names.
  type: list
  returned: success
missing:
  description: The needed roles the target lacked.
  type: list
  returned: success
action:
  description: none (nothing missing), create or fallback.
  type: str
  returned: success
created:
  description: Roles created (none with check_only).
  type: list
  returned: success
memberships:
  description: Memberships granted, as 'role TO member'.
  type: list
  returned: success
skipped_memberships:
  description: Memberships not granted (the member existed, or the role does not), as 'role TO member'.
  type: list
  returned: success
passwords_set:
  description: Created roles given a password from I(passwords).
  type: list
  returned: success
restore_args:
  description: "How pg_restore must run: no_owner, no_privileges, role."
  type: dict
  returned: success
"""

import os
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.postgres import (
    CONNECTION_ARGS,
    client_env,
    connect,
    dump_requirements,
    globals_for_roles,
    import_psycopg,
    tool_failure,
)


def requirements(module, params):
    """What the dump needs, from pg_restore's script of it; fails the module when it
    cannot be read."""
    argv = [params["pg_restore"], "--schema-only", "--file=-", params["dump"]]
    try:
        done = subprocess.run(argv, env=client_env(params), capture_output=True, text=True,
                              errors="replace", check=False)
    except OSError as exc:
        module.fail_json(msg="cannot run %s: %s" % (params["pg_restore"], exc.strerror))
    if done.returncode != 0:
        module.fail_json(msg=tool_failure("pg_restore", done.returncode, done.stderr))
    try:
        return dump_requirements(done.stdout)
    except ValueError as exc:
        module.fail_json(msg="cannot read the table of contents of %s: %s" % (params["dump"], exc))


def decide(module, params, needs, roles, tablespaces):
    """Fail when the dump cannot be restored here; otherwise (action, missing, plan) where
    plan is globals_for_roles' answer for a creation."""
    what = "the dump of %s" % params["database"]
    lacking = [name for name in needs["tablespaces"] if name not in tablespaces]
    if lacking:
        module.fail_json(msg="%s puts objects in tablespaces the target lacks: %s; drtool maps "
                             "no tablespaces: create them on the target first"
                             % (what, ", ".join(lacking)))
    needed = sorted(set(needs["owners"]) | set(needs["grantees"]) | set(needs["others"]))
    missing = [name for name in needed if name not in roles]
    if not missing:
        return "none", missing, None
    named = "%s needs roles the target lacks: %s" % (what, ", ".join(missing))
    if params["create"]:
        path = params["globals"]
        if not path or not os.path.isfile(path):
            module.fail_json(msg="%s; the backup holds no globals to create them from (it was "
                                 "taken before drtool kept them): create them on the target, "
                                 "or set drtool_postgres_create_roles: false" % named)
        with open(path, encoding="utf-8", errors="replace") as handle:
            try:
                plan = globals_for_roles(handle.read(), missing)
            except ValueError as exc:
                module.fail_json(msg="cannot read %s: %s" % (path, exc))
        absent = [name for name in missing if name not in plan["roles"]]
        if absent:
            module.fail_json(msg="%s; the backup's globals do not create %s"
                                 % (named, ", ".join(absent)))
        return "create", missing, plan
    fallback = params["fallback_role"]
    if not fallback:
        module.fail_json(msg="%s; creating roles is off (drtool_postgres_create_roles: false) "
                             "and so is the fallback (drtool_postgres_role_fallback: false)"
                             % named)
    if fallback not in roles:
        module.fail_json(msg="%s; the fallback role %s does not exist on the target either"
                             % (named, fallback))
    blocked = [name for name in needs["others"] if name in missing]
    if blocked:
        module.fail_json(msg="%s; its row security policies or user mappings name %s, which a "
                             "restore with --no-owner --no-privileges still needs"
                             % (named, ", ".join(blocked)))
    return "fallback", missing, None


def create(conn, sql, plan, missing, roles, passwords):
    """Create the missing roles as the globals describe them, in the caller's transaction;
    return (memberships granted, skipped, roles given a password)."""
    for name in missing:
        for statement in plan["roles"][name]:
            conn.execute(statement)
    granted, skipped, seen = [], [], set()
    for role, member, statement in plan["memberships"]:
        label = "%s TO %s" % (role, member)
        if label in seen:
            continue
        seen.add(label)
        # A role the target had is never changed: it gains no member and joins no role.
        if member in missing and (role in roles or role in missing):
            conn.execute(statement)
            granted.append(label)
        else:
            skipped.append(label)
    with_password = []
    for name in missing:
        secret = passwords.get(name)
        if secret in (None, ""):
            continue
        # The verifier, not the password, goes to the server (and to any statement log).
        verifier = conn.pgconn.encrypt_password(str(secret).encode(), name.encode(), None)
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(verifier.decode())))
        with_password.append(name)
    return granted, skipped, with_password


def main():
    args = dict(CONNECTION_ARGS)
    args.update(
        dump=dict(type="path", required=True),
        globals=dict(type="path", default=None),
        pg_restore=dict(type="str", default="pg_restore"),
        create=dict(type="bool", default=True),
        fallback_role=dict(type="str", default=None),
        passwords=dict(type="dict", default={}, no_log=True),
        check_only=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=args, supports_check_mode=True)
    params = module.params
    psycopg = import_psycopg(module)
    from psycopg import sql  # noqa: PLC0415

    if not os.path.isdir(params["dump"]):
        module.fail_json(msg="no dump at %s" % params["dump"])
    needs = requirements(module, params)
    check_only = params["check_only"] or module.check_mode
    granted, skipped, with_password, created = [], [], [], []
    try:
        with connect(psycopg, params, database="postgres", autocommit=False) as conn:
            roles = {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}
            spaces = {row[0] for row in conn.execute("SELECT spcname FROM pg_tablespace")}
            action, missing, plan = decide(module, params, needs, roles, spaces)
            if action == "create" and not check_only:
                # One transaction: every missing role is created, or none.
                granted, skipped, with_password = create(
                    conn, sql, plan, missing, roles, params["passwords"] or {})
                created = missing
            conn.commit()
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL %s:%s: %s" % (params["host"], params["port"], exc))
    fallback = action == "fallback"
    module.exit_json(
        changed=bool(created), database=params["database"],
        needed=sorted(set(needs["owners"]) | set(needs["grantees"]) | set(needs["others"])),
        owners=needs["owners"], grantees=needs["grantees"], others=needs["others"],
        tablespaces=needs["tablespaces"], missing=missing, action=action, created=created,
        memberships=granted, skipped_memberships=skipped, passwords_set=with_password,
        restore_args=dict(no_owner=fallback, no_privileges=fallback,
                          role=params["fallback_role"] if fallback else None),
    )


if __name__ == "__main__":
    main()
