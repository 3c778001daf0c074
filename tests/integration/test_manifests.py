"""A backup whose manifest.json was corrupted or forged, restored from the local store of the
sandbox: a failed integrity check named in one line, exit 1, and targets as before; and
`drtool backups verify`, which reads every backup back and names each file gone bad.

Each case is a copy of the passed drill's backup under a new id, with one edit to its
manifest; the copies are removed at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Drtool
from tests.e2e.test_drill import latest_journal, target_state

pytestmark = pytest.mark.integration


def failed(sandbox: Drtool, operation: str, folder: Path) -> tuple[str, dict[str, Any]]:
    """Run OPERATION of the backup in `folder`; expect exit 1 and no traceback. Returns the
    last line on stderr and the journal."""
    done = sandbox(operation, "--env", "sandbox", "--backup", folder.name)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    journal = json.loads(latest_journal(sandbox).read_text())
    assert journal["operation"] == operation and journal["backup"]["id"] == folder.name
    assert journal["status"] == "failed" and journal["failure"]["kind"] == "check"
    return done.stderr.splitlines()[-1], journal


def test_a_manifest_that_is_not_json_fails_restore_and_verify_by_name(sandbox: Drtool, copies):
    folder = copies("notjson")
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text()[:-40])  # cut short, as a full disk leaves it
    before = target_state(sandbox)

    line, journal = failed(sandbox, "restore", folder)

    assert line.startswith(f"drtool: restore failed at restore: the backup failed its "
                           f"integrity check: backup {folder.name}: manifest {manifest} is not "
                           "valid: not valid JSON: ")
    assert journal["failure"]["phase"] == "restore"
    [check] = [c for c in journal["checks"] if c["name"] == "backup.integrity"]
    assert check["status"] == "failed" and check["target"] == f"store:{manifest}"
    phases = {p["name"]: p for p in journal["phases"]}
    assert phases["restore"]["status"] == "failed" and not phases["restore"]["tasks"]
    assert journal["rollback"] is None
    assert target_state(sandbox) == before

    line, journal = failed(sandbox, "verify", folder)
    assert "not valid JSON" in line and journal["failure"]["phase"] == "verify"
    phases = {p["name"]: p for p in journal["phases"]}
    assert not phases["verify"]["tasks"]  # judged before the verify playbook ran


def test_a_manifest_path_outside_the_backup_is_an_integrity_failure(sandbox: Drtool, copies,
                                                                    tmp_path: Path):
    folder = copies("paths")
    manifest = json.loads((folder / "manifest.json").read_text())
    outside = tmp_path / "written-outside"
    forged = ["postgres/a\x1b]0;owned\x07b", "../../x", str(outside)]
    manifest["files"] = [{"path": path, "size": 1, "sha256": "e" * 64} for path in forged] + (
        manifest["files"])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    before = target_state(sandbox)

    line, journal = failed(sandbox, "restore", folder)

    assert (r"file path 'postgres/a\x1b]0;owned\x07b' holds a control character; "
            "file path '../../x' is not normalised (an empty, '.' or '..' part); "
            f"file path '{outside}' is absolute") in line
    assert journal["failure"]["phase"] == "restore"
    raw = latest_journal(sandbox).read_text()
    assert "\x1b" not in raw and "\\u001b" not in raw  # escaped once, never the raw byte
    assert target_state(sandbox) == before
    assert not outside.exists() and not (folder.parent.parent / "x").exists()


def test_a_changed_dropped_or_missing_file_entry_fails_the_restore_naming_each(
        sandbox: Drtool, copies):
    folder = copies("entries")
    manifest = json.loads((folder / "manifest.json").read_text())
    postgres = sorted((e for e in manifest["files"] if e["path"].startswith("postgres/")),
                      key=lambda e: e["path"])
    changed, dropped, missing = postgres[0], postgres[1], postgres[2]
    changed["sha256"] = "0" * 64
    manifest["files"].remove(dropped)  # its file stays in the backup
    (folder / missing["path"]).unlink()  # its entry stays in the manifest
    (folder / "manifest.json").write_text(json.dumps(manifest))
    before = target_state(sandbox)

    line, journal = failed(sandbox, "restore", folder)

    assert f"{changed['path']}: sha256 mismatch (manifest {'0' * 64}, file " in line
    assert journal["failure"]["phase"] == "restore"
    problems = {c["target"].split(":", 1)[1]: c["detail"] for c in journal["checks"]
                if c["name"] == "backup.integrity"}
    assert problems == {changed["path"]: "sha256 mismatch", dropped["path"]: "not in the manifest",
                        missing["path"]: "missing"}
    assert target_state(sandbox) == before


def test_backups_verify_reads_every_backup_back_and_names_each_bad_file(
        sandbox: Drtool, copies, passed_drill: dict[str, Any]):
    good = Path(passed_drill["backup"]["location"]).name
    rotted = copies("rotted")
    manifest = json.loads((rotted / "manifest.json").read_text())
    entry = max(manifest["files"], key=lambda e: e["size"])
    data = bytearray((rotted / entry["path"]).read_bytes())
    data[len(data) // 2] ^= 0xFF  # the same size, one byte changed: only a hash tells
    (rotted / entry["path"]).write_bytes(bytes(data))
    (rotted / "postgres" / "stray.sql").write_text("-- written into the backup later\n")
    unreadable = copies("unreadable")
    (unreadable / "manifest.json").write_text("{")

    done = sandbox("backups", "verify", "--env", "sandbox", "--json")

    assert done.returncode == 1, done.stderr
    journal = json.loads(done.stdout)
    assert journal["operation"] == "verify-backups" and journal["status"] == "failed"
    assert journal["failure"]["kind"] == "check" and rotted.name in journal["failure"]["reason"]
    checks = {c["target"]: c for c in journal["checks"] if c["name"] == "backups.sha256"}
    assert checks[good]["status"] == "passed", checks[good]
    files = len(manifest["files"])
    assert checks[rotted.name]["status"] == "failed"
    assert checks[rotted.name]["actual"] == "2 problems"
    assert checks[rotted.name]["expected"] == f"{files} files as the manifest lists them"
    assert f"{entry['path']}: sha256 " in checks[rotted.name]["detail"]
    assert "postgres/stray.sql: not in the manifest" in checks[rotted.name]["detail"]
    assert checks[unreadable.name]["status"] == "failed"
    assert "not valid JSON" in checks[unreadable.name]["detail"]
    code, history = sandbox.json("history", "--env", "sandbox")
    assert code == 0
    [recorded] = [r for r in history if r["drill_id"] == journal["drill_id"]]
    assert recorded["operation"] == "verify-backups" and recorded["status"] == "failed"

    # One backup only; and one the store does not hold is a usage error, checked before
    # anything runs.
    done = sandbox("backups", "verify", "--env", "sandbox", "--backup", good, "--json")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert [c["target"] for c in json.loads(done.stdout)["checks"]] == [good]
    done = sandbox("backups", "verify", "--env", "sandbox", "--backup", "bk-none")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "bk-none" in done.stderr


def test_backups_verify_with_nothing_to_verify_fails_saying_so(sandbox: Drtool):
    from tests.conftest import copy_inventory

    env = copy_inventory(sandbox, "nothing-stored", {})
    done = sandbox("backups", "verify", "--env", env, "--json")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    journal = json.loads(done.stdout)
    assert journal["failure"]["reason"] == (
        "nothing to verify: the store holds no backup with files to check and no component "
        "keeps a repository of its own")
