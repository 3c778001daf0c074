"""Reading and driving pgBackRest for the physical method (pure: unit-tested alone).

drtool drives the user's pgBackRest: its configuration, repository and schedule stay theirs.
What it reads is `pgbackrest info --output=json` (documented as stable), pgBackRest's version
line, and what PostgreSQL writes to its log while it recovers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time

# The recovery targets drtool asks for (pgbackrest restore --type); "default" replays to the
# end of the archive.
TARGET_TYPES = ("default", "immediate", "time", "lsn", "xid", "name")
# Those that take a --target value.
VALUED = ("time", "lsn", "xid", "name")

LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


class PgBackRestError(Exception):
    """What pgBackRest or its output says is wrong, as one line for a person."""


def version_of(text):
    """'2.45' from `pgbackrest version`'s 'pgBackRest 2.45'; raises when it is not that."""
    match = re.search(r"pgBackRest\s+(\d+(?:\.\d+)+\S*)", text or "")
    if not match:
        raise PgBackRestError("pgbackrest version printed %r, not 'pgBackRest N.N'"
                              % (text or "").strip()[:200])
    return match.group(1)


def stanza_of(info_text, stanza):
    """The stanza's entry of `pgbackrest info --output=json`; raises with pgBackRest's own
    status message when the stanza is missing or not ok."""
    try:
        stanzas = json.loads(info_text)
    except ValueError as exc:
        raise PgBackRestError("pgbackrest info did not print JSON: %s" % exc) from None
    if not isinstance(stanzas, list):
        raise PgBackRestError("pgbackrest info printed %s, not a list of stanzas"
                              % type(stanzas).__name__)
    for entry in stanzas:
        if isinstance(entry, dict) and entry.get("name") == stanza:
            status = entry.get("status") or {}
            # 2 (no backup) is the caller's to judge: a repository may be new.
            if status.get("code") not in (0, 2):
                raise PgBackRestError("stanza %s: %s (pgbackrest status code %s)" % (
                    stanza, status.get("message") or "unknown status", status.get("code")))
            return entry
    raise PgBackRestError("stanza %s is not in the repository (pgbackrest info lists %s)" % (
        stanza, ", ".join(sorted(str(e.get("name")) for e in stanzas if isinstance(e, dict)))
        or "no stanza"))


def backup_record(entry):
    """What the manifest keeps of one backup of `info`'s `backup` list."""
    timestamp = entry.get("timestamp") or {}
    lsn = entry.get("lsn") or {}
    archive = entry.get("archive") or {}
    info = entry.get("info") or {}
    repository = info.get("repository") or {}
    return {
        "label": entry.get("label"),
        "type": entry.get("type"),
        "prior": entry.get("prior"),
        "started_at_epoch": timestamp.get("start"),
        "stopped_at_epoch": timestamp.get("stop"),
        "lsn_start": lsn.get("start"),
        "lsn_stop": lsn.get("stop"),
        "wal_start": archive.get("start"),
        "wal_stop": archive.get("stop"),
        "size": info.get("size"),
        "repository_size": repository.get("size"),
        "error": bool(entry.get("error")),
    }


def newest_backup(info_text, stanza, label=None, before=None):
    """The stanza's newest backup (or the one labelled `label`; or the newest that ended
    before epoch `before`: PostgreSQL ignores a time target earlier than the end of the
    backup it recovers from) as backup_record gives it, with the archive's range; raises
    when there is none to restore."""
    entry = stanza_of(info_text, stanza)
    backups = [b for b in entry.get("backup") or [] if isinstance(b, dict)]
    if before is not None:
        backups = [b for b in backups if ((b.get("timestamp") or {}).get("stop") or 0) < before]
        if not backups:
            raise PgBackRestError("stanza %s has no backup that ended before the recovery "
                                  "target time" % stanza)
    if label:
        chosen = [b for b in backups if b.get("label") == label]
        if not chosen:
            raise PgBackRestError("stanza %s has no backup %s" % (stanza, label))
    else:
        chosen = sorted(backups, key=lambda b: (b.get("timestamp") or {}).get("stop") or 0)
        if not chosen:
            raise PgBackRestError("stanza %s has no backup yet: run pgbackrest backup "
                                  "(or let drtool run one: pgbackrest_backup_type)" % stanza)
    record = backup_record(chosen[-1])
    # Which repository holds it (a stanza may have several), and whether it is encrypted.
    repo_key = (chosen[-1].get("database") or {}).get("repo-key")
    record["repository"] = next(
        ({"key": repo.get("key"), "cipher": repo.get("cipher")}
         for repo in entry.get("repo") or [] if isinstance(repo, dict)
         and repo.get("key") == repo_key), {"key": repo_key, "cipher": None})
    if record["error"]:
        raise PgBackRestError("backup %s of stanza %s is marked in error by pgbackrest "
                              "(a page checksum failed when it was taken)" % (record["label"], stanza))
    archives = [a for a in entry.get("archive") or [] if isinstance(a, dict)]
    record["archive_min"] = min((a.get("min") for a in archives if a.get("min")), default=None)
    record["archive_max"] = max((a.get("max") for a in archives if a.get("max")), default=None)
    return record


