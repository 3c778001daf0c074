"""The redis kind: a Redis instance (every logical database it holds) and the RDB file it
really loads on the restore target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drtool.components.model import SOURCE, TARGET, Component, Place

KIND = "redis"
FAMILY = "redis"
LABEL = "Redis"
PATH_KEY = "drtool_redis_rdb_path"  # its folder is Redis's `dir`
PATH_IS_FILE = True
# What a Redis restore target loads when its inventory names no RDB file (the default in
# roles/drtool_redis/defaults/main.yml).
RDB_DEFAULT = "/var/lib/redis/dump.rdb"


def plan(_component: Component) -> dict[str, list[tuple[str, str]]]:
    return {
        "backup": [(SOURCE, "BGSAVE and a copy of the RDB; writes a sentinel key")],
        "snapshot": [(TARGET, "safety copy of what Redis holds now")],
        "disaster": [(TARGET, "DESTROYS: FLUSHALL")],
        "restore": [(TARGET, "checks the RDB's sha256, then stops Redis, replaces its RDB "
                             "and starts it")],
        "verify": [(TARGET, "PING, key counts, sentinel")],
        "cleanup": [(TARGET, "removes the safety snapshot and the staged backup")],
    }


def stores(component: Component) -> list[dict[str, Any]]:
    return [{"kind": "redis", "role": role, "host": side.host, "component": component.name,
             "endpoint": f"{side.address}:{side.port}"}
            for side, role in ((component.source, "source"), (component.target, "restore target"))
            if side is not None]


LIST = "drtool_redis_instances"


def from_sides(name: str, source: tuple[str, Mapping[str, Any]] | None,
               target: tuple[str, Mapping[str, Any]] | None) -> Component:
    """A redis component from its sides as resolved on their hosts: (host, values)."""
    return Component(name, KIND, _place(source, False), _place(target, True))


def _place(side: tuple[str, Mapping[str, Any]] | None, target: bool) -> Place | None:
    if side is None:
        return None
    host, values = side
    rdb = str(values.get("rdb_path") or "") or (RDB_DEFAULT if target else None)
    return Place(host, str(values.get("host") or "127.0.0.1"), int(values.get("port") or 6379),
                 rdb if target else (str(values.get("rdb_path") or "") or None))
