"""The sandbox with its backups in its own S3 server (inventories/sandbox-s3): a drill whose
restore comes from the bucket, every object's trip in the journal, and the journal's copy
under Object Lock."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from drtool.store import crypto
from drtool.store.s3 import client
from drtool.store.settings import S3Connection
from tests.conftest import Drtool

pytestmark = pytest.mark.e2e


def test_a_sandbox_drill_with_the_s3_store_restores_from_the_bucket(sandbox: Drtool):
    done = sandbox("drill", "--env", "sandbox-s3", "--json")

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    journal = json.loads(done.stdout)
    backup = journal["backup"]
    prefix = f"s3://drtool-sandbox-backups/sandbox-s3/{backup['id']}/"
    assert backup["location"] == prefix and backup["manifest"] == prefix + "manifest.json"
    assert not (sandbox.home / "backups" / "sandbox-s3" / backup["id"]).exists()

    # Every file of the manifest went up (S3's checksum read back and compared) and came
    # down again, checked against the manifest's sha256, before the restore playbook ran.
    up, down = journal["transfers"]
    assert (up["direction"], down["direction"]) == ("upload", "download")
    s3 = client(S3Connection("drtool-sandbox-backups", "", "us-east-1",
                             f"http://127.0.0.1:{sandbox.port('s3')}", None,
                             sandbox.secret("s3_access_key_id"),
                             sandbox.secret("s3_secret_access_key")))
    manifest = json.loads(s3.get_object(Bucket="drtool-sandbox-backups",
                                        Key=f"sandbox-s3/{backup['id']}/manifest.json")
                          ["Body"].read())
    paths = {f["path"] for f in manifest["files"]}
    assert {f["path"] for f in up["files"]} == paths | {"manifest.json"}
    assert all(f["checksum"] in ("whole object, matches", "per part, by S3")
               for f in up["files"])
    assert {f["path"] for f in down["files"]} == paths
    assert all(f["verified"] and f["sha256"] == f["expected_sha256"] for f in down["files"])
    assert manifest["extra"]["storage"]["encryption"]["key_fingerprint"] == crypto.fingerprint(
        crypto.load_key(sandbox.home / "sandbox" / "secrets" / "backup.key"))
    rdb = s3.get_object(Bucket="drtool-sandbox-backups",
                        Key=f"sandbox-s3/{backup['id']}/redis/cache/dump.rdb")["Body"].read()
    assert rdb.startswith(crypto.MAGIC)
    phases = {p["name"]: p for p in journal["phases"]}
    assert [t["action"] for t in phases["restore"]["tasks"]][0] == "drtool.store.download"

    # The journal's copy is locked.
    [copy] = journal["evidence_copies"]
    key = copy["url"].split("/", 3)[3]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket="drtool-sandbox-evidence", Key=key,
                         VersionId=copy["version_id"])

    listed = sandbox("backups", "list", "--env", "sandbox-s3")
    assert f"{backup['id']}  " in listed.stdout and "verified by drill" in listed.stdout

    # The history's head is anchored in the same bucket, and the history holds to it.
    anchored = sandbox("evidence", "verify", "--env", "sandbox-s3", "--anchors", "--json")
    assert anchored.returncode == 0, anchored.stderr
    [chain] = json.loads(anchored.stdout)
    assert chain["intact"] and chain["anchors"]["checked"] >= 1
    assert chain["anchors"]["records_after_newest_anchor"] == 0
    assert chain["anchors"]["where"] == "s3://drtool-sandbox-evidence/drills/sandbox-s3/chain/"

    secrets = [sandbox.secret(name) for name in ("s3_access_key_id", "s3_secret_access_key")]
    secrets.append((sandbox.home / "sandbox" / "secrets" / "backup.key").read_text().strip())
    searched = 0
    for top in ("evidence/sandbox-s3", "backups", "run", "logs", "history.sqlite3"):
        for path in [sandbox.home / top, *(sandbox.home / top).rglob("*")]:
            if path.is_file():
                searched += 1
                assert not any(s.encode() in path.read_bytes() for s in secrets), path
    assert searched > 20
    assert not any(s in done.stdout + done.stderr for s in secrets)


def test_the_plan_shows_the_upload_and_the_download(sandbox: Drtool):
    code, planned = sandbox.json("drill", "--env", "sandbox-s3", "--plan")
    assert code == 0
    phases = {p["phase"]: p["steps"] for p in planned["plan"]}
    url = "s3://drtool-sandbox-backups/sandbox-s3/"
    assert phases["backup"][-1]["host"] == "drtool"
    assert phases["backup"][-1]["action"].startswith(f"upload the backup to {url}")
    assert phases["restore"][0]["action"].startswith(f"download the backup from {url}, check")
    assert not any(s["host"] == "drtool" for s in phases["verify"])


def test_a_report_is_copied_under_object_lock_with_its_version_ids(sandbox: Drtool, tmp_path):
    rows = sandbox.json("history", "--env", "sandbox-s3")[1]
    drill_id = rows[-1]["drill_id"]
    code, written = sandbox.json("report", "--drill", drill_id, "--format", "md,json",
                                 "--out", str(tmp_path), "--copy-evidence")
    assert code == 0, written
    copies = written["evidence_copies"]
    assert [c["file"] for c in copies] == [f"sandbox-s3-{drill_id}.md",
                                           f"sandbox-s3-{drill_id}.json"]
    kept = json.loads((tmp_path / f"sandbox-s3-{drill_id}.evidence-copies.json").read_text())
    assert kept == copies
    # The report quotes where the history's newest record is anchored.
    report = json.loads((tmp_path / f"sandbox-s3-{drill_id}.json").read_text())
    anchor = report["chain"]["anchor"]
    assert (anchor["drill_id"], anchor["url"], anchor["version_id"]) == (
        drill_id, rows[-1]["anchor"]["url"], rows[-1]["anchor"]["version_id"])
    markdown = (tmp_path / f"sandbox-s3-{drill_id}.md").read_text()
    assert f"- Anchored off-site: record {anchor['seq']} (`{drill_id}`) at `{anchor['url']}`" in (
        markdown)
    s3 = client(S3Connection("drtool-sandbox-evidence", "", "us-east-1",
                             f"http://127.0.0.1:{sandbox.port('s3')}", None,
                             sandbox.secret("s3_access_key_id"),
                             sandbox.secret("s3_secret_access_key")))
    for copy in copies:
        key = copy["url"].split("/", 3)[3]
        assert key == f"drills/sandbox-s3/reports/{copy['file']}"
        head = s3.head_object(Bucket="drtool-sandbox-evidence", Key=key,
                              VersionId=copy["version_id"])
        assert head["ObjectLockMode"] == "GOVERNANCE"
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.delete_object(Bucket="drtool-sandbox-evidence", Key=key,
                             VersionId=copy["version_id"])


def test_a_report_copy_without_an_evidence_bucket_is_refused_after_writing(
        sandbox: Drtool, passed_drill, tmp_path):
    refused = sandbox("report", "--drill", passed_drill["drill_id"], "--format", "json",
                      "--out", str(tmp_path), "--copy-evidence")
    assert refused.returncode == 2
    assert refused.stderr == ("drtool: error: the report was written, but sandbox has no "
                              "drtool_evidence_s3 bucket to copy it to\n")
    assert (tmp_path / f"sandbox-{passed_drill['drill_id']}.json").is_file()
