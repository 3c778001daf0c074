"""Directory trees, as the files kind backs them up and verifies them. Standard library only,
and no Ansible: the unit tests load this file alone.

A tree is walked without ever following a symbolic link (a link is an entry of its own,
with its target), with the inventory's excludes applied the same way at the backup and at
the verify. Its listing is one JSON object a line: a header, then one entry per file,
folder, link or special file, sorted by path:

    {"format": "drtool-files-listing", "version": 1, "root": "/srv/shop/uploads",
     "exclude": ["*.tmp", "cache/"], "totals": {...}, "consistent_at": "..."}
    {"path": ".", "type": "dir", "mode": "0755", "owner": "www-data", "group": "www-data",
     "uid": 33, "gid": 33}
    {"path": "a/b.jpg", "type": "file", "mode": "0644", ..., "size": 1234, "mtime": 1700000000,
     "sha256": "..."}
    {"path": "a/latest", "type": "symlink", ..., "target": "b.jpg"}

Paths are relative to the tree's root ("." is the root itself), with forward slashes. A name
holding a control character, or bytes that are not UTF-8, cannot be written in such a line
faithfully: the backup refuses the tree and names each one (see name_problem).
"""

from __future__ import annotations

import fnmatch
import grp
import hashlib
import json
import os
import posixpath
import pwd
import stat
import tarfile
import unicodedata

LISTING_FORMAT = "drtool-files-listing"
LISTING_VERSION = 1
CHUNK = 1024 * 1024
# The fields compared for each type of entry (a symlink's own mode is always 0777 on Linux;
# a folder's size and mtime change with what it holds).
COMPARED = {
    "file": ("size", "mode", "owner", "group", "mtime", "sha256"),
    "dir": ("mode", "owner", "group"),
    "symlink": ("target", "owner", "group"),
}
COMPARED_OTHER = ("mode", "owner", "group")
TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
         stat.S_IFIFO: "fifo", stat.S_IFCHR: "chardev", stat.S_IFBLK: "blockdev"}
TAR_TYPES = {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.FIFOTYPE: "fifo",
             tarfile.CHRTYPE: "chardev", tarfile.BLKTYPE: "blockdev"}


class TreeError(Exception):
    """A tree that cannot be backed up or read as it is; the message says why."""


# -- names -------------------------------------------------------------------------------------

