"""The files kind on drtool's side: the component from its described sides, its schema, its
manifest part, the checks made of what verify and the rollback published, and the
production guard's rule for trees on one machine."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from drtool import components as kinds
from drtool.components import Component, Place, files, schema
from drtool.config import guard_problems, tree_problems
from drtool.core.manifest import FilesPart, build_manifest, manifest_from_json, path_problem
from drtool.core.rollback import rollback_checks
from drtool.drill import facts

ROOT = Path(__file__).resolve().parents[2]
TOTALS = {"entries": 4, "files": 2, "directories": 1, "symlinks": 1, "other": 0, "bytes": 12}
BACKUP = {"exists": True, "totals": TOTALS, "consistent_at": "2026-11-22T05:00:00+00:00",
          "size": 30, "path": "/srv/shop/uploads", "skipped": [], "warnings_tar": "",
          "files": [{"path": "files/uploads/listing.jsonl", "size": 10, "sha256": "a" * 64},
                    {"path": "files/uploads/tree.tar", "size": 20, "sha256": "b" * 64}]}


def tree(name: str = "uploads", source: tuple[str, str] = ("h1", "/srv/shop/uploads"),
         target: tuple[str, str] = ("h2", "/srv/shop/uploads")) -> Component:
    return Component(name, "files", Place(source[0], path=source[1]),
                     Place(target[0], path=target[1]))


def test_a_tree_is_built_from_its_described_sides_and_planned():
    component = files.from_sides("uploads", ("h1", {"path": "/srv/a", "exclude": ["*.tmp"]}),
                                 ("h2", {"path": "/srv/b", "exclude": ["*.tmp"]}))
    assert (component.source, component.target) == (Place("h1", path="/srv/a"),
                                                     Place("h2", path="/srv/b"))
    assert component.settings == {"exclude": ["*.tmp"]} and kinds.family(component) is None
    assert kinds.KINDS["files"] is files
    plan = files.plan(component)
    assert plan["disaster"] == [("target", "DESTROYS: empties /srv/b")]
    assert [s["endpoint"] for s in files.stores(component)] == ["/srv/a", "/srv/b"]
    with pytest.raises(ValueError):
        files.from_sides("x", ("h1", {}), ("h2", {"path": "/srv/b"}))


def test_the_schema_takes_the_roles_keys_and_wants_a_path_on_each_side():
    good = {"name": "uploads", "exclude": ["*.tmp", "cache/"], "max_problems": 20,
            "source": {"host": "h1", "path": "/srv/a"},
            "target": {"host": "h2", "path": "/srv/b", "tar": "/usr/local/bin/gtar"}}
    assert schema.problems_of({"drtool_file_trees": [good]}, {"h1", "h2"}, ROOT / "roles") == []
    bad = {"name": "uploads", "exclude": "*.tmp", "source": {"host": "h1", "path": "/srv/a"},
           "target": {"host": "h2", "port": 1}}
    found = schema.problems_of({"drtool_file_trees": [bad]}, {"h1", "h2"}, ROOT / "roles")
    assert ("drtool_file_trees[0].exclude", "must be a list, got '*.tmp'") in found
    assert ("drtool_file_trees[0].target.path", "is missing") in found
    assert any(key == "drtool_file_trees[0].target" and "unknown key port" in message
               for key, message in found)


def test_the_manifest_holds_a_part_per_tree_and_an_older_version_2_has_none():
    manifest = build_manifest("bk-1", "e", "2026-11-22T05:00:03+00:00", {}, {},
                              {"uploads": "h1"}, files_results={"uploads": BACKUP})
    (part,) = manifest.trees
    assert part == FilesPart("uploads", "h1", "/srv/shop/uploads", TOTALS,
                             "2026-11-22T05:00:00+00:00", 30)
    assert manifest.tree_part("uploads") == part and manifest.size == 30
    assert manifest.consistent_at == "2026-11-22T05:00:00.000+00:00"
    assert [f.path for f in manifest.files] == ["files/uploads/listing.jsonl",
                                                "files/uploads/tree.tar"]
    assert manifest_from_json(manifest.to_json()) == manifest
    older = json.loads(manifest.to_json())
    del older["trees"]
    older["files"] = [{"path": "redis/dump.rdb", "size": 5, "sha256": "c" * 64}]
    assert manifest_from_json(json.dumps(older)).trees == ()
    assert path_problem("files/uploads/tree.tar") is None


def verified(problems: list[dict[str, Any]], counts: dict[str, int],
             totals: dict[str, int] = TOTALS) -> dict[str, Any]:
    return {"exists": True, "path": "/srv/b", "totals": totals, "expected_totals": TOTALS,
            "problems": problems, "problem_count": sum(counts.values()), "counts": counts}


def part() -> FilesPart:
    return FilesPart("uploads", "h1", "/srv/a", TOTALS, "2026-11-22T05:00:00+00:00", 30)


def test_a_restored_tree_equal_to_its_listing_passes_one_check():
    (check,) = files.verify_checks(part(), "h2/uploads", verified([], {}))
    assert (check.name, check.target, check.passed, check.detail) == (
        "files.tree", "h2/uploads", True, "every entry as listed")


def test_each_difference_is_a_check_naming_the_file_and_what_differs():
    problems = [
        {"path": "a b.txt", "problem": "changed",
         "differs": {"size": {"expected": 1, "actual": 2},
                     "sha256": {"expected": "x", "actual": "y"}}},
        {"path": "é.txt", "problem": "missing", "expected": "file, 3 bytes", "actual": "missing"},
        {"path": "new", "problem": "extra", "expected": "absent", "actual": "file, 1 bytes"},
    ]
    checks = files.verify_checks(part(), "h2/uploads", verified(
        problems, {"missing": 1, "extra": 60, "changed": 1}, dict(TOTALS, bytes=13)))
    assert [(c.name, c.target, c.passed) for c in checks] == [
        ("files.tree", "h2/uploads", False), ("files.changed", "h2/uploads:a b.txt", False),
        ("files.missing", "h2/uploads:é.txt", False), ("files.extra", "h2/uploads:new", False)]
    assert checks[0].detail == ("62 differences: 1 missing, 60 extra, 1 changed; the first 3 "
                                "are named")
    assert (checks[1].expected, checks[1].actual, checks[1].detail) == (
        {"size": 1, "sha256": "x"}, {"size": 2, "sha256": "y"}, "size, sha256 differ")
    # A tree whose part the backup lacks is no pass either.
    (missing,) = files.verify_checks(None, "h2/uploads", verified([], {}))
    assert (missing.name, missing.passed) == ("files.backup", False)


def test_the_verify_phase_judges_every_tree_and_one_that_published_nothing_fails():
    manifest = build_manifest("bk-1", "e", "2026-11-22T05:00:03+00:00", {}, {},
                              {"uploads": "h1"}, files_results={"uploads": BACKUP})
    stats = {"drtool_files_verify": {"uploads": verified([], {})}}
    checks = facts.verify_checks([tree(target=("h2", "/srv/b"))], manifest, stats, {}, ())
    assert [(c.name, c.target, c.passed) for c in checks] == [("files.tree", "h2/uploads", True)]
    checks = facts.verify_checks([tree(target=("h2", "/srv/b"))], manifest, {}, {}, ())
    assert [(c.name, c.target, c.passed) for c in checks] == [
        ("files.measured", "h2/uploads", False)]


def test_a_tree_rollback_is_proved_against_the_snapshots_listing():
    proved = {"snapshot": True, "already": False, "expected": TOTALS, "actual": TOTALS,
              "problem_count": 0, "counts": {}, "problems": []}
    checks = rollback_checks({}, {}, False, {"uploads": proved})
    assert [(c.name, c.target, c.passed) for c in checks] == [
        ("rollback.files.tree", "uploads", True)]
    differs = dict(proved, problem_count=1, counts={"missing": 1},
                   problems=[{"path": "x", "problem": "missing", "expected": "dir",
                              "actual": "missing"}])
    assert [(c.name, c.target, c.passed) for c in rollback_checks({}, {}, False,
                                                                  {"uploads": differs})] == [
        ("rollback.files.tree", "uploads", False), ("rollback.files.missing", "uploads:x", False)]
    gone = {"snapshot": False, "already": False}
    assert [c.passed for c in rollback_checks({}, {}, True, {"uploads": gone})] == [True]
    assert [c.passed for c in rollback_checks({}, {}, False, {"uploads": gone})] == [False]
    already = {"snapshot": True, "already": True}
    assert [(c.name, c.passed) for c in rollback_checks({}, {}, False, {"u": already})] == [
        ("rollback.files.snapshot", True)]


LOCAL = {"h1": {"connection": "local"}, "h2": {"connection": "local"}}
REMOTE = {"h1": {"connection": "ssh", "address": "10.9.0.1", "connection_address": "10.9.0.1"},
          "h2": {"connection": "ssh", "address": "10.9.0.2", "connection_address": "10.9.0.2"}}


@pytest.mark.parametrize(("target", "relation"), [
    ("/srv/shop/uploads", "is"), ("/srv/shop/uploads/", "is"), ("/srv/shop", "holds"),
    ("/srv/shop/uploads/restored", "lies inside"),
])
def test_a_target_tree_that_is_in_or_holds_its_source_on_one_machine_is_refused(target,
                                                                              relation):
    component = tree(target=("h2", target))
    (problem,) = tree_problems((component,), LOCAL)
    assert problem.host == "h2" and problem.key == "drtool_file_trees"
    assert problem.message.startswith("refused as a destructive target: the tree ")
    assert (f"{relation} the source tree of uploads on h1 (drtool_files_path: "
            "/srv/shop/uploads), the same machine; the disaster empties it") in problem.message
    # The guard reports it with its other refusals.
    assert problem in guard_problems((component,), {h: dict(v, tier="sandbox",
                                                            drill_target=True)
                                                    for h, v in LOCAL.items()})


def test_trees_side_by_side_or_on_other_machines_are_allowed_and_slash_never():
    assert tree_problems((tree(target=("h2", "/srv/shop/uploads-restored")),), LOCAL) == []
    assert tree_problems((tree(target=("h2", "/srv/shop/uploads")),), REMOTE) == []
    (root,) = tree_problems((tree(target=("h2", "/")),), REMOTE)
    assert "the tree / of uploads is /" in root.message


def test_a_target_tree_holding_another_components_data_directory_is_refused():
    pg = Component("main", "postgres", Place("h1", "127.0.0.1", 5432, "/var/lib/pg/data"),
                   Place("h2", "127.0.0.1", 5433, "/srv/pg/data"))
    (problem,) = tree_problems((tree(target=("h2", "/srv")), pg), REMOTE)
    assert "holds the restore target data directory of main on h2" in problem.message


def load_filter() -> Any:
    path = ROOT / "collections/ansible_collections/drtool/drill/plugins/filter/components.py"
    spec = importlib.util.spec_from_file_location("drtool_filter_components", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_roles_find_and_resolve_a_tree_on_its_hosts():
    components = load_filter()
    trees = [{"name": "uploads", "exclude": ["*.tmp"], "source": {"host": "h1", "path": "/a"},
              "target": {"host": "h2", "path": "/b", "tar": "gtar"}}]
    host_vars = {"drtool_file_trees": trees, "drtool_files_max_problems": 10}
    assert components.here(host_vars, "h2", "target", ["files"]) == ["uploads"]
    assert components.here(host_vars, "h2", "target", ["postgres", "redis"]) == []
    defaults = {"drtool_files_path": "/srv/files", "drtool_files_exclude": [],
                "drtool_files_tar": "tar", "drtool_files_max_problems": 50}
    resolved = components.resolve(trees, "uploads", "target", host_vars, defaults,
                                   "drtool_files_")
    assert {k: resolved[k] for k in ("path", "exclude", "tar", "max_problems")} == {
        "path": "/b", "exclude": ["*.tmp"], "tar": "gtar", "max_problems": 10}
