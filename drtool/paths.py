"""Where drtool keeps its state and finds its Ansible content."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
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


def ssh_control_root() -> Path:
    """Where this home's ssh ControlPersist sockets go: a short path in the system's
    temporary folder, because a socket's path may not be longer than 107 bytes (ssh adds a
    suffix of its own) and DRTOOL_HOME can be long. One folder per user and home."""
    home = hashlib.sha256(str(drtool_home()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"drtool-ssh-{os.getuid()}" / home


def controller_id() -> str:
    """Which drtool this is, for the leases it takes on targets' hosts: a random id made
    once per DRTOOL_HOME (a cloned machine keeps the hostname, not the home's id), with
    this machine's name for the reader."""
    import socket  # noqa: PLC0415
    import uuid  # noqa: PLC0415

    path = drtool_home() / "controller-id"
    try:
        ident = path.read_text(encoding="utf-8").strip()
    except OSError:
        ident = ""
    if not ident:
        ident = uuid.uuid4().hex[:16]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(ident + "\n", encoding="utf-8")
        except OSError:  # a full or read-only home: this run's id is still its own
            pass
    return f"{socket.gethostname()}:{ident}"


def fallback_dir(create: bool = True) -> Path:
    """Where a drill writes its journal and Ansible's artifacts when DRTOOL_HOME is full:
    the system's temporary folder (usually another file system), one folder per home and
    user. Created mode 0700; raises OSError when what is there is not a folder of this
    user's that only this user can use (another user could have planted it)."""
    home = hashlib.sha256(str(drtool_home()).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"drtool-{os.getuid()}-{home}"
    if create:
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    st = os.lstat(folder)  # FileNotFoundError (an OSError) when not created and not there
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{folder} is not a private folder of this user's: not used")
    return folder
