#!/usr/bin/python
"""Ansible module: the free space where a recovery's safety snapshot would be written, and
the size of what it would copy there."""

from __future__ import annotations

DOCUMENTATION = r"""
module: snapshot_room
short_description: Measure the room for a safety snapshot, and what it would hold
description:
  - "C(drtool recover) takes a safety snapshot of each recovery target before it restores
    onto it, so that a wrong recovery can itself be undone, where there is room. This module
    says how much room there is: the free bytes, for an unprivileged writer, of the file
    system that would hold I(path) (measured at its nearest existing folder: the snapshot's
    own folder is made later), and the size of each path in I(measure): a file's size, or
    the total of a folder's regular files (symbolic links are not followed)."
  - It changes nothing.
options:
  path:
    description: The folder the snapshot would be written to; it need not exist yet.
    type: path
    required: true
  measure:
    description: Files and folders whose size the snapshot would copy (an RDB file, a tree).
    type: list
    elements: path
    default: []
author: drtool maintainers
"""

RETURN = r"""
at:
  description: The existing folder the free space was measured at.
  type: str
  returned: always
free_bytes:
  description: The bytes an unprivileged writer may still write there.
  type: int
  returned: always
filesystem:
  description: "The file system's key on this machine: the sha256 of the machine id and the device number (hosts of one machine that share a file system share its room)."
  type: str
  returned: always
sizes:
  description: Each measured path's bytes, or null when it is not there.
  type: dict
  returned: always
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule


def nearest_existing(path):
    """`path`, or the nearest folder above it that exists."""
    path = os.path.abspath(path)
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def size_of(path):
    """A file's bytes, a folder's regular files' bytes (links not followed), or None."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return None
    if not os.path.isdir(path) or os.path.islink(path):
        return found.st_size
    def unreadable(error):
        raise error

    total = 0
    for folder, _dirs, files in os.walk(path, onerror=unreadable):
        for name in files:
            try:
                entry = os.lstat(os.path.join(folder, name))
            except FileNotFoundError:  # removed while walked
                continue
            if not os.path.islink(os.path.join(folder, name)):
                total += entry.st_size
    return total


def machine():
    for source in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(source, "rb") as handle:
                return hashlib.sha256(handle.read().strip()).hexdigest()
        except OSError:
            continue
    return ""


def main():
    module = AnsibleModule(argument_spec={
        "path": {"type": "path", "required": True},
        "measure": {"type": "list", "elements": "path", "default": []},
    }, supports_check_mode=True)
    at = nearest_existing(module.params["path"])
    try:
        stat = os.statvfs(at)
        device = os.stat(at).st_dev
    except OSError as exc:
        module.fail_json(msg="cannot measure the free space at %s: %s" % (at, exc.strerror))
    sizes = {}
    for path in module.params["measure"]:
        try:
            sizes[path] = size_of(path)
        except OSError as exc:
            module.fail_json(msg="cannot measure %s: %s" % (path, exc.strerror))
    module.exit_json(changed=False, at=at, free_bytes=stat.f_bavail * stat.f_frsize,
                     filesystem="%s:%d" % (machine(), device), sizes=sizes)


if __name__ == "__main__":
    main()