def restore_argv(pgbackrest, stanza, pg_path, target_type="default", target=None,
                 exclusive=False, config=None, delta=True, backup_set=None):
    """The `pgbackrest restore` command of a drill's restore into `pg_path`: the recovered
    server promotes at its target and never archives into the source's repository
    (--archive-mode=off: without it a promoted copy pushes its WAL into the stanza)."""
    if target_type not in TARGET_TYPES:
        raise PgBackRestError("recovery target type %r is not one of %s"
                              % (target_type, ", ".join(TARGET_TYPES)))
    if target_type in VALUED and not target:
        raise PgBackRestError("recovery target type %s needs a target" % target_type)
    if target_type == "lsn" and not LSN.match(str(target)):
        raise PgBackRestError("recovery target %r is not an LSN such as 0/3000060" % target)
    if target_type == "time":
        target = time_target(target)
    argv = [pgbackrest]
    if config:
        argv.append("--config=%s" % config)
    # --no-link-all: a symlinked pg_wal comes back as a folder in pg_path, never as a link
    # to where it was on the source (a configuration may say link-all=y).
    argv += ["--stanza=%s" % stanza, "--pg1-path=%s" % pg_path, "--archive-mode=off",
             "--no-link-all"]
    if delta:
        argv.append("--delta")
    if backup_set:
        argv.append("--set=%s" % backup_set)
    if target_type != "default":
        argv.append("--type=%s" % target_type)
        if target_type in VALUED:
            argv.append("--target=%s" % target)
            if exclusive:
                argv.append("--target-exclusive")
        # promote at the target; pause (PostgreSQL's default) would wait for a person
        argv.append("--target-action=promote")
    argv.append("restore")
    return argv


def time_target(text):
    """An ISO-8601 time with its zone as pgBackRest reads a time target (and chooses the
    backup for it): 'YYYY-MM-DD HH:MM:SS.ffffff+00', in UTC."""
    try:
        moment = dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise PgBackRestError("recovery target %r is not an ISO-8601 time" % (text,)) from None
    if moment.tzinfo is None:
        raise PgBackRestError("recovery target %r has no time zone" % (text,))
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")  # noqa: UP017


_STOPPING = re.compile(r"recovery stopping (before|after) (.*)$")
_REDO_DONE = re.compile(r"redo done at ([0-9A-F]+/[0-9A-F]+)")
_LAST_TX = re.compile(r"last completed transaction was at log time (.+?)\s*$")
_TIMELINE = re.compile(r"selected new timeline ID: (\d+)")
_CONSISTENT = re.compile(r"consistent recovery state reached at ([0-9A-F]+/[0-9A-F]+)")
_RESTORED = re.compile(r'restored log file "([0-9A-F]{24})" from archive')
# pgBackRest's own errors, which its archive-get (the restore_command) writes to the log.
_PGBACKREST_ERROR = re.compile(r"(ERROR: \[\d+\]: .*)$")


