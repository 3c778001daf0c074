"""`drtool backups verify`: every backup read back and checked where it is kept, outside any
drill. drtool's store is checked here (each file's size and sha256 against its backup's
manifest); a method's own repository (pgBackRest's) by its tool, in the `backups` phase's
playbook, whose findings arrive as `drtool_backups_checked`. Each becomes a check of the
operation's journal, so the history records when a backup was last proved readable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from drtool.adapters.ansible import redact_secrets
from drtool.core.model import FAILED, PASSED, Check
from drtool.errors import ConfigError, StoreError
from drtool.store.base import BackupStore, ManifestInvalid

STORE_CHECK = "backups.sha256"
REPOSITORY_CHECK = "backups.repository"
# A stored backup of a physical method restores the repository's backup it names: that one
# must still be in the repository (retention may have expired it).
LABEL_CHECK = "backups.physical"
SHOWN_PROBLEMS = 5  # a check names this many of its files' problems, and counts the rest


def store_checks(store: BackupStore, only: str | None = None,
                 labels: Mapping[str, list[str]] | None = None,
                 stop: Callable[[], str | None] = lambda: None
                 ) -> tuple[list[Check], list[str]]:
    """A check per backup in `store` (only backup `only`, when given) whose manifest lists
    files or cannot be trusted, and a warning per backup without a manifest (unfinished or
    failed: nothing says what it should hold). A backup of a physical method is checked
    against the labels its component's repository holds (`labels`, by component, from the
    repositories' checks): the newest backup of each component (or the one asked for) fails
    when its label has gone, an older one is a warning. `stop` says why to stop before the
    next backup (the phase's time limit, a signal), or None. StoreError when the store
    cannot be listed."""
    checks: list[Check] = []
    warnings: list[str] = []
    newest_of: set[str] = set()  # components whose newest stored backup was seen
    for summary in sorted(store.catalog(), key=lambda s: s.id, reverse=True):
        if only is not None and summary.id != only:
            continue
        why = stop()
        if why:
            warnings.append(f"backups verify stopped before backup {summary.id} and the "
                            f"older ones: {why}")
            break
        try:
            manifest = store.read_manifest(summary.id)
        except ManifestInvalid as exc:  # there, but not to be trusted: the backup is bad
            checks.append(Check(STORE_CHECK, summary.id, "a valid manifest", "not valid",
                                FAILED, f"{exc.where}: {exc.problem}"))
            continue
        except ConfigError:  # none at all: unfinished, or a backup that failed
            warnings.append(f"backup {summary.id} has no manifest (an unfinished or failed "
                            "backup): nothing to check its files against")
            continue
        except StoreError as exc:
            checks.append(Check(STORE_CHECK, summary.id, "a readable manifest", "unreadable",
                                FAILED, exc.message))
            continue
        for part in manifest.physical:
            label = str(part.backup.get("label") or "?")
            held = (labels or {}).get(part.component)
            newest = part.component not in newest_of
            newest_of.add(part.component)
            if held is None or label in held:
                if held is not None:
                    checks.append(Check(LABEL_CHECK, f"{summary.id}/{part.component}",
                                        f"pgBackRest backup {label} in stanza {part.stanza}",
                                        "present", PASSED))
                continue
            gone = (f"pgBackRest backup {label} of {part.component} is no longer in stanza "
                    f"{part.stanza}'s repository (expired by its retention?): backup "
                    f"{summary.id} cannot be restored")
            if newest or only is not None:
                checks.append(Check(LABEL_CHECK, f"{summary.id}/{part.component}",
                                    f"pgBackRest backup {label} in stanza {part.stanza}",
                                    "gone", FAILED, gone))
            else:
                warnings.append(gone)
        if not manifest.files:  # a physical backup's files are its method's repository's
            continue
        try:
            problems = store.check(manifest)
        except StoreError as exc:
            problems = [{"problem": exc.message}]
        except OSError as exc:  # the staging folder of a store that downloads
            problems = [{"problem": f"{exc.filename or store.location}: "
                                    f"{exc.strerror or exc}"}]
        checks.append(_store_check(summary.id, len(manifest.files), problems))
    return checks, warnings


def _store_check(backup_id: str, files: int, problems: list[dict[str, Any]]) -> Check:
    reasons = [str(p.get("problem") or p.get("path")) for p in problems]
    detail = "; ".join(reasons[:SHOWN_PROBLEMS])
    if len(reasons) > SHOWN_PROBLEMS:
        detail += f"; and {len(reasons) - SHOWN_PROBLEMS} more"
    count = len(problems)
    actual = f"{count} problem{'s' if count > 1 else ''}" if problems else f"{files} match"
    return Check(STORE_CHECK, backup_id, f"{files} files as the manifest lists them", actual,
                 FAILED if problems else PASSED, detail)


def repository_checks(found: dict[str, Any]) -> list[Check]:
    """A check per component whose method's tool checked its repository (the playbook's
    `drtool_backups_checked`: {component: {stanza, passed, reason, output, ...}})."""
    checks = []
    for name, result in sorted(found.items()):
        passed = result.get("passed") is True  # a bool from the playbook, never text
        stanza = result.get("stanza") or "?"
        checked = result.get("checked") or {}
        counted = (f"{checked.get('files', 0)} backup files and {checked.get('wal', 0)} WAL "
                   "segments valid, no hole in the archive")
        checks.append(Check(
            REPOSITORY_CHECK, name, f"pgbackrest verify of stanza {stanza} passes",
            counted if passed else "failed", PASSED if passed else FAILED,
            "" if passed else redact_secrets(str(result.get("reason") or "no reason given"))))
    return checks
