"""The only drtool module (besides the Ansible modules on hosts) that imports redis."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect(host: str, port: int, password: str, decode: bool = True,
            retry: bool = True) -> redis.Redis:
    """A client with short timeouts; commands raise redis.RedisError when it is unreachable.

    retry=False turns off redis-py's reconnect-with-back-off, for SHUTDOWN: the server is
    meant to go away, and retrying only adds seconds.
    """
    if retry:
        return redis.Redis(host=host, port=port, password=password, socket_timeout=10,
                           socket_connect_timeout=5, decode_responses=decode)
    return redis.Redis(host=host, port=port, password=password, socket_timeout=10,
                       socket_connect_timeout=5, decode_responses=decode,
                       retry=Retry(NoBackoff(), 0))


Error = redis.RedisError