def recovery_outcome(log_text):
    """What PostgreSQL's log says of the last recovery in it: whether it stopped at a target
    (`stopping`: "before commit of transaction 755, time ..."), where redo ended, the last
    transaction replayed, the new timeline, whether archive recovery completed and the
    server was promoted. Only the lines after the newest "starting point-in-time recovery"
    or "starting archive recovery" count: the log may hold earlier runs."""
    lines = (log_text or "").splitlines()
    start = None
    for index, line in enumerate(lines):
        if "starting point-in-time recovery" in line or "starting archive recovery" in line:
            start = index
    outcome = {"started": start is not None, "stopping": None, "redo_done_lsn": None,
               "last_transaction_at": None, "consistent_lsn": None, "timeline": None,
               "archive_recovery_complete": False, "ready": False,
               "last_restored_wal": None, "archive_errors": []}
    for line in lines[start or 0:]:
        found = _STOPPING.search(line)
        if found:
            outcome["stopping"] = "%s %s" % (found.group(1), found.group(2).strip())
        for key, pattern in (("redo_done_lsn", _REDO_DONE), ("last_transaction_at", _LAST_TX),
                             ("consistent_lsn", _CONSISTENT)):
            found = pattern.search(line)
            if found:
                outcome[key] = found.group(1)
        found = _RESTORED.search(line)
        if found:
            outcome["last_restored_wal"] = found.group(1)
        found = _PGBACKREST_ERROR.search(line)
        if found:
            outcome["archive_errors"].append(found.group(1).strip())
        found = _TIMELINE.search(line)
        if found:
            outcome["timeline"] = int(found.group(1))
        if "archive recovery complete" in line:
            outcome["archive_recovery_complete"] = True
        if "database system is ready to accept connections" in line:
            outcome["ready"] = True
    return outcome


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)")


def stamp(line):
    """The time a log line begins with (log_line_prefix '%m ...'), or None."""
    found = _STAMP.match(line)
    if not found:
        return None
    try:
        return dt.datetime.fromisoformat(found.group(1))
    except ValueError:
        return None


def recovery_marks(log_text):
    """When the server's log says the newest recovery stopped (or its redo ended), and when
    the server then said it takes connections as a primary: (ended, ready), each None where
    the log does not say."""
    ended = ready = None
    for line in log_text.splitlines():
        if "recovery stopping" in line or "redo done at" in line:
            if ready is not None or ended is None:  # a later recovery starts over
                ended, ready = stamp(line), None
        elif (ended is not None and ready is None
              and "database system is ready to accept connections" in line):
            ready = stamp(line)
    return ended, ready


def promotion_seconds(log_text):
    """From where recovery stopped (or redo ended) to the server taking connections as a
    primary, by the log's own timestamps; None when the log cannot say."""
    ended, ready = recovery_marks(log_text)
    if ended is None or ready is None:
        return None
    return round(max(0.0, (ready - ended).total_seconds()), 3)


def settled_log(read, until, pause=0.1):
    """The log `read()` returns, read again until it holds the line that ends a promotion
    whose recovery it says ended, or until time.monotonic() reaches `until`.
    pg_is_in_recovery() turns false as the startup process ends recovery; the postmaster
    logs "ready to accept connections" a moment later, the log collector later still."""
    text = read()
    while time.monotonic() < until:
        ended, ready = recovery_marks(text)
        if ended is None or ready is not None:
            break
        time.sleep(pause)
        text = read()
    return text


def port_setting(port):
    """The line that gives a restored cluster the target's own port, appended to its
    postgresql.auto.conf (the last setting in that file wins)."""
    return "port = %d" % int(port)


def as_os_user(os_user):
    """subprocess keyword arguments that run a child as `os_user` (the cluster's: pgBackRest
    and pg_ctl run as it) when the caller runs as root; none otherwise. Raises KeyError for
    a user the host does not have."""
    if os.geteuid() != 0 or not os_user or os_user == "root":
        return {}
    import pwd  # noqa: PLC0415 - POSIX only

    entry = pwd.getpwnam(os_user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [],
            "env": dict(os.environ, HOME=entry.pw_dir, USER=os_user, LOGNAME=os_user),
            "cwd": "/"}


def short_of_target(outcome):
    """Why a recovery that ended before its target did: where replay stopped and the WAL it
    had, and pgBackRest's own error when archive-get gave one."""
    parts = []
    if outcome.get("redo_done_lsn"):
        parts.append("replay stopped at %s" % outcome["redo_done_lsn"])
    if outcome.get("last_restored_wal"):
        parts.append("after WAL segment %s: the next one is missing from the archive or "
                     "unreadable" % outcome["last_restored_wal"])
    if outcome.get("archive_errors"):
        parts.append("pgbackrest: %s" % outcome["archive_errors"][-1])
    return "; ".join(parts)


# `pgbackrest verify --output=text --verbose --log-level-console=info`: the summary's status
# line and counts (without --verbose, a summary only when something is wrong), and the INFO
# lines that name each file it found wrong ("invalid checksum '<path>'", ...).
# pgBackRest 2.45 ends verify with exit 0 whatever it found: the summary is the verdict.
_VERIFY_STATUS = re.compile(r"^\s*status: (\S+)", re.MULTILINE)
_VERIFY_FILE = re.compile(r"INFO: ((?:invalid|missing|file missing|unable|no |error)[^\n]*?)\s*$",
                          re.MULTILINE | re.IGNORECASE)
