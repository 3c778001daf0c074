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
GROUPS = ("redis_primary", "redis_restore_target")
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


def place(host: str, settings: Mapping[str, Any], target: bool) -> Place:
    rdb = str(settings.get("redis_rdb_path") or "") or (RDB_DEFAULT if target else None)
    return Place(host, str(settings.get("redis_host") or "127.0.0.1"),
                 int(settings.get("redis_port") or 6379), rdb)


def from_hosts(source: str, source_settings: Mapping[str, Any], target: str,
               target_settings: Mapping[str, Any]) -> Component:
    return Component("redis", KIND, place(source, source_settings, False),
                     place(target, target_settings, True))


def stores(component: Component) -> list[dict[str, Any]]:
    return [{"kind": "redis", "role": role, "host": side.host, "component": component.name,
             "endpoint": f"{side.address}:{side.port}"}
            for side, role in ((component.source, "source"), (component.target, "restore target"))
            if side is not None]
