"""Where drtool keeps its state and finds its Ansible content."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import drtool
from drtool.errors import OrchestrationError

CONTENT_MARKER = "ansible.cfg"


def drtool_home() -> Path:
    """Return $DRTOOL_HOME, or ~/.local/share/drtool; always absolute."""
    raw = os.environ.get("DRTOOL_HOME") or os.path.join("~", ".local", "share", "drtool")
    return Path(raw).expanduser().resolve()


def content_root() -> Path:
    """Return the directory holding ansible.cfg, playbooks/, roles/ and inventories/.

    A source checkout (or editable install) uses the checkout; a wheel carries a copy in
    drtool/_content.
    """
    package = Path(drtool.__file__).resolve().parent
    for candidate in (package.parent, package / "_content"):
        if (candidate / CONTENT_MARKER).is_file() and (candidate / "playbooks").is_dir():
            return candidate
    raise OrchestrationError(f"drtool's Ansible content (ansible.cfg, playbooks/) is missing "
                             f"next to {package}: reinstall drtool")


def evidence_dir(env: str) -> Path:
    return drtool_home() / "evidence" / env


def backups_dir(env: str) -> Path:
    return drtool_home() / "backups" / env


def history_db() -> Path:
    """The drill history (SQLite), shared by every environment."""
    return drtool_home() / "history.sqlite3"


def runs_dir() -> Path:
    """Scratch space for ansible-runner's private data dirs and Ansible's temp files."""
    return drtool_home() / "run"


def controller_id() -> str:
    """Which drtool this is, for the leases it takes on targets' hosts: this machine's name
    and a digest of its DRTOOL_HOME (two homes are two controllers)."""
    import socket  # noqa: PLC0415

    home = hashlib.sha256(str(drtool_home()).encode()).hexdigest()[:12]
    return f"{socket.gethostname()}:{home}"


def fallback_dir() -> Path:
    """Where a drill writes its journal and Ansible's artifacts when DRTOOL_HOME is full:
    the system's temporary folder (usually another file system), one folder per home."""
    home = hashlib.sha256(str(drtool_home()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"drtool-{os.getuid()}-{home}"
