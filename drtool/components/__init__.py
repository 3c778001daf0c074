"""What an environment holds, as named components, each of one kind.

A component pairs a source (where its data is read from) with a restore target (where a
drill restores it, and may destroy what is there), both on inventory hosts; a service has a
target only. Each kind is one module here (postgres, redis, service): what the plan says it
does in each phase, which server family its endpoints belong to (for the production guard
and the target locks), which data directory it declares, what the scope records. Everything
here is pure: no host is asked anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from drtool.components import postgres, redis, service
from drtool.components.model import SOURCE, TARGET, Component, Place

# The kind modules, by kind name: the one place a new kind is registered.
KINDS: dict[str, ModuleType] = {m.KIND: m for m in (postgres, redis, service)}
__all__ = ["KINDS", "SOURCE", "TARGET", "Component", "Place", "family", "kind", "sources",
           "targets", "of_family", "from_groups"]


def kind(component: Component) -> ModuleType:
    """The module of a component's kind."""
    return KINDS[component.kind]


def family(component: Component) -> str | None:
    """The server family of a component's endpoints ("postgres", "redis"), or None."""
    found: str | None = KINDS[component.kind].FAMILY
    return found


def sources(components: Iterable[Component]) -> dict[str, list[Component]]:
    """{host: the components read from it}, hosts in the components' order."""
    return _by_host(components, SOURCE)


def targets(components: Iterable[Component]) -> dict[str, list[Component]]:
    """{host: the components restored onto it}, hosts in the components' order."""
    return _by_host(components, TARGET)


def _by_host(components: Iterable[Component], side: str) -> dict[str, list[Component]]:
    out: dict[str, list[Component]] = {}
    for component in components:
        place = component.place(side)
        if place is not None:
            out.setdefault(place.host, []).append(component)
    return out


def of_family(components: Iterable[Component], name: str) -> list[Component]:
    return [c for c in components if family(c) == name]


# -- today's inventory shape: one host per group ------------------------------------------

SOURCE_GROUPS = ("pg_primary", "redis_primary")
TARGET_GROUPS = ("pg_restore_target", "redis_restore_target", "app")
REQUIRED_GROUPS = SOURCE_GROUPS + TARGET_GROUPS


def from_groups(groups: Mapping[str, tuple[str, ...]],
                described: Mapping[str, Mapping[str, Any]]) -> tuple[Component, ...]:
    """The components an inventory of one host per group holds: a postgres component named
    "postgres" (pg_primary -> pg_restore_target), a redis one named "redis"
    (redis_primary -> redis_restore_target), and a service named "app" on the app host.
    Groups without exactly one host give no component (validation reports them)."""
    def one(group: str) -> str | None:
        hosts = groups.get(group, ())
        return hosts[0] if len(hosts) == 1 else None

    out = []
    for module in (postgres, redis):
        source, target = one(module.GROUPS[0]), one(module.GROUPS[1])
        if source and target:
            out.append(module.from_hosts(source, described[source], target, described[target]))
    app = one("app")
    if app:
        out.append(service.from_host(app, described[app],
                                     after=tuple(c.name for c in out)))
    return tuple(out)
