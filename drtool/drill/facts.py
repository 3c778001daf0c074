"""What the roles published, per component, turned into the journal's checks.

The roles key their facts by component ({cluster: {database: facts}} for PostgreSQL,
{instance: facts} for Redis, {tree: facts} for the files kind, {service: facts}); the
manifest's parts are keyed the same way (PostgresPart.key, RedisPart.key, FilesPart.key).
Checks name where they looked: host/cluster/database, host/instance,
host/tree:relative/path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from drtool.components import Component
from drtool.components import files as files_kind
from drtool.core import verdict
from drtool.core.manifest import Manifest
from drtool.core.model import FAILED, Check


def by_database(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{cluster: {database: facts}} -> {"cluster/database": facts}."""
    return {f"{name}/{database}": dict(found)
            for name, databases in (stats or {}).items()
            for database, found in (databases or {}).items()}


def placed(components: Iterable[Component], found: Mapping[str, Any]) -> dict[str, Any]:
    """{key: facts} -> {"target-host/key": facts}: where each part was measured."""
    hosts = {c.name: c.target.host for c in components if c.target is not None}
    return {f"{hosts.get(key.split('/', 1)[0], '-')}/{key}": value
            for key, value in found.items()}


def expected_keys(components: Iterable[Component], kind: str) -> list[str]:
    """The parts a restore must measure: every database of every cluster, every instance."""
    out = []
    for component in components:
        if component.kind != kind or component.target is None:
            continue
        if kind == "postgres":
            out += [f"{component.name}/{database}" for database in component.databases]
        else:
            out.append(component.name)
    return out


def verify_checks(components: Iterable[Component], manifest: Manifest,
                  stats: Mapping[str, Any], restored: Mapping[str, Mapping[str, Any]],
                  growing_tables: Iterable[str]) -> list[Check]:
    """Every check of the verify phase: each database, Redis instance and directory tree
    against its part of the manifest (a part that published nothing fails), the heartbeats
    found right after the restore, and each service's health."""
    components = list(components)
    checks: list[Check] = []
    measured = {"postgres": by_database(stats.get("drtool_postgres_verify", {})),
                "redis": dict(stats.get("drtool_redis_verify", {})),
                "files": dict(stats.get("drtool_files_verify", {}))}
    # Clusters whose counts cannot be compared: {component: why}. Recovered to a point in
    # time drtool did not set, or backed up with recovery_counts none.
    at_time = {part.component: str(part.recovery_target.get("target"))
               for part in manifest.physical if part.recovery_target.get("type") == "time"}
    uncounted = {part.component: (f"recovered to {at_time[part.component]}: no count was "
                                  "recorded at that point" if part.component in at_time
                                  else "backed up with recovery_counts none")
                 for part in manifest.physical
                 if part.component in at_time or part.counts_method == "none"}
    for kind in ("postgres", "redis", "files"):
        wanted = expected_keys(components, kind)
        for key in sorted(set(wanted) | set(measured[kind])):
            where = next(iter(placed(components, {key: None})))
            found = measured[kind].get(key)
            if found is None:
                checks.append(Check(f"{kind}.measured", where, "facts from the verify phase",
                                    None, FAILED, "the verify phase published nothing for it"))
            elif kind == "postgres" and key.split("/")[0] in uncounted:
                checks += verdict.uncounted_checks(where, found, uncounted[key.split("/")[0]])
            elif kind == "postgres":
                checks += verdict.postgres_checks(manifest.postgres_part(key), where, found,
                                                  growing_tables)
            elif kind == "files":
                checks += files_kind.verify_checks(manifest.tree_part(key), where, found)
            else:
                checks += verdict.redis_checks(manifest.redis_part(key), where, found)
    # Their heartbeats had nothing recorded to equal either; a time target bounds them.
    timed = {key for key in restored.get("postgres", {}) if key.split("/")[0] in uncounted}
    checks += verdict.heartbeat_checks(manifest, {
        "postgres": {k: v for k, v in restored.get("postgres", {}).items() if k not in timed},
        "redis": restored.get("redis", {})})
    for component, moment in sorted(at_time.items()):
        checks += verdict.recovery_time_checks(
            moment, restored.get("postgres", {}),
            [key for key in timed if key.split("/")[0] == component])
    checks += verdict.service_checks(stats.get("drtool_service_health", {}))
    return checks
