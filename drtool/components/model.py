"""A component and its two sides, as data. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SOURCE, TARGET = "source", "target"
# The side `drtool recover` restores onto, on the day of a real disaster: in a recovery, it is
# each component's target (see drtool.components.from_described).
RECOVERY = "recovery"


@dataclass(frozen=True)
class Place:
    """One side of a component: the inventory host it is on and what is there. `address`
    and `port`: where its server listens, as seen from that host; `path`: its data on disk
    (a PostgreSQL data directory, a Redis RDB file), None when not declared."""

    host: str
    address: str | None = None
    port: int | None = None
    path: str | None = None


@dataclass(frozen=True)
class Component:
    """A named part of the estate: its kind, its source (None for a service) and target."""

    name: str
    kind: str
    source: Place | None
    target: Place | None
    databases: tuple[str, ...] = ()  # a postgres component's databases
    # A postgres component declared with `databases: all`: its databases are the ones the
    # preflight found on the source for a fresh backup, or its backup's manifest holds
    # (empty until either is known; see postgres.with_found and postgres.found_in).
    all_databases: bool = False
    after: tuple[str, ...] = ()  # a service's: the components restored before it starts
    settings: Mapping[str, Any] = field(default_factory=dict)

    def place(self, side: str) -> Place | None:
        return self.source if side == SOURCE else self.target

    def hosts(self) -> list[str]:
        return sorted({p.host for p in (self.source, self.target) if p is not None})
