"""Where drtool keeps its state and finds its Ansible content."""

from __future__ import annotations

import os
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
