#!/usr/bin/python
"""Ansible module: prove a backup's files are the ones the manifest recorded."""

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_integrity
short_description: Check every file of a backup against the sha256 in its manifest
description:
  - Reads C(manifest.json) in I(root) and checks, for each file whose path starts with one of
    I(components), that it exists with the recorded size and sha256. Files present but not in
    the manifest are reported too.
  - Fails listing every problem, each naming the file, before anything is restored.
options:
  root:
    description: The backup directory holding manifest.json.
    type: path
    required: true
  components:
    description: Folders of the components to check (postgres/main, redis/cache).
    type: list
    elements: str
    required: true
author: drtool maintainers
"""

RETURN = r"""
checked:
  description: Files the manifest lists for these components.
  type: int
  returned: always
problems:
  description: One dict (path, problem, expected, actual) per missing, extra or altered file.
  type: list
  returned: always
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.files import describe_tree


def describe(problem):
    """One line naming the file and what is wrong with it."""
    if problem["problem"] == "sha256 mismatch":
        return "%s: sha256 mismatch (manifest %s, file %s)" % (
            problem["path"], problem["expected"], problem["actual"])
    return "%s: %s" % (problem["path"], problem["problem"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            components=dict(type="list", elements="str", required=True),
        ),
        supports_check_mode=True,
    )
    root, components = module.params["root"], module.params["components"]
    manifest_path = os.path.join(root, "manifest.json")
    try:
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (manifest_path, exc), checked=0, problems=[])

    # A component's folder is its kind and name ("postgres/main"): a file is one of its own
    # when its path starts with that folder.
    expected = {
        entry["path"]: entry
        for entry in manifest.get("files", [])
        if any(entry["path"].startswith(component.rstrip("/") + "/") for component in components)
    }
    found = {}
    for component in components:
        folder = os.path.join(root, component)
        if os.path.isdir(folder):
            found.update({entry["path"]: entry for entry in describe_tree(folder, component)})

    problems = []
    for path, entry in sorted(expected.items()):
        actual = found.get(path)
        if actual is None:
            problems.append(dict(path=path, problem="missing", expected=entry["sha256"], actual=None))
        elif actual["sha256"] != entry["sha256"]:
            problems.append(dict(path=path, problem="sha256 mismatch", expected=entry["sha256"],
                                 actual=actual["sha256"]))
    for path in sorted(set(found) - set(expected)):
        problems.append(dict(path=path, problem="not in the manifest", expected=None,
                             actual=found[path]["sha256"]))

    if problems:
        module.fail_json(
            msg="backup %s failed its integrity check: %s" % (
                manifest.get("backup_id", root),
                "; ".join(describe(problem) for problem in problems)),
            checked=len(expected),
            problems=problems,
            drtool_check_failed=True,
        )
    module.exit_json(changed=False, checked=len(expected), problems=[])


if __name__ == "__main__":
    main()