_VERIFY_COUNTS = re.compile(r"^\s*(?:backup|archiveId): ([^,]+),.*$", re.MULTILINE)
_VERIFY_BAD = re.compile(r"(missing|checksum invalid|size invalid|other): ([1-9]\d*)")
_VERIFY_TOTAL = re.compile(r"total (files|WAL) checked: (\d+)")
# A backup's own status: "invalid" and "manifest missing" fail; "in-progress" is the
# schedule's backup being taken now, and "valid" is valid.
_VERIFY_BACKUP = re.compile(r"^\s*backup: ([^,\s]+), status: ([^,]+),", re.MULTILINE)
_BACKUP_BAD = ("invalid", "manifest missing")


def verify_findings(text):
    """What `pgbackrest verify` found: (status, problems, checked), the status its summary
    gives ('ok' or 'error'; None when it printed no summary), one line per file or count it
    found wrong, and how many backup files and WAL segments it checked ({files, wal})."""
    statuses = _VERIFY_STATUS.findall(text or "")
    status = statuses[-1] if statuses else None
    problems = []
    for line in _VERIFY_FILE.findall(text or ""):
        if line not in problems:
            problems.append(line)
    # The summary's counts, for what has no line of its own ("backup X: checksum invalid 1").
    lines = (text or "").splitlines()
    for index, line in enumerate(lines):
        match = _VERIFY_COUNTS.match(line)
        if match and index + 1 < len(lines):
            for kind, count in _VERIFY_BAD.findall(lines[index + 1]):
                summary = "%s: %s %s" % (match.group(1), kind, count)
                if summary not in problems:
                    problems.append(summary)
        if len(problems) > 50:
            break
    for label, backup_status in _VERIFY_BACKUP.findall(text or ""):
        line = "backup %s: status %s" % (label, backup_status.strip())
        if backup_status.strip() in _BACKUP_BAD and line not in problems:
            problems.append(line)
    if re.search(r"^\s*backup: none found", text or "", re.MULTILINE):
        problems.append("the repository holds no backup")
    checked = {"files": 0, "wal": 0}
    seen = set()
    for line in lines:  # each summary once: --log-level-console=info prints it twice
        if line.strip() in seen:
            continue
        seen.add(line.strip())
        for kind, count in _VERIFY_TOTAL.findall(line):
            checked["files" if kind == "files" else "wal"] += int(count)
    return status, problems, checked


# A WAL segment's name: timeline, then the segment number as two 8-digit hex halves.
_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(?:\.partial)?(?:-[0-9a-f]{40})?"
                      r"(?:\.\w+)?$")


def wal_gaps(listing_text, segment_size=None):
    """The holes in the archive, from `pgbackrest repo-ls --output=json --recurse
    archive/STANZA`: for each archive id and timeline, the ranges of segments missing
    between its first and its last (a recovery cannot replay across one). The segments in a
    log file (the name's middle part) follow from `segment_size` in bytes, else from the
    archive: the highest last part a log file that is not the newest holds, plus one (256
    for 16 MB segments). Returns [{archive_id, timeline, first_missing, last_missing,
    segments}], in order."""
    try:
        listing = json.loads(listing_text)
    except ValueError:
        raise PgBackRestError("pgbackrest repo-ls did not print JSON") from None
    found = {}
    for path, entry in listing.items():
        parts = path.split("/")
        if len(parts) != 3 or not isinstance(entry, dict) or entry.get("type") != "file":
            continue
        match = _SEGMENT.match(parts[2])
        if not match or ".backup" in parts[2]:
            continue
        timeline, high, low = (int(g, 16) for g in match.groups())
        found.setdefault((parts[0], timeline), set()).add((high, low))
    gaps = []
    for (archive_id, timeline), segments in sorted(found.items()):
        per_log = (0x100000000 // segment_size if segment_size
                   else _segments_per_log(segments))
        ordered = sorted(segments)
        for before, after in zip(ordered, ordered[1:], strict=False):
            if before[0] == after[0]:
                missing = after[1] - before[1] - 1
            elif per_log is None:  # across log files, with no way to count: not judged
                continue
            else:
                missing = (after[0] - before[0]) * per_log + after[1] - before[1] - 1
            if missing > 0:
                first = _next(before, per_log)
                gaps.append({"archive_id": archive_id, "timeline": timeline,
                             "first_missing": "%08X%08X%08X" % ((timeline,) + first),
                             "last_missing": "%08X%08X%08X" % ((timeline,) + _previous(
                                 after, per_log)),
                             "segments": missing})
    return gaps


