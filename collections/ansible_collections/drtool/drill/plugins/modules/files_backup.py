#!/usr/bin/python
"""Ansible module: one archive of a directory tree, and the listing of what it holds."""

from __future__ import annotations

DOCUMENTATION = r"""
module: files_backup
short_description: Archive a directory tree with tar and list every entry the archive holds
description:
  - Walks I(path) without following any symbolic link, applying I(exclude), and refuses the
    tree, naming each one, when a name holds a control character or is not valid UTF-8.
  - "Archives exactly those entries with GNU tar (POSIX format: owner and group by name and
    id, mode, mtime; a symbolic link is stored as a link, never followed) into
    I(dest)/tree.tar."
  - "Reads the archive back to write I(dest)/listing.jsonl (a header with the totals, then
    one JSON object per entry: path, type, mode, owner, group, size, mtime and sha256 of a
    regular file, a link's target), so the listing is what a restore extracts."
  - "With I(missing_ok), a tree that does not exist is recorded as absent (a listing with no
    entry and no archive): a safety snapshot of a restore target that is not there yet."
options:
  path:
    description: The tree's root folder.
    type: path
    required: true
  dest:
    description: Folder the archive and the listing are written into.
    type: path
    required: true
  backup_root:
    description: Folder the returned file paths are relative to.
    type: path
    required: true
  exclude:
    description: "Patterns left out (module_utils/tree.py: compile_excludes)."
    type: list
    elements: str
    default: []
  tar:
    description: The GNU tar command.
    type: str
    default: tar
  missing_ok:
    description: Record a tree that does not exist as absent instead of failing.
    type: bool
    default: false
author: drtool maintainers
"""

RETURN = r"""
exists:
  description: Whether the tree was there.
  type: bool
  returned: success
totals:
  description: Entries, files, directories, symlinks, other, and bytes of the files.
  type: dict
  returned: success
consistent_at:
  description: When tar began reading the tree (UTC).
  type: str
  returned: success
files:
  description: The archive and the listing, each with its size and sha256.
  type: list
  returned: success
size:
  description: Bytes of those files.
  type: int
  returned: success
warnings_tar:
  description: What tar said when a file changed while it was read (exit 1).
  type: str
  returned: success
skipped:
  description: Sockets in the tree (tar cannot archive one).
  type: list
  returned: success
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.files import sha256_file
from ansible_collections.drtool.drill.plugins.module_utils.tree import (
    TreeError,
    listing_from_archive,
    refusal,
    totals_of,
    walk,
    write_listing,
)

# One name a line: ansible-doc warns about a module-level tuple assignment.
ARCHIVE = "tree.tar"
LISTING = "listing.jsonl"
# tar reads and writes names as UTF-8 whatever the host's locale: a name is written in the
# archive as it is listed.
TAR_ENV = {"LC_ALL": "C.UTF-8"}


def entry(dest, backup_root, name, size=None, sha256=None):
    path = os.path.join(dest, name)
    return {"path": os.path.relpath(path, backup_root).replace(os.sep, "/"),
            "size": os.path.getsize(path) if size is None else size,
            "sha256": sha256_file(path) if sha256 is None else sha256}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            backup_root=dict(type="path", required=True),
            exclude=dict(type="list", elements="str", default=[]),
            tar=dict(type="str", default="tar"),
            missing_ok=dict(type="bool", default=False),
        ),
        supports_check_mode=False,
    )
    params = module.params
    root, dest = params["path"].rstrip("/") or "/", params["dest"]
    os.makedirs(dest, mode=0o700, exist_ok=True)
    listing, archive = os.path.join(dest, LISTING), os.path.join(dest, ARCHIVE)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    header = {"root": root, "exclude": params["exclude"]}

    if not os.path.exists(root) and params["missing_ok"]:
        totals = totals_of([])
        write_listing(listing, dict(header, exists=False, totals=totals, consistent_at=now), [])
        os.chmod(listing, 0o600)
        files = [entry(dest, params["backup_root"], LISTING)]
        module.exit_json(changed=True, exists=False, totals=totals, consistent_at=now,
                         files=files, size=sum(f["size"] for f in files), skipped=[],
                         warnings_tar="")
    if not os.path.isdir(root):
        module.fail_json(msg="%s is not a folder on this host: nothing to back up" % root)
    try:
        entries, bad, sockets = walk(root, params["exclude"])
    except OSError as exc:
        module.fail_json(msg="cannot read the tree %s: %s" % (root, exc))
    if bad:
        module.fail_json(msg=refusal(root, bad), refused=len(bad))

    names = os.path.join(dest, ".tree.names")
    with open(names, "wb") as handle:
        for path, _info in entries:
            handle.write(os.fsencode(path) + b"\0")
    consistent_at = datetime.datetime.now(datetime.timezone.utc).isoformat()
    try:
        rc, _out, err = module.run_command(
            [params["tar"], "--create", "--file", archive, "--directory", root,
             "--format=posix", "--pax-option=delete=atime,delete=ctime", "--no-recursion",
             "--null", "--files-from", names],
            environ_update=TAR_ENV)
    finally:
        os.unlink(names)
    # 1: a file changed while tar read it; the archive holds what tar read, and the listing
    # is read from the archive. Anything else is a failure (a file that could not be read).
    if rc not in (0, 1):
        module.fail_json(msg="tar could not archive %s (exit %d): %s" % (root, rc, err.strip()))
    os.chmod(archive, 0o600)
    if sockets:
        module.warn("%d socket%s in %s left out (tar cannot archive one): %s" % (
            len(sockets), "" if len(sockets) == 1 else "s", root, ", ".join(sockets[:10])))
    try:
        listed, size, sha256 = listing_from_archive(archive)
    except (TreeError, OSError) as exc:
        module.fail_json(msg="cannot read back the archive of %s: %s" % (root, exc))
    totals = totals_of(listed)
    write_listing(listing, dict(header, exists=True, totals=totals,
                                consistent_at=consistent_at), listed)
    os.chmod(listing, 0o600)
    files = [entry(dest, params["backup_root"], ARCHIVE, size, sha256),
             entry(dest, params["backup_root"], LISTING)]
    module.exit_json(changed=True, exists=True, totals=totals, consistent_at=consistent_at,
                     files=sorted(files, key=lambda f: f["path"]),
                     size=sum(f["size"] for f in files), skipped=sockets,
                     warnings_tar=err.strip() if rc == 1 else "")


if __name__ == "__main__":
    main()
