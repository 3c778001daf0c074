"""How a postgres component is backed up and restored: its `method`, one module here each.

A method is a module of this package (its NAME and what the engine must know of it) and a
folder of entry points in the postgres role (roles/drtool_postgres/tasks/methods/NAME/, one
file per phase it acts in); the dump method's entry points are the role's own tasks/*.yml.
Adding a method (WAL-G, Barman) is adding those files: the component schema takes its name
from here, and the role dispatches on it.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

DEFAULT = "dump"


def _discover() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.NAME] = module
    return found


METHODS: dict[str, ModuleType] = _discover()


def names() -> list[str]:
    return sorted(METHODS)


def is_physical(method: str) -> bool:
    """Whether the method restores a whole cluster from its files (and WAL), rather than
    databases from dumps kept in drtool's store."""
    return bool(getattr(METHODS.get(method), "PHYSICAL", False))


def keeps_repository(method: str) -> bool:
    """Whether the method's backups live in its tool's own repository (which `drtool backups
    verify` has that tool check, in the method's `backups` entry point) rather than as files
    in drtool's store."""
    return bool(getattr(METHODS.get(method), "REPOSITORY", False))
