"""The files kind's pure helpers (module_utils/tree.py), on real folders under tmp_path: which
entries a tree holds (excludes, links never followed, names that cannot be listed), the
listing read back from an archive, the listing file, and what differs between a listing
and a tree."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests import module_utils

tree = module_utils.load("tree")


def make_tree(root: Path, outside: Path) -> Path:
    """A small tree: nested folders, excluded entries, a link inside and one out of it to a
    folder holding a file, names with a space and non-ASCII characters."""
    outside.mkdir()
    (outside / "secret.txt").write_text("outside")
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "deep.txt").write_text("deep")
    (root / "a" / "x.tmp").write_text("temporary")
    (root / "cache").mkdir()
    (root / "cache" / "thumb").write_text("cached")
    (root / "keep.tmp").mkdir()  # a pattern without a trailing slash matches folders too
    (root / "Résumé d'équipe.txt").write_text("é")
    (root / "inside").symlink_to("a/b")
    (root / "out").symlink_to(outside)
    return root


def paths(entries: list[tuple[str, os.stat_result]]) -> list[str]:
    return [path for path, _info in entries]


@pytest.mark.parametrize(("name", "why"), [
    ("line\nbreak", "holds a control character"), ("tab\there", "holds a control character"),
    ("esc\x1b[31m", "holds a control character"), ("del\x7f", "holds a control character"),
    (os.fsdecode(b"latin1-\xe9"), "is not valid UTF-8"),
])
def test_a_name_with_a_control_character_or_invalid_utf8_cannot_be_listed(name, why):
    assert tree.name_problem(name) == why
    assert "\n" not in tree.shown(name) and "\x1b" not in tree.shown(name)


def test_names_with_spaces_and_any_script_can_be_listed():
    for name in ("annual report.txt", "Résumé – équipe", "日本語.md", "non\u00a0breaking"):
        assert tree.name_problem(name) is None
    assert tree.shown(os.fsdecode(b"a\xe9\n")) == "'a\\xe9\\n'"


@pytest.mark.parametrize(("path", "is_dir", "out"), [
    ("x.tmp", False, True), ("a/b/x.tmp", False, True), ("cache", True, True),
    ("a/cache", True, True), ("cache", False, False), ("var/log", True, True),
    ("var/log", False, True), ("other/var/log", True, False), ("thumbs", True, True),
    ("a/thumbs", True, False),
    (".", True, False), ("x.tmpl", False, False),
])
def test_excludes_match_a_name_anywhere_or_a_path_from_the_root_and_folders_only(path, is_dir,
                                                                                 out):
    excludes = tree.compile_excludes(["*.tmp", "cache/", "var/log", "/thumbs", "", "/"])
    assert tree.excluded(path, is_dir, excludes) is out


def test_the_walk_never_follows_a_link_and_skips_what_is_excluded(tmp_path):
    root = make_tree(tmp_path / "t", tmp_path / "outside")
    entries, bad, sockets = tree.walk(str(root), ["*.tmp", "cache/"])
    assert paths(entries) == [".", "Résumé d'équipe.txt", "a", "a/b", "a/b/deep.txt", "inside",
                              "out"]
    assert bad == [] and sockets == []
    assert all("secret" not in path for path in paths(entries))


def test_bad_names_are_collected_not_descended_into_and_sockets_skipped(tmp_path):
    root = tmp_path / "t"
    (root / "bad\ndir").mkdir(parents=True)
    (root / "bad\ndir" / "inner").write_text("x")
    Path(os.fsdecode(os.fsencode(root) + b"/latin-\xe9")).write_text("x")
    (root / "link").symlink_to("to\nnowhere")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "app.sock"))
    try:
        entries, bad, sockets = tree.walk(str(root))
    finally:
        server.close()
    assert paths(entries) == ["."]
    assert sorted(bad) == [("bad\ndir", "holds a control character"),
                           (os.fsdecode(b"latin-\xe9"), "is not valid UTF-8"),
                           ("link", "points to a name that holds a control character")]
    assert sockets == ["app.sock"]
    message = tree.refusal("/srv/up", bad)
    assert message.startswith("3 names in /srv/up cannot be backed up: 'bad\\ndir' holds a "
                              "control character; 'latin-\\xe9' is not valid UTF-8")
    assert "\n" not in message and "exclude them (drtool_files_exclude)" in message


def archive_of(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, content in members:
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return data.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, **values: Any) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.mode, member.uname, member.gname, member.uid, member.gid = 0o644, "www", "web", 33, 34
    member.mtime = 1_600_000_000
    for key, value in values.items():
        setattr(member, key, value)
    return member


def test_the_listing_is_read_back_from_the_archive_with_its_own_sha256(tmp_path):
    content = b"hello\n"
    raw = archive_of([
        (info(".", tarfile.DIRTYPE, mode=0o2775), None),
        (info("docs/Résumé – équipe.txt", size=len(content), mode=0o600), content),
        (info("docs/hard", tarfile.LNKTYPE, linkname="docs/Résumé – équipe.txt"), None),
        (info("out", tarfile.SYMTYPE, linkname="/etc", uname="", uid=1234), None),
    ])
    (tmp_path / "t.tar").write_bytes(raw)
    entries, size, sha256 = tree.listing_from_archive(str(tmp_path / "t.tar"))
    assert (size, sha256) == (len(raw), hashlib.sha256(raw).hexdigest())
    by_path = {e["path"]: e for e in entries}
    assert [e["path"] for e in entries] == [".", "docs/Résumé – équipe.txt", "docs/hard", "out"]
    assert by_path["."] == {"path": ".", "type": "dir", "mode": "2775", "owner": "www",
                            "group": "web", "uid": 33, "gid": 34}
    file = by_path["docs/Résumé – équipe.txt"]
    assert (file["type"], file["size"], file["mode"], file["mtime"], file["sha256"]) == (
        "file", 6, "0600", 1_600_000_000, hashlib.sha256(content).hexdigest())
    assert by_path["docs/hard"]["sha256"] == file["sha256"]
    assert by_path["docs/hard"]["type"] == "file"
    assert by_path["out"]["target"] == "/etc" and by_path["out"]["owner"] == "1234"
    assert tree.totals_of(entries) == {"entries": 4, "files": 2, "directories": 1,
                                       "symlinks": 1, "other": 0, "bytes": 12}


def test_an_archive_entry_that_would_leave_the_tree_is_refused(tmp_path):
    (tmp_path / "t.tar").write_bytes(archive_of([(info("../escape", size=1), b"x")]))
    with pytest.raises(tree.TreeError, match="not normalised"):
        tree.listing_from_archive(str(tmp_path / "t.tar"))


def test_the_listing_file_round_trips_and_a_bad_one_is_refused(tmp_path):
    listing = tmp_path / "listing.jsonl"
    entries = [{"path": ".", "type": "dir"}, {"path": "日本語.md", "type": "file", "size": 1}]
    tree.write_listing(str(listing), {"root": "/srv", "exclude": []}, entries)
    assert "日本語" in listing.read_text(encoding="utf-8")
    header, read = tree.read_listing(str(listing))
    assert (header["format"], header["version"], header["root"]) == (
        "drtool-files-listing", 1, "/srv")
    assert list(read.values()) == entries
    for bad, why in ((json.dumps({"path": "../etc/passwd", "type": "file"}), "not normalised"),
                     (json.dumps({"path": "/etc/passwd", "type": "file"}), "not relative"),
                     ("{not json", "not JSON")):
        listing.write_text(listing.read_text().splitlines()[0] + "\n" + bad + "\n")
        with pytest.raises(tree.TreeError, match=why):
            tree.read_listing(str(listing))
    listing.write_text(json.dumps({"format": "drtool-files-listing", "version": 9}) + "\n")
    with pytest.raises(tree.TreeError, match="version 9"):
        tree.read_listing(str(listing))


def listed(root: Path, excludes: list[str]) -> dict[str, dict[str, Any]]:
    """The listing a backup of `root` would hold (every regular file hashed)."""
    entries, _bad, _sockets = tree.walk(str(root), excludes)
    wanted = {p: {"type": "file"} for p, i in entries if os.path.isfile(root / p)
              and not os.path.islink(root / p)}
    return tree.measure(str(root), excludes, wanted)


def test_a_tree_equal_to_its_listing_has_no_problem(tmp_path):
    root = make_tree(tmp_path / "t", tmp_path / "outside")
    expected = listed(root, ["*.tmp", "cache/"])
    (root / "cache" / "new").write_text("excluded: not an extra")
    assert tree.compare(expected, tree.measure(str(root), ["*.tmp", "cache/"], expected)) == {
        "problems": [], "problem_count": 0, "counts": {"missing": 0, "extra": 0, "changed": 0}}


def test_missing_extra_and_changed_entries_are_named_with_what_differs(tmp_path):
    root = make_tree(tmp_path / "t", tmp_path / "outside")
    expected = listed(root, [])
    (root / "a" / "b" / "deep.txt").write_text("DEEP")  # same size, other content
    os.utime(root / "a" / "b" / "deep.txt", (1, 1))
    (root / "Résumé d'équipe.txt").chmod(0o600)
    (root / "a" / "x.tmp").unlink()
    (root / "new file").write_text("new")
    (root / "inside").unlink()
    (root / "inside").symlink_to("a")
    (root / "out").unlink()
    (root / "out").mkdir()  # a link that became a folder
    (tmp_path / "outside" / "secret.txt").write_text("changed behind the link")
    found = tree.compare(expected, tree.measure(str(root), [], expected))
    assert found["counts"] == {"missing": 1, "extra": 1, "changed": 4}
    assert found["problem_count"] == 6
    by_path = {p["path"]: p for p in found["problems"]}
    assert by_path["a/b/deep.txt"]["differs"].keys() == {"sha256", "mtime"}
    assert by_path["Résumé d'équipe.txt"]["differs"] == {
        "mode": {"expected": "0644", "actual": "0600"}}
    assert by_path["a/x.tmp"] == {"path": "a/x.tmp", "problem": "missing",
                                  "expected": "file, 9 bytes", "actual": "missing"}
    assert by_path["new file"] == {"path": "new file", "problem": "extra",
                                   "expected": "absent", "actual": "file, 3 bytes"}
    assert by_path["inside"]["differs"] == {"target": {"expected": "a/b", "actual": "a"}}
    assert by_path["out"]["differs"] == {"type": {"expected": "symlink", "actual": "dir"}}
    capped = tree.compare(expected, tree.measure(str(root), [], expected), limit=2)
    assert len(capped["problems"]) == 2 and capped["problem_count"] == 6


def test_a_file_replaced_by_a_link_is_never_read_through(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "f").write_text("data")
    expected = listed(root, [])
    (root / "f").unlink()
    os.mkfifo(tmp_path / "fifo")  # reading it would block: the link must not be followed
    (root / "f").symlink_to(tmp_path / "fifo")
    found = tree.measure(str(root), [], expected)
    assert found["f"]["type"] == "symlink" and "sha256" not in found["f"]
    with pytest.raises(OSError):
        tree.sha256_nofollow(str(root / "f"))


def test_a_missing_tree_is_every_entry_missing(tmp_path):
    root = make_tree(tmp_path / "t", tmp_path / "outside")
    expected = listed(root, [])
    found = tree.compare(expected, tree.measure(str(tmp_path / "gone"), [], expected))
    assert found["counts"]["missing"] == len(expected) and found["counts"]["extra"] == 0


def test_emptying_a_tree_keeps_its_folder_and_what_its_links_point_at(tmp_path):
    root = make_tree(tmp_path / "t", tmp_path / "outside")
    (root / "locked").mkdir()
    (root / "locked" / "f").write_text("x")
    (root / "locked").chmod(0o500)
    assert tree.mount_points(str(root)) == []
    assert tree.empty(str(root)) == 7
    assert list(root.iterdir()) == []
    assert (tmp_path / "outside" / "secret.txt").read_text() == "outside"