def _segments_per_log(segments):
    """How many segments a log file holds, from those of every log file but the newest;
    None when the archive has no full log file to tell."""
    newest = max(high for high, _low in segments)
    seen = [low for high, low in segments if high != newest]
    if not seen:
        return None
    count = max(seen) + 1
    return count if count & (count - 1) == 0 else None  # a power of two, or unknown


def _next(segment, per_log):
    high, low = segment
    return (high + 1, 0) if per_log is not None and low + 1 >= per_log else (high, low + 1)


def _previous(segment, per_log):
    high, low = segment
    return (high - 1, per_log - 1) if low == 0 and per_log is not None else (high, low - 1)


def _missing(gap):
    first, last = gap["first_missing"], gap["last_missing"]
    span = first if first == last else "%s to %s" % (first, last)
    return "WAL %s missing from the archive (%s, timeline %d)" % (
        span, gap["archive_id"], gap["timeline"])


def describe_gap(gap):
    return "%s: no recovery replays past it" % _missing(gap)


def split_gaps(gaps, info_text, stanza):
    """The archive's holes parted into those a restore cannot pass and the others, by what
    the stanza's backups (`pgbackrest info --output=json`) need of the archive: each
    backup's own WAL (start to stop: without it the backup is not consistent) and, from the
    newest backup's start on its timeline or any later one, every segment (a recovery to the
    end of the archive replays them all). A hole elsewhere is where retention
    (repo-retention-archive) expired WAL the backups no longer need: point-in-time recovery
    into that stretch is not possible, and nothing else is lost. Returns (blocking, others,
    labels), labels being the backups the repository holds."""
    entry = stanza_of(info_text, stanza)
    backups = [backup_record(b) for b in entry.get("backup") or [] if isinstance(b, dict)]
    labels = [b["label"] for b in backups if b["label"]]
    spans = [(b["wal_start"], b["wal_stop"]) for b in backups
             if _wal_name(b["wal_start"]) and _wal_name(b["wal_stop"])]
    newest = max(backups, key=lambda b: b["stopped_at_epoch"] or 0) if backups else None
    start = newest and newest["wal_start"]
    blocking, others = [], []
    for gap in gaps:
        first, last = gap["first_missing"], gap["last_missing"]  # with their timeline
        needed = not spans or any(
            begin[:8] == first[:8] and first <= end and last >= begin for begin, end in spans)
        if not needed and _wal_name(start):
            needed = gap["timeline"] > int(start[:8], 16) or (
                gap["timeline"] == int(start[:8], 16) and last >= start)
        (blocking if needed else others).append(gap)
    return blocking, others, labels


def _wal_name(name):
    return isinstance(name, str) and len(name) == 24 and bool(_SEGMENT.match(name))


def describe_expired(gap):
    return ("%s: no backup needs it, but no point-in-time recovery reaches into that stretch "
            "(expired by repo-retention-archive?)" % _missing(gap))


def archive_end(info_text, stanza):
    """The newest WAL segment the stanza's archive holds for its current database (the
    highest `db` id: an older one is from before a stanza-upgrade), from `pgbackrest info
    --output=json`; None when the archive is empty."""
    entry = stanza_of(info_text, stanza)
    archives = [a for a in entry.get("archive") or [] if isinstance(a, dict) and a.get("max")]
    if not archives:
        return None
    current = max(archives, key=lambda a: (a.get("database") or {}).get("id") or 0)
    newest = current.get("max")
    return newest if _wal_name(newest) else None


def short_of_end(outcome, end):
    """Why a recovery to the end of the archive fell short of `end` (the newest segment the
    archive held when the restore began), or None when its last restored segment reached it.
    Segment names order by timeline, then position: a later timeline is further on."""
    last = outcome.get("last_restored_wal")
    if end is None or (last is not None and last >= end):
        return None
    reason = ("recovery to the end of the archive stopped after WAL %s; the archive's newest "
              "segment is %s" % (last or "(none restored)", end))
    if outcome.get("archive_errors"):
        reason += "; pgbackrest: %s" % outcome["archive_errors"][-1]
    return reason
