"""Documentation fragment: the PostgreSQL connection options drtool's pg_* modules share
(module_utils/postgres.py, CONNECTION_ARGS). Each module documents C(database) itself: what
it names, and whether it is required, differ from one module to the next."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  host:
    description: Server address.
    type: str
    default: 127.0.0.1
  port:
    description: Server port.
    type: int
    default: 5432
  user:
    description: Role to connect as.
    type: str
    default: postgres
  password:
    description: Password of I(user).
    type: str
  connect_timeout:
    description: Seconds to wait for a connection.
    type: int
    default: 10
"""
