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
    database_exists,
    import_psycopg,
    recreate_database,
)


def main():
    args = dict(CONNECTION_ARGS)
    args.update(state=dict(type="str", default="present",
                           choices=["present", "absent", "recreated"]),
                owner=dict(type="str", default=None))
    module = AnsibleModule(argument_spec=args, supports_check_mode=True)
    params = module.params
    psycopg = import_psycopg(module)
    state = params["state"]
    try:
        with connect(psycopg, params, database="postgres") as conn:
            if module.check_mode:  # what it would do, done by nothing
                existed = database_exists(conn, params["database"])
                created, owned_by = state == "recreated" or (
                    state == "present" and not existed), None
            else:
                existed, created, owned_by = recreate_database(
                    psycopg, conn, params["database"], state, params["owner"])
            changed = created or (existed and state in ("absent", "recreated"))
    except psycopg.Error as exc:
        module.fail_json(msg="PostgreSQL %s:%s: %s" % (params["host"], params["port"], exc))
    module.exit_json(changed=changed, existed=existed, owner=owned_by)


if __name__ == "__main__":
    main()
