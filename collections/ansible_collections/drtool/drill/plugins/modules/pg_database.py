#!/usr/bin/python
"""Ansible module: create or drop (with FORCE) a PostgreSQL database."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_database
short_description: Create a database, drop it closing its connections, or both
description:
  - Connects to the maintenance database C(postgres) and, as I(state) asks, creates
    I(database), drops it, or both. A drop first refuses new connections, then ends the open
    ones (C(DROP DATABASE ... WITH (FORCE))).
extends_documentation_fragment:
  - drtool.drill.postgres
options:
  database:
    description: Database to create or drop.
    type: str
    required: true
  state:
    description:
      - C(present) creates it if missing; C(absent) drops it if there; C(recreated) drops it
        if there and creates it empty (what a restore needs, in one task).
    type: str
    default: present
    choices: [present, absent, recreated]
  owner:
    description:
      - The role a database it creates belongs to (as on the source); left to I(user) when
        the cluster has no such role (a restore without the dump's roles).
    type: str
author: drtool maintainers
"""

RETURN = r"""
existed:
  description: Whether the database existed before.
  type: bool
  returned: success
owner:
  description: Who owns the database it created (null when it created none).
  type: str
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.postgres import (
    CONNECTION_ARGS,
    connect,
    import_psycopg,
)


def main():
    args = dict(CONNECTION_ARGS)
    args.update(state=dict(type="str", default="present",
                           choices=["present", "absent", "recreated"]),
                owner=dict(type="str", default=None))
    module = AnsibleModule(argument_spec=args, supports_check_mode=True)
    params = module.params
    psycopg = import_psycopg(module)
    from psycopg import sql  # noqa: PLC0415

    name = sql.Identifier(params["database"])
    owned_by = None
    try:
        with connect(psycopg, params, database="postgres") as conn:
            existed = conn.execute(
                "SELECT count(*) > 0 FROM pg_database WHERE datname = %s", (params["database"],)
            ).fetchone()[0]
            state = params["state"]
            drop = existed and state in ("absent", "recreated")
            create = state == "recreated" or (state == "present" and not existed)
            changed = drop or create
            if not module.check_mode:
                if drop:
                    # Refuse new connections first: FORCE ends the open ones, and nothing
                    # (an application, a worker) may connect between that and the drop.
                    conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false")
                                 .format(name))
                    try:
                        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
                    except psycopg.Error:
                        # Not dropped: let it be used again, then say why.
                        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true")
                                     .format(name))
                        raise
                if create:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
                    owner = params["owner"]
                    if owner and conn.execute("SELECT count(*) > 0 FROM pg_roles WHERE "
                                              "rolname = %s", (owner,)).fetchone()[0]:
                        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                            name, sql.Identifier(owner)))
                    owned_by = conn.execute(
                        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                        (params["database"],)).fetchone()[0]
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL %s:%s: %s" % (params["host"], params["port"], exc))
    module.exit_json(changed=changed, existed=existed, owner=owned_by)


if __name__ == "__main__":
    main()
