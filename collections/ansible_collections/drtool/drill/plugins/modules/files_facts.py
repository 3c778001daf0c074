#!/usr/bin/python
"""Ansible module: a directory tree compared, on its host, with the listing of a backup."""

from __future__ import annotations

DOCUMENTATION = r"""
module: files_facts
short_description: Compare a directory tree with a files_backup listing, entry by entry
description:
  - "Reads I(listing) (written by files_backup: its header holds the excludes the backup
    applied, the same ones are applied here) and walks I(path) without following any
    symbolic link. A link is compared by its target; a regular file by size, mode, owner,
    group, mtime and the sha256 of its content, read with O_NOFOLLOW (never through a link)."
  - "Reports each missing, extra and changed entry (for a changed one, each field that
    differs), the first I(max_problems) of them by path, and how many there are in all. It
    judges nothing: drtool does, from what it reports."
options:
  path:
    description: The tree's root folder.
    type: path
    required: true
  listing:
    description: The listing to compare with (listing.jsonl of a backup or snapshot).
    type: path
    required: true
  max_problems:
    description: How many problems are listed (all are counted).
    type: int
    default: 50
author: drtool maintainers
"""

RETURN = r"""
exists:
  description: Whether the tree is there.
  type: bool
  returned: success
totals:
  description: "What the tree holds now: entries, files, directories, symlinks, other, bytes."
  type: dict
  returned: success
expected_totals:
  description: What the listing holds.
  type: dict
  returned: success
problems:
  description: "The first max_problems differences: path, problem (missing, extra, changed), and expected/actual or differs."
  type: list
  returned: success
problem_count:
  description: Every difference counted.
  type: int
  returned: success
counts:
  description: Missing, extra and changed entries.
  type: dict
  returned: success
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.tree import (
    TreeError,
    compare,
    measure,
    read_listing,
    totals_of,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            listing=dict(type="path", required=True),
            max_problems=dict(type="int", default=50),
        ),
        supports_check_mode=True,
    )
    params = module.params
    root = params["path"].rstrip("/") or "/"
    try:
        header, expected = read_listing(params["listing"])
    except TreeError as exc:
        module.fail_json(msg=str(exc))
    try:
        actual = measure(root, header.get("exclude") or [], expected)
    except OSError as exc:
        module.fail_json(msg="cannot read the tree %s: %s" % (root, exc))
    found = compare(expected, actual, max(0, params["max_problems"]))
    module.exit_json(changed=False, path=root, exists=os.path.isdir(root),
                     totals=totals_of(actual.values()),
                     expected_totals=header.get("totals") or totals_of(expected.values()),
                     consistent_at=header.get("consistent_at"), **found)


if __name__ == "__main__":
    main()
