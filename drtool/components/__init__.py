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

from drtool.components import files, postgres, redis, service
from drtool.components.model import RECOVERY, SOURCE, TARGET, Component, Place

# The kind modules, by kind name: the one place a new kind is registered.
KINDS: dict[str, ModuleType] = {m.KIND: m for m in (postgres, redis, files, service)}
__all__ = ["KINDS", "RECOVERY", "SOURCE", "TARGET", "Component", "Place", "family",
           "from_described",
           "kind", "of_family", "sources", "targets"]


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


def from_described(described: Mapping[str, Mapping[str, Any]],
                   targets: str = TARGET) -> tuple[Component, ...]:
    """The components as playbooks/describe.yml resolved them on their hosts (each host
    publishes `components`: [{name, kind, side, values}]), in their lists' order (the
    first host's `component_lists`). Entries it could not resolve are left out: the
    schema's problems (drtool.components.schema) say why. With `targets` RECOVERY, each
    component's target is its recovery side, and those without one are left out: the
    estate `drtool recover` restores."""
    sides: dict[str, dict[str, Any]] = {}
    for host in sorted(described):
        for found in described[host].get("components") or []:
            if not isinstance(found, dict) or found.get("kind") not in KINDS:
                continue
            mine = sides.setdefault(str(found.get("name")), {"kind": found["kind"]})
            mine[str(found.get("side"))] = (host, found.get("values") or {})
    lists: Mapping[str, Any] = next((described[h]["component_lists"] for h in sorted(described)
                                     if described[h].get("component_lists")), {})
    order = [e.get("name") for module in KINDS.values()
             for e in (lists.get(module.LIST) or []) if isinstance(e, dict)]
    out = []
    for name in [n for n in order if n in sides]:
        found = sides[name]
        module = KINDS[found["kind"]]
        if targets == RECOVERY and found.get(RECOVERY) is None:
            continue  # declares no recovery side: not recovered
        try:
            out.append(module.from_sides(name, found.get(SOURCE), found.get(targets)))
        except (KeyError, TypeError, ValueError):
            continue  # malformed: the schema reports it
    return tuple(out)
