"""Documentation fragment: the Redis connection options drtool's redis_* modules share
(module_utils/redis.py, CONNECTION_ARGS)."""

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
    default: 6379
  password:
    description: Server password.
    type: str
  connect_timeout:
    description: Socket timeout in seconds.
    type: int
    default: 10
"""
