"""The service kind: an application on a host, stopped before the disaster and started on
the restored data stores once the components it depends on are restored."""

from __future__ import annotations

from collections.abc import Mapping
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


def from_host(host: str, _settings: Mapping[str, Any], after: tuple[str, ...] = ()
              ) -> Component:
    return Component("app", KIND, None, Place(host), after=after)


def stores(_component: Component) -> list[dict[str, Any]]:
    return []  # a service holds no data store
