#!/usr/bin/python
"""Ansible module: empty a directory tree, then (given an archive) extract it there."""

from __future__ import annotations

DOCUMENTATION = r"""
module: files_restore
short_description: Empty a directory tree and extract an archive of it in its place
description:
  - Removes everything under I(path), following no symbolic link; the folder itself stays.
    A tree that holds a mount point is refused before anything is removed.
  - Given I(archive) (made by files_backup), extracts it into I(path) with GNU tar, keeping
    every mode and mtime, and every owner and group when the module runs as root (owners
    by name, the id when the name is unknown on this host). Symbolic links are extracted as
    links; GNU tar never writes through a link the archive itself holds.
  - With I(absent), the folder itself is removed too (a safety snapshot found no tree).
  - Without I(archive) and I(absent), only empties the tree (the drill's disaster).
options:
  path:
    description: The tree's root folder.
    type: path
    required: true
  archive:
    description: The archive to extract into the emptied tree.
    type: path
  absent:
    description: Remove the folder itself too.
    type: bool
    default: false
  tar:
    description: The GNU tar command.
    type: str
    default: tar
author: drtool maintainers
"""

RETURN = r"""
removed:
  description: Top-level entries removed from the tree.
  type: int
  returned: success
owners:
  description: Whether owners and groups were restored (the module ran as root).
  type: bool
  returned: success
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.tree import empty, mount_points

TAR_ENV = {"LC_ALL": "C.UTF-8"}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            archive=dict(type="path", default=None),
            absent=dict(type="bool", default=False),
            tar=dict(type="str", default="tar"),
        ),
        supports_check_mode=False,
    )
    params = module.params
    root = params["path"].rstrip("/")
    if not root or root == "/":
        module.fail_json(msg="refusing to empty / as a tree")
    if params["archive"] and not os.path.isfile(params["archive"]):
        module.fail_json(msg="the archive %s is not there" % params["archive"])
    removed = 0
    if os.path.lexists(root) and not os.path.isdir(root):
        module.fail_json(msg="%s is not a folder: drtool does not replace it" % root)
    if os.path.isdir(root):
        try:
            mounts = mount_points(root)
            if mounts:
                module.fail_json(msg="%s holds %s, on another file system: drtool does not "
                                     "empty a tree across mount points; nothing was removed"
                                     % (root, ", ".join(mounts[:5])))
            removed = empty(root)
            if params["absent"]:
                os.rmdir(root)
        except OSError as exc:
            module.fail_json(msg="cannot empty %s: %s" % (root, exc), removed=removed)
    owners = os.geteuid() == 0
    if params["archive"] and not params["absent"]:
        os.makedirs(root, mode=0o700, exist_ok=True)
        rc, _out, err = module.run_command(
            [params["tar"], "--extract", "--file", params["archive"], "--directory", root,
             "--preserve-permissions", "--same-owner" if owners else "--no-same-owner"],
            environ_update=TAR_ENV)
        if rc != 0:
            module.fail_json(msg="tar could not extract %s into %s (exit %d): %s"
                                 % (params["archive"], root, rc, err.strip()), removed=removed)
    module.exit_json(changed=True, removed=removed, owners=owners)


if __name__ == "__main__":
    main()
