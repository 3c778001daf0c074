"""The only drtool module (besides the Ansible modules on hosts) that imports redis."""

from __future__ import annotations

import redis


def connect(host: str, port: int, password: str, decode: bool = True) -> redis.Redis:
    """A client with short timeouts; commands raise redis.RedisError when it is unreachable."""
    return redis.Redis(host=host, port=port, password=password, socket_timeout=10,
                       socket_connect_timeout=5, decode_responses=decode)


Error = redis.RedisError