def shown(text):
    """`text` quoted for a message: control characters and undecodable bytes (kept as lone
    surrogates by Python's file system encoding) escaped, everything else as it is."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs" and 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append("\\x%02x" % (ord(ch) - 0xDC00))
        elif category in ("Cc", "Cs"):
            out.append(repr(ch)[1:-1])
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def name_problem(text):
    """Why a file name (or a link's target) cannot be listed, or None: it holds a control
    character (a newline, a tab, an escape...), or bytes that are not valid UTF-8."""
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":
            return "is not valid UTF-8"
        if category == "Cc":
            return "holds a control character"
    return None


def path_problem(path):
    """Why `path` cannot be an entry of a listing (None when it can): relative, with forward
    slashes, normalised, and a name drtool can list. A listing's path is joined to the tree's
    root: it must stay inside it."""
    if not isinstance(path, str) or not path:
        return "a listed path is empty or not text"
    if path == ".":
        return None
    if path.startswith("/") or "\\" in path:
        return "listed path %s is not relative" % shown(path)
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "listed path %s is not normalised" % shown(path)
    why = name_problem(path)
    return "listed path %s %s" % (shown(path), why) if why else None


# -- excludes ----------------------------------------------------------------------------------

def compile_excludes(patterns):
    """The inventory's exclude patterns as (pattern, folders only, anchored) triples.

    Shell-style patterns (fnmatch: *, ?, [...]) matched against an entry's path below the
    root. A pattern without a slash matches a name at any depth ("*.tmp"); one with a slash
    inside, or starting with one, matches the whole path from the root ("var/cache",
    "/thumbs"; there * may cross folders); one ending with a slash matches folders only
    ("cache/"). An excluded folder is excluded with everything below it.
    """
    out = []
    for raw in patterns or ():
        pattern = str(raw).strip()
        if not pattern or pattern in ("/", "."):
            continue
        folders = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        anchored = "/" in pattern
        pattern = pattern.lstrip("/")
        if pattern:
            out.append((pattern, folders, anchored))
    return out


def excluded(path, is_dir, excludes):
    """Whether the entry at `path` (relative, "/"-separated) is excluded by `excludes`
    (compile_excludes). The root is never excluded."""
    if path == ".":
        return False
    name = path.rsplit("/", 1)[-1]
    for pattern, folders, anchored in excludes:
        if folders and not is_dir:
            continue
        if fnmatch.fnmatchcase(path if anchored else name, pattern):
            return True
    return False


# -- walking a tree ----------------------------------------------------------------------------

def walk(root, excludes=()):
    """Every entry of the tree at `root`, never following a symbolic link: returns
    (entries, bad, sockets) where entries is [(path, os.stat_result)] with the root first as
    ".", sorted by path below it; bad is [(path, why)] for each name that cannot be listed
    (not descended into); sockets is [path] (a socket cannot be archived: it is skipped).
    Excluded entries are left out, and nothing below an excluded folder is looked at."""
    compiled = compile_excludes(excludes)
    entries = [(".", os.stat(root))]
    bad, sockets = [], []
    pending = [""]
    while pending:
        folder = pending.pop()
        with os.scandir(os.path.join(root, folder) if folder else root) as found:
            children = sorted(found, key=lambda e: e.name)
        for child in children:
            path = folder + "/" + child.name if folder else child.name
            info = child.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(info.st_mode)
            if excluded(path, is_dir, compiled):
                continue
            why = name_problem(child.name)
            if why:
                bad.append((path, why))
                continue
            if stat.S_ISSOCK(info.st_mode):
                sockets.append(path)
                continue
            if stat.S_ISLNK(info.st_mode):
                why = name_problem(os.readlink(child.path))
                if why:
                    bad.append((path, "points to a name that " + why))
                    continue
            entries.append((path, info))
            if is_dir:
                pending.append(path)
    entries[1:] = sorted(entries[1:], key=lambda e: e[0])
    return entries, bad, sockets


def refusal(root, bad, limit=20):
    """The message of a backup refused for names it cannot list (walk's `bad`)."""
    named = "; ".join("%s %s" % (shown(path), why) for path, why in bad[:limit])
    more = " (and %d more)" % (len(bad) - limit) if len(bad) > limit else ""
    return ("%d name%s in %s cannot be backed up: %s%s. drtool lists every name in its "
            "backup as UTF-8 text; rename them, or exclude them (drtool_files_exclude)"
            % (len(bad), "" if len(bad) == 1 else "s", root, named, more))


# -- entries -----------------------------------------------------------------------------------

class Names:
    """User and group names by id on this host, looked up once each."""

    def __init__(self):
        self.users, self.groups = {}, {}

    def user(self, uid):
        if uid not in self.users:
            try:
                self.users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self.users[uid] = str(uid)
        return self.users[uid]

    def group(self, gid):
        if gid not in self.groups:
            try:
                self.groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                self.groups[gid] = str(gid)
        return self.groups[gid]


def mode_text(mode):
    """The permission bits (with setuid, setgid and sticky) as four octal digits."""
    return "%04o" % stat.S_IMODE(mode)


def entry_of(path, info, names, target=None, sha256=None):
    """The listing entry of `path` from its lstat() result: a file's size, whole-second
    mtime and (when given) sha256, a link's target."""
    kind = TYPES.get(stat.S_IFMT(info.st_mode), "other")
    entry = {"path": path, "type": kind, "mode": mode_text(info.st_mode),
             "owner": names.user(info.st_uid), "group": names.group(info.st_gid),
             "uid": info.st_uid, "gid": info.st_gid}
    if kind == "file":
        entry.update(size=info.st_size, mtime=int(info.st_mtime))
        if sha256 is not None:
            entry["sha256"] = sha256
    elif kind == "symlink":
        entry["target"] = target
    return entry


def sha256_nofollow(path):
    """The sha256 of the regular file at `path`, opened without following a link (a file
    replaced by a link since it was looked at is refused, never read through) and without
    blocking (a FIFO put in its place is not waited on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("%s is no longer a regular file" % shown(path))
        digest = hashlib.sha256()
        while True:
            block = os.read(fd, CHUNK)
            if not block:
                return digest.hexdigest()
            digest.update(block)
    finally:
        os.close(fd)


def _seconds(member):
    """A tar member's mtime in whole seconds (a pax header keeps it exactly, as text)."""
    exact = member.pax_headers.get("mtime") if member.pax_headers else None
    if exact:
        return int(exact.split(".", 1)[0])
    return int(member.mtime)


class _Hashing:
    """A file read once, hashed as it is read."""

    def __init__(self, handle):
        self.handle, self.digest, self.size = handle, hashlib.sha256(), 0

    def read(self, size=-1):
        data = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def listing_from_archive(archive):
    """(entries, size, sha256) of a tar archive: its listing entries, read back from the
    archive itself (so that the listing describes exactly what a restore extracts), sorted
    by path, and the archive's own size and sha256, from the same single read. A hard link
    becomes the file it links to, under its own path (extracted, it is one)."""
    entries, files = {}, {}
    with open(archive, "rb") as handle:
        hashing = _Hashing(handle)
        with tarfile.open(fileobj=hashing, mode="r|", encoding="utf-8",
                          errors="surrogateescape") as tar:
            for member in tar:
                entry = _entry_of_member(member, files)
                if entry["type"] == "file" and member.isreg():
                    digest = hashlib.sha256()
                    content = tar.extractfile(member)
                    for block in iter(lambda c=content: c.read(CHUNK), b""):
                        digest.update(block)
                    entry["sha256"] = digest.hexdigest()
                    files[entry["path"]] = entry
                entries[entry["path"]] = entry
        for _block in iter(lambda: hashing.read(CHUNK), b""):
            pass  # the end-of-archive blocks count in the archive's sha256
    ordered = [entries[path] for path in sorted(entries, key=_order)]
    return ordered, hashing.size, hashing.digest.hexdigest()


def _entry_of_member(member, files):
    path = posixpath.normpath(member.name)
    why = path_problem(path)
    if why:
        raise TreeError("the archive holds an entry drtool cannot list: " + why)
    entry = {"path": path, "mode": "%04o" % (member.mode & 0o7777),
             "owner": member.uname or str(member.uid), "group": member.gname or str(member.gid),
             "uid": member.uid, "gid": member.gid}
    if member.isreg():
        entry.update(type="file", size=member.size, mtime=_seconds(member))
    elif member.islnk():
        linked = files.get(posixpath.normpath(member.linkname))
        if linked is None:
            raise TreeError("the archive's hard link %s names no earlier file" % shown(path))
        entry.update(type="file", size=linked["size"], mtime=linked["mtime"],
                     sha256=linked["sha256"])
    else:
        entry["type"] = TAR_TYPES.get(member.type, "other")
        if member.issym():
            entry["target"] = member.linkname
    return entry


def _order(path):
    return (path != ".", path)


def totals_of(entries):
    """How many entries of each type, and the bytes of the regular files."""
    totals = {"entries": 0, "files": 0, "directories": 0, "symlinks": 0, "other": 0,
              "bytes": 0}
    for entry in entries:
        totals["entries"] += 1
        kind = entry.get("type")
        if kind == "file":
            totals["files"] += 1
            totals["bytes"] += int(entry.get("size") or 0)
        elif kind == "dir":
            totals["directories"] += 1
        elif kind == "symlink":
            totals["symlinks"] += 1
        else:
            totals["other"] += 1
    return totals


# -- the listing file --------------------------------------------------------------------------

def write_listing(path, header, entries):
    """Write the listing (header first, one JSON object a line); UTF-8, names as they are."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(dict(header, format=LISTING_FORMAT, version=LISTING_VERSION),
                                ensure_ascii=False, sort_keys=True) + "\n")
        for entry in entries:
            handle.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")


def read_listing(path):
    """(header, {path: entry}) of a listing file; TreeError naming what is wrong with it."""
    entries = {}
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
            try:
                header = json.loads(first)
            except ValueError:
                header = None
            if not isinstance(header, dict) or header.get("format") != LISTING_FORMAT:
                raise TreeError("%s is not a drtool files listing" % path)
            if header.get("version") != LISTING_VERSION:
                raise TreeError("%s is a listing of version %r; this drtool reads version %d"
                                % (path, header.get("version"), LISTING_VERSION))
            for number, line in enumerate(handle, start=2):
                try:
                    entry = json.loads(line)
                except ValueError as exc:
                    raise TreeError("%s line %d is not JSON: %s" % (path, number, exc)) from None
                why = path_problem(entry.get("path") if isinstance(entry, dict) else None)
                if why or entry.get("type") is None:
                    raise TreeError("%s line %d: %s" % (path, number, why or "no type"))
                entries[entry["path"]] = entry
    except (OSError, UnicodeDecodeError) as exc:
        raise TreeError("cannot read the listing %s: %s" % (path, exc)) from None
    return header, entries


# -- comparing a tree with a listing -------------------------------------------------------------

def measure(root, excludes, expected):
    """The tree at `root` as listing entries {path: entry}, with the same excludes as the
    listing's: a regular file's sha256 is read only where the listing expects a regular file
    (through sha256_nofollow: never through a link). Names that could not be listed are
    entries too, under their escaped name (they are never in a listing: extra)."""
    names = Names()
    found = {}
    if not os.path.isdir(root):
        return found
    entries, bad, sockets = walk(root, excludes)
    for path, info in entries:
        target = os.readlink(os.path.join(root, path)) if stat.S_ISLNK(info.st_mode) else None
        digest = None
        wanted = expected.get(path)
        if stat.S_ISREG(info.st_mode) and wanted is not None and wanted.get("type") == "file":
            try:
                digest = sha256_nofollow(os.path.join(root, path))
            except OSError as exc:
                digest = "unreadable: %s" % exc.strerror if exc.strerror else str(exc)
        found[path] = entry_of(path, info, names, target, digest)
    for path, why in bad:
        found[shown(path)] = {"path": shown(path), "type": "unlistable", "problem": why}
    for path in sockets:
        found[path] = {"path": path, "type": "socket"}
    return found


def describe(entry):
    """A few words on an entry: 'file, 1234 bytes', 'symlink to b.jpg', 'dir'."""
    if entry is None:
        return "absent"
    kind = entry.get("type")
    if kind == "file":
        return "file, %s bytes" % entry.get("size")
    if kind == "symlink":
        return "symlink to %s" % entry.get("target")
    if kind == "unlistable":
        return "a name that %s" % entry.get("problem", "cannot be listed")
    return str(kind)


def differences(want, got):
    """{field: {expected, actual}} for each compared field that differs between two entries
    of one path (only the type, when that differs)."""
    if want.get("type") != got.get("type"):
        return {"type": {"expected": want.get("type"), "actual": got.get("type")}}
    out = {}
    for field in COMPARED.get(want.get("type"), COMPARED_OTHER):
        if field in want and want.get(field) != got.get(field):
            out[field] = {"expected": want.get(field), "actual": got.get(field)}
    return out


def compare(expected, actual, limit=50):
    """What differs between a listing ({path: entry}) and a measured tree ({path: entry}):
    {"problems": [...the first `limit`, by path...], "problem_count": n,
    "counts": {"missing": n, "extra": n, "changed": n}}. Each problem names its path, its
    kind (missing, extra, changed) and, for a changed entry, each field that differs."""
    problems = []
    counts = {"missing": 0, "extra": 0, "changed": 0}
    for path in sorted(set(expected) | set(actual), key=_order):
        want, got = expected.get(path), actual.get(path)
        if got is None:
            kind, detail = "missing", {"expected": describe(want), "actual": "missing"}
        elif want is None:
            kind, detail = "extra", {"expected": "absent", "actual": describe(got)}
        else:
            differs = differences(want, got)
            if not differs:
                continue
            kind, detail = "changed", {"differs": differs}
        counts[kind] += 1
        if len(problems) < limit:
            problems.append(dict(detail, path=path, problem=kind))
    return {"problems": problems, "problem_count": sum(counts.values()), "counts": counts}


# -- emptying a tree ----------------------------------------------------------------------------

def mount_points(root):
    """The folders under `root` on another file system than root's (mount points): emptying
    the tree must not reach into them."""
    device = os.stat(root).st_dev
    found, pending = [], [root]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.stat(follow_symlinks=False).st_dev != device:
                        found.append(entry.path)
                    else:
                        pending.append(entry.path)
    return sorted(found)


def empty(root):
    """Remove everything under `root` (the folder itself stays), following no link; return
    how many top-level entries were removed. Not as root, folders of this user that it may
    not write into (a restored tree may hold read-only ones) are made writable first."""
    import shutil  # noqa: PLC0415 - only here

    if os.geteuid() != 0:
        pending = [root]
        while pending:
            folder = pending.pop()
            info = os.lstat(folder)
            if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & stat.S_IRWXU != (
                    stat.S_IRWXU):
                os.chmod(folder, stat.S_IMODE(info.st_mode) | stat.S_IRWXU)
            with os.scandir(folder) as entries:
                pending += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    removed = 0
    with os.scandir(root) as entries:
        children = list(entries)
    for child in children:
        if child.is_dir(follow_symlinks=False):
            shutil.rmtree(child.path)
        else:
            os.unlink(child.path)
        removed += 1
    return removed
