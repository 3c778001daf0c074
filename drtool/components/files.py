"""The files kind: a directory tree (an uploads folder, a filestore, a configuration
directory), archived with tar on its source host and restored into its target's folder.

The backup keeps the archive and a listing of every entry it holds (path, type, mode,
owner, group, size, mtime and sha256 of a regular file, a link's target); the verify compares
the restored tree with that listing on the target host (module files_facts) and publishes
the differences, which this module turns into checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drtool.components.model import SOURCE, TARGET, Component, Place
from drtool.core.manifest import FilesPart
from drtool.core.model import FAILED, PASSED, Check

KIND = "files"
FAMILY = None  # no server: the guard compares the trees' paths instead (config.py)
LABEL = "files"
PATH_KEY = "drtool_files_path"  # the tree: no path drtool deletes may be or hold it
PATH_IS_FILE = False
LIST = "drtool_file_trees"


def plan(component: Component) -> dict[str, list[tuple[str, str]]]:
    source = component.source.path if component.source else "the tree"
    target = component.target.path if component.target else "the tree"
    return {
        "backup": [(SOURCE, f"tar of {source} (owners, modes, mtimes; links kept as links) "
                            "and a listing of every entry with its sha256; to the store")],
        "snapshot": [(TARGET, f"safety archive of {target} as it is")],
        "disaster": [(TARGET, f"DESTROYS: empties {target}")],
        "restore": [(TARGET, f"checks the archive's sha256, then empties {target} and "
                             "extracts the backup into it")],
        "verify": [(TARGET, "compares every entry with the backup's listing, on the host: "
                            "missing, extra, changed (size, mode, owner, group, sha256, link)")],
        "cleanup": [(TARGET, "removes the safety snapshot and the staged backup")],
    }


def stores(component: Component) -> list[dict[str, Any]]:
    return [{"kind": "files", "role": role, "host": side.host, "component": component.name,
             "endpoint": side.path}
            for side, role in ((component.source, "source"), (component.target, "restore target"))
            if side is not None]


def from_sides(name: str, source: tuple[str, Mapping[str, Any]] | None,
               target: tuple[str, Mapping[str, Any]] | None) -> Component:
    """A files component from its sides as resolved on their hosts: (host, values)."""
    values = (source or target or ("", {}))[1]
    return Component(name, KIND, _place(source), _place(target),
                     settings={"exclude": list(values.get("exclude") or [])})


def _place(side: tuple[str, Mapping[str, Any]] | None) -> Place | None:
    if side is None:
        return None
    host, values = side
    path = str(values.get("path") or "")
    if not path:
        raise ValueError("a tree's side names no path")
    return Place(host, path=path)


# -- judging what the roles published -----------------------------------------------------------

def _check(name: str, target: str, expected: Any, actual: Any, ok: bool,
           detail: str = "") -> Check:
    return Check(name, target, expected, actual, PASSED if ok else FAILED, detail)


def problem_checks(prefix: str, where: str, facts: Mapping[str, Any]) -> list[Check]:
    """A failed `<prefix>.missing`, `.extra` or `.changed` check per difference files_facts
    listed (target `where:relative/path`; a changed entry's expected and actual hold the
    fields that differ)."""
    checks = []
    for problem in facts.get("problems") or []:
        kind = str(problem.get("problem"))
        target = f"{where}:{problem.get('path')}"
        if kind == "changed":
            differs = problem.get("differs") or {}
            checks.append(_check(
                f"{prefix}.changed", target,
                {k: v.get("expected") for k, v in differs.items()},
                {k: v.get("actual") for k, v in differs.items()}, False,
                f"{', '.join(differs)} differ{'s' if len(differs) == 1 else ''}"))
        else:
            checks.append(_check(f"{prefix}.{kind}", target, problem.get("expected"),
                                 problem.get("actual"), False))
    return checks


def summary(facts: Mapping[str, Any]) -> str:
    """'3 differences: 1 missing, 1 extra, 1 changed' (and how many are not named)."""
    total = int(facts.get("problem_count") or 0)
    if not total:
        return "every entry as listed"
    counts = facts.get("counts") or {}
    parts = ", ".join(f"{counts[k]} {k}" for k in ("missing", "extra", "changed")
                      if counts.get(k))
    named = len(facts.get("problems") or [])
    more = f"; the first {named} are named" if named < total else ""
    return f"{total} difference{'s' if total != 1 else ''}: {parts}{more}"


def verify_checks(part: FilesPart | None, where: str, facts: Mapping[str, Any]) -> list[Check]:
    """Judge a restored tree (`where`: host/component) against its part of the manifest and
    what files_facts found on the host: `files.tree` (the tree's totals are the backup's, no
    entry differs from the listing), then a check per difference named."""
    if part is None:
        return [_check("files.backup", where, "in the backup", "not in the backup", False,
                       "the backup holds no part for this tree")]
    total = int(facts.get("problem_count") or 0)
    totals = facts.get("totals") or {}
    ok = total == 0 and dict(totals) == dict(part.totals) and bool(facts.get("exists"))
    detail = summary(facts) if facts.get("exists") else f"{facts.get('path')} is not there"
    return [_check("files.tree", where, dict(part.totals), dict(totals), ok, detail),
            *problem_checks("files", where, facts)]


def rollback_checks(where: str, facts: Mapping[str, Any]) -> list[Check]:
    """Judge a tree's rollback (`facts`: drtool_files_rollback of one component, proved on
    its host against the snapshot's listing): `rollback.files.tree`, then a check per
    difference named. The snapshot's presence is judged by core.rollback."""
    total = facts.get("problem_count")
    ok = total is not None and int(total) == 0
    return [_check("rollback.files.tree", where, facts.get("expected"), facts.get("actual"), ok,
                   summary(facts) if total is not None else "the tree was not compared"),
            *problem_checks("rollback.files", where, facts)]
