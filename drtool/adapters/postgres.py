"""The only drtool module (besides the Ansible modules on hosts) that imports psycopg."""

from __future__ import annotations

from typing import Any

import psycopg


def connect(host: str, port: int, user: str, password: str, database: str,
            autocommit: bool = True) -> psycopg.Connection[Any]:
    """Open a connection; psycopg.OperationalError when the server cannot be reached."""
    return psycopg.connect(host=host, port=port, user=user, password=password, dbname=database,
                           autocommit=autocommit, connect_timeout=10, application_name="drtool")


Error = psycopg.Error
