"""The service kind: an application on a host, stopped before the disaster and started on
the restored data stores once the components it depends on are restored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from drtool.components.model import TARGET, Component, Place

KIND = "service"
FAMILY = None  # it holds no data store: no endpoint for the guard or the locks
LABEL = "service"
PATH_KEY = None
PATH_IS_FILE = False


def plan(_component: Component) -> dict[str, list[tuple[str, str]]]:
    return {
        "disaster": [(TARGET, "DESTROYS: stops the application")],
        "restart": [(TARGET, "starts the application on the restored stores")],
        "verify": [(TARGET, "health check")],
        "cleanup": [(TARGET, "resumes the application as before the drill")],
    }


def stores(_component: Component) -> list[dict[str, Any]]:
    return []  # a service holds no data store


LIST = "drtool_services"


def from_sides(name: str, _source: tuple[str, Mapping[str, Any]] | None,
               target: tuple[str, Mapping[str, Any]] | None) -> Component:
    """A service from its host as resolved there: (host, values)."""
    if target is None:
        raise ValueError(f"service {name} has no host")
    host, values = target
    return Component(name, KIND, None, Place(host),
                     after=tuple(str(a) for a in values.get("after") or ()),
                     settings={"health_url": values.get("health_url")})


def waves(components: Iterable[Component]) -> list[list[str]]:
    """The services' names in the order they start: each wave's services follow (`after`)
    only services of earlier waves; the data stores they name are all restored before any
    service starts. A cycle leaves its services out (the schema refuses one)."""
    services = [c for c in components if c.kind == KIND]
    names = {c.name for c in services}
    needs = {c.name: {a for a in c.after if a in names} for c in services}
    out: list[list[str]] = []
    done: set[str] = set()
    while True:
        wave = [c.name for c in services if c.name not in done and needs[c.name] <= done]
        if not wave:
            return out
        out.append(wave)
        done.update(wave)
