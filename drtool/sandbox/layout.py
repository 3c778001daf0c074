"""Where the sandbox keeps everything and which ports it uses.

inventories/sandbox/ and inventories/sandbox-estate/ derive the same ports from
DRTOOL_SANDBOX_PORT_BASE (default 25400): keep the offsets here and there in step. The
default is below Linux's ephemeral port range (32768-60999), so an outgoing connection's
source port can never hold one of the sandbox's ports when a server starts.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_PORT_BASE = 25400
OFFSETS = {"pg_primary": 1, "pg_target": 2, "redis_primary": 3, "redis_target": 4, "app": 5,
           "s3": 6, "queue_primary": 7, "queue_target": 8, "worker": 9, "pg_physical": 10}
PG_BIN = Path("/usr/lib/postgresql/15/bin")
STATE = "state.json"


def port_base() -> int:
    raw = os.environ.get("DRTOOL_SANDBOX_PORT_BASE", str(DEFAULT_PORT_BASE))
    if not raw.isdigit() or not 1024 <= int(raw) <= 65000:
        from drtool.errors import ConfigError  # noqa: PLC0415

        raise ConfigError(
            f"DRTOOL_SANDBOX_PORT_BASE must be a port from 1024 to 65000, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Layout:
    root: Path  # $DRTOOL_HOME/sandbox
    port_base: int
    postgres_root: Path  # where the clusters live (see postgres_root_for)

    def port(self, service: str) -> int:
        return self.port_base + OFFSETS[service]

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    def secret(self, name: str) -> str:
        return (self.secrets / name).read_text(encoding="utf-8").strip()

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def save(self) -> None:
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        (self.root / STATE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def postgres_root_for(root: Path, postgres_can_enter: bool) -> Path:
    """PostgreSQL runs as the `postgres` user when drtool runs as root, and must reach its
    data directory. When `root` (the sandbox's or the lab's folder) lies under a directory it
    cannot enter (root's home, a private temp dir), the clusters go to
    /var/lib/drtool/<root's name>-<hash> instead, and the state file records where."""
    if postgres_can_enter:
        return root / "postgres"
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path("/var/lib/drtool") / f"{root.name}-{digest}" / "postgres"


def load(root: Path) -> Layout | None:
    """The layout recorded by `sandbox up`, or None when the sandbox was never set up."""
    try:
        data = json.loads((root / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Layout(Path(data["root"]), int(data["port_base"]), Path(data["postgres_root"]))
