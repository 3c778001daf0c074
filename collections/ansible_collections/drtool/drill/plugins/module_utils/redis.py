"""Redis helpers shared by drtool's modules (redis-py on the managed host)."""

from __future__ import annotations

import datetime

CONNECTION_ARGS = dict(
    host=dict(type="str", default="127.0.0.1"),
    port=dict(type="int", default=6379),
    password=dict(type="str", no_log=True, default=None),
    connect_timeout=dict(type="int", default=10),
)


def import_redis(module):
    """Return the redis module, or fail the task with a clear message."""
    try:
        import redis  # noqa: PLC0415 - the import is the check
    except ImportError:
        module.fail_json(msg="drtool.drill needs the redis Python package on the managed host")
    return redis


def connect(redis, params, retry=True):
    """Open a client from the module's connection parameters.

    With retry=False the client does not reconnect after a dropped connection (redis-py
    retries with back-off by default), which SHUTDOWN needs: the server is meant to go away.
    """
    extra = {}
    if not retry:
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        extra["retry"] = Retry(NoBackoff(), 0)
    return redis.Redis(
        **extra,
        host=params["host"],
        port=params["port"],
        password=params["password"],
        socket_timeout=params["connect_timeout"],
        socket_connect_timeout=params["connect_timeout"],
        decode_responses=True,
    )


def keyspace_counts(keyspace):
    """Turn INFO keyspace ({"db0": {"keys": n, "expires": m}}) into {"db0": n}."""
    return {db: int(stats["keys"]) for db, stats in sorted(keyspace.items())}


def heartbeat_iso(value):
    """Heartbeat keys hold epoch seconds; return ISO-8601 UTC or None."""
    if value in (None, ""):
        return None
    try:
        stamp = float(value)
    except ValueError:
        return None
    return datetime.datetime.fromtimestamp(stamp, tz=datetime.timezone.utc).isoformat()
