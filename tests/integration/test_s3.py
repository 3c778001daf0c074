"""The S3 store and evidence copies against moto's S3 server on loopback (real HTTP, SigV4,
multipart, versioning, Object Lock), started here and stopped by its PID."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from drtool.core.manifest import FileEntry, Manifest, PostgresPart, RedisPart
from drtool.store import crypto
from drtool.store.base import ManifestInvalid
from drtool.store.s3 import S3Store
from drtool.store.settings import S3Connection, S3StoreSettings
from tests.conftest import PORT_BASE, Drtool, alive, copy_inventory, leases, wait_gone
from tests.e2e.test_drill import target_state
from tests.http_endpoint import closed_port

pytestmark = pytest.mark.integration

ACCESS_KEY = "AKIADRTOOLTEST4S3KEY"
SECRET_KEY = "s3-secret-9f8e7d6c5b4a-never-written"
BACKUPS, EVIDENCE = "drtool-backups", "drtool-evidence"
PART_MB = 5  # S3's smallest part: a sandbox backup is larger than that


@dataclasses.dataclass
class S3:
    endpoint: str
    client: Any
    drtool: Drtool  # the sandbox's drtool, with the credentials in its environment
    key_file: Path
    vault_password: Path
    outputs: list[str] = dataclasses.field(default_factory=list)  # every stdout and stderr

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.drtool(*args)
        self.outputs += [done.stdout, done.stderr]
        return done

    def objects(self, prefix: str) -> dict[str, int]:
        listed = self.client.list_objects_v2(Bucket=BACKUPS, Prefix=prefix)
        return {o["Key"]: o["Size"] for o in listed.get("Contents", [])}


@pytest.fixture(scope="module")
def s3(sandbox: Drtool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    port = int(PORT_BASE) + 90
    state = tmp_path_factory.mktemp("moto")
    with open(state / "moto.log", "wb") as log:  # the server keeps its own copy of the fd
        server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H",
                                   "127.0.0.1", "-p", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, (
                state / "moto.log").read_text()
            time.sleep(0.1)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    client.create_bucket(Bucket=BACKUPS)
    client.create_bucket(Bucket=EVIDENCE, ObjectLockEnabledForBucket=True)
    env = dict(sandbox.env, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    vault_password = state / "vault-password"
    vault_password.write_text("vault-pa55word-for-the-test\n")
    key_file = state / "backup.key"
    made = sandbox("backups", "new-key", str(key_file))
    assert made.returncode == 0 and oct(key_file.stat().st_mode & 0o777) == "0o600"
    try:
        yield S3(endpoint, client, Drtool(sandbox.home, env), key_file, vault_password)
    finally:
        server.terminate()
        wait_gone(server.pid)
        server.wait(5)
    assert not alive(server.pid)


def store_vars(s3: S3, prefix: str, **extra: Any) -> dict[str, Any]:
    return {"bucket": BACKUPS, "prefix": prefix, "endpoint_url": s3.endpoint,
            "region": "us-east-1", "part_size_mb": PART_MB, "sse": "AES256", "max_attempts": 3,
            "connect_timeout_s": 1, **extra}


def vaulted(s3: S3, env: str, variable: str, settings: dict[str, Any],
            secrets: dict[str, str]) -> None:
    """Append `variable` to the environment's group_vars/all.yml with `secrets` encrypted by
    ansible-vault (as a team keeps credentials in an inventory)."""
    lines = [f"{variable}:"] + [f"  {k}: {json.dumps(v)}" for k, v in settings.items()]
    for name, value in secrets.items():
        done = subprocess.run([str(Path(sys.executable).parent / "ansible-vault"),
                               "encrypt_string", "--vault-password-file", str(s3.vault_password),
                               "--name", name, value], capture_output=True, text=True, check=True)
        lines += ["  " + line for line in done.stdout.splitlines()]
    path = s3.drtool.home / "inventories" / env / "group_vars" / "all.yml"
    path.write_text(path.read_text() + "\n" + "\n".join(lines) + "\n")


def journal_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    path = next(line.split(None, 1)[1] for line in done.stdout.splitlines()
                if line.startswith("Journal "))
    return json.loads(Path(path).read_text())


def manifest_for(folder: Path, backup_id: str) -> Manifest:
    """A manifest for the files under `folder` (the store needs only files and id)."""
    files = tuple(FileEntry(str(p.relative_to(folder)), p.stat().st_size,
                            hashlib.sha256(p.read_bytes()).hexdigest())
                  for p in sorted(folder.rglob("*")) if p.is_file())
    postgres = PostgresPart("h", 1, "db", "2026-11-22T00:00:00+00:00", {}, {}, {}, None, "15",
                            "15", 0, component="main")
    redis = RedisPart("h", 2, "2026-11-22T00:00:00+00:00", {}, {}, None, "7", 0,
                      component="cache")
    return Manifest(backup_id, "x", "2026-11-22T00:00:00+00:00", "2026-11-22T00:00:00+00:00",
                    (postgres,), (redis,), files, sum(f.size for f in files))


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_backup_larger_than_a_part_goes_up_in_parts_and_comes_back_whole(
        s3: S3, tmp_path: Path, encrypted: bool):
    backup_id = f"bk-20261122T000000Z-{'sealed' if encrypted else 'plain0'}"
    folder = tmp_path / "spool" / backup_id
    (folder / "postgres").mkdir(parents=True)
    big = os.urandom(12 * 1024 * 1024 + 123)  # three parts of 5 MiB
    (folder / "postgres" / "big.dat").write_bytes(big)
    (folder / "redis").mkdir()
    (folder / "redis" / "dump.rdb").write_bytes(b"REDIS0011 small")
    manifest = manifest_for(folder, backup_id)
    settings = S3StoreSettings(
        S3Connection(BACKUPS, "roundtrip/", "us-east-1", s3.endpoint, None, ACCESS_KEY,
                     SECRET_KEY), sse="AES256", part_size_mb=PART_MB, concurrency=3,
        encryption_key_file=str(s3.key_file) if encrypted else None)
    store = S3Store(settings, tmp_path / "spool")

    published, up = store.publish(manifest)

    assert up is not None and up.objects == 3 and not folder.exists()  # only off-site now
    key = f"roundtrip/{backup_id}/postgres/big.dat"
    head = s3.client.head_object(Bucket=BACKUPS, Key=key, ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-3")  # multipart, three parts
    checked = {f["path"]: f["checksum"] for f in up.files}
    assert checked == {"postgres/big.dat": "per part, by S3",
                       "redis/dump.rdb": "whole object, matches",
                       "manifest.json": "whole object, matches"}
    assert head["ChecksumSHA256"] and head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"]["drtool-sha256"] == hashlib.sha256(big).hexdigest()
    stored = s3.client.get_object(Bucket=BACKUPS, Key=key)["Body"].read()
    assert (stored.startswith(crypto.MAGIC) and big[:4096] not in stored) if encrypted else (
        stored == big)
    assert published.extra["storage"]["location"] == f"s3://{BACKUPS}/roundtrip/{backup_id}/"
    assert (published.extra["storage"]["encryption"] is not None) == encrypted

    problems, down = store.fetch(store.read_manifest(backup_id))

    assert problems == [] and down is not None and down.bytes == up.bytes
    assert (folder / "postgres" / "big.dat").read_bytes() == big
    assert (folder / "redis" / "dump.rdb").read_bytes() == b"REDIS0011 small"
    assert [b.id for b in store.catalog() if b.id == backup_id] == [backup_id]


def test_an_encrypted_s3_drill_passes_and_leaves_locked_evidence(s3: S3):
    env = copy_inventory(s3.drtool, "s3", {
        "drtool_store_s3": store_vars(s3, "drills", encryption_key_file=str(s3.key_file)),
        "drtool_evidence_s3": {"bucket": EVIDENCE, "prefix": "evidence",
                               "endpoint_url": s3.endpoint, "region": "us-east-1",
                               "lock_mode": "governance", "retention_days": 30}})

    done = s3.run("drill", "--env", env)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    journal = journal_of(done)
    backup_id = journal["backup"]["id"]
    assert journal["backup"]["location"] == f"s3://{BACKUPS}/drills/{backup_id}/"
    # The backup phase ends with the upload; the restore phase starts with the download.
    ours = {p["name"]: [t["action"] for t in p["tasks"] if t["host"] == "drtool"]
            for p in journal["phases"]}
    assert ours["backup"] == ["drtool.store.upload"]
    assert ours["restore"] == ["drtool.store.download"]
    assert not (s3.drtool.home / "backups" / env / backup_id).exists()  # staging emptied
    objects = s3.objects(f"drills/{backup_id}/")
    assert f"drills/{backup_id}/manifest.json" in objects
    assert f"drills/{backup_id}/verified.json" in objects
    dump = s3.client.get_object(Bucket=BACKUPS, Key=f"drills/{backup_id}/redis/cache/dump.rdb")
    assert dump["Body"].read().startswith(crypto.MAGIC)  # sealed before it left

    listed = s3.run("backups", "list", "--env", env)
    assert listed.returncode == 0
    assert f"{backup_id}  " in listed.stdout and f"verified by drill {journal['drill_id']}" in (
        listed.stdout)

    # The journal's copy is in the Object Lock bucket, under the version the journal names,
    # and that version cannot be deleted while its retention lasts.
    [copy] = journal["evidence_copies"]
    key = f"evidence/{env}/{journal['drill_id']}/journal.json"
    assert copy["url"] == f"s3://{EVIDENCE}/{key}" and copy["mode"] == "GOVERNANCE"
    head = s3.client.head_object(Bucket=EVIDENCE, Key=key, VersionId=copy["version_id"])
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"]
    body = s3.client.get_object(Bucket=EVIDENCE, Key=key, VersionId=copy["version_id"])
    assert hashlib.sha256(body["Body"].read()).hexdigest() == copy["sha256"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.client.delete_object(Bucket=EVIDENCE, Key=key, VersionId=copy["version_id"])
    assert s3.client.head_object(Bucket=EVIDENCE, Key=key, VersionId=copy["version_id"])

    # A restore without the key fails before anything is changed, and says why.
    nokey = copy_inventory(s3.drtool, "s3-nokey", {"drtool_store_s3": store_vars(s3, "drills")})
    before = target_state(s3.drtool)
    refused = s3.run("restore", "--env", nokey, "--backup", backup_id)
    assert refused.returncode == 1, refused.stdout[-2000:] + refused.stderr
    assert "the backup is encrypted (key " in refused.stderr
    assert "drtool_store_s3.encryption_key_file is not set" in refused.stderr
    assert target_state(s3.drtool) == before


def test_a_corrupted_or_deleted_object_fails_the_restore_by_name_and_changes_nothing(s3: S3):
    # Credentials from ansible-vault this time, and none in drtool's environment.
    env = copy_inventory(s3.drtool, "s3-plain", {})
    vaulted(s3, env, "drtool_store_s3", store_vars(s3, "plain"),
            {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})
    s3 = dataclasses.replace(s3, drtool=Drtool(s3.drtool.home, {
        **{k: v for k, v in s3.drtool.env.items() if not k.startswith("AWS_ACCESS")
           and not k.startswith("AWS_SECRET")},
        "ANSIBLE_VAULT_PASSWORD_FILE": str(s3.vault_password)}), outputs=s3.outputs)
    ids = []
    for _ in range(2):
        done = s3.run("backup", "--env", env, "--json")
        assert done.returncode == 0, done.stderr
        ids.append(json.loads(done.stdout)["backup"]["id"])
    older, newer = ids

    toc = f"plain/{older}/postgres/main/appdb/toc.dat"
    original = s3.client.get_object(Bucket=BACKUPS, Key=toc)["Body"].read()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    s3.client.put_object(Bucket=BACKUPS, Key=toc, Body=bytes(flipped))
    before = target_state(s3.drtool)

    corrupted = s3.run("restore", "--env", env, "--backup", older)

    assert corrupted.returncode == 1, corrupted.stdout[-2000:] + corrupted.stderr
    journal = journal_of(corrupted)
    assert journal["failure"]["phase"] == "restore" and journal["failure"]["kind"] == "check"
    assert f"object s3://{BACKUPS}/{toc}: sha256 " in journal["failure"]["reason"]
    [check] = [c for c in journal["checks"] if c["name"] == "backup.integrity"]
    assert check["status"] == "failed" and check["actual"] == hashlib.sha256(
        bytes(flipped)).hexdigest()
    assert target_state(s3.drtool) == before
    assert not (s3.drtool.home / "backups" / env / older).exists()  # nothing half-checked
    # Nothing changed the targets: the restore's safety snapshot goes with its leases.
    assert journal["phases"][1]["name"] == "snapshot"
    assert journal["phases"][1]["status"] == "passed"
    assert not (s3.drtool.home / "snapshots" / env / journal["drill_id"]).exists()
    assert leases(s3.drtool) == {}

    rdb = f"plain/{newer}/redis/cache/dump.rdb"
    s3.client.delete_object(Bucket=BACKUPS, Key=rdb)
    deleted = s3.run("restore", "--env", env, "--backup", newer)
    assert deleted.returncode == 1
    assert f"object s3://{BACKUPS}/{rdb} is missing" in journal_of(deleted)["failure"]["reason"]
    assert target_state(s3.drtool) == before

    # `backups verify` downloads every object, checks it and keeps nothing: both named.
    checked = s3.run("backups", "verify", "--env", env)
    assert checked.returncode == 1, checked.stderr
    found = {c["target"]: c for c in journal_of(checked)["checks"]}
    assert f"object s3://{BACKUPS}/{toc}: sha256 " in found[older]["detail"]
    assert f"object s3://{BACKUPS}/{rdb} is missing" in found[newer]["detail"]
    assert not (s3.drtool.home / "backups" / env / older).exists()
    assert not (s3.drtool.home / "backups" / env / newer).exists()

    # Retention: --dry-run removes nothing; then the older backup goes and is recorded.
    dry = s3.run("backups", "prune", "--env", env, "--keep-last", "1", "--dry-run")
    assert dry.returncode == 0 and f"would remove  {older}" in dry.stdout
    assert s3.objects(f"plain/{older}/")
    pruned = s3.run("backups", "prune", "--env", env, "--keep-last", "1", "--json")
    assert pruned.returncode == 0, pruned.stderr
    record = json.loads(pruned.stdout)
    assert [p["id"] for p in record["pruned"]] == [older]
    assert [k["id"] for k in record["kept"]] == [newer]
    assert json.loads(Path(record["record"]).read_text())["pruned"] == record["pruned"]
    assert not s3.objects(f"plain/{older}/") and s3.objects(f"plain/{newer}/")


def test_an_endpoint_that_is_down_fails_clearly_within_a_bounded_time(s3: S3):
    env = copy_inventory(s3.drtool, "s3-down", {"drtool_store_s3": store_vars(
        s3, "down", endpoint_url=f"http://127.0.0.1:{closed_port()}")})

    started = time.monotonic()
    listed = s3.run("backups", "list", "--env", env)
    took = time.monotonic() - started

    assert listed.returncode == 3 and listed.stderr.count("\n") == 1
    assert "drtool: error: s3://drtool-backups/down/: EndpointConnectionError" in listed.stderr
    # Three attempts with a 1 s connect timeout and the standard backoff, plus start-up.
    assert took < 30, took

    backup = s3.run("backup", "--env", env)
    assert backup.returncode == 3
    journal = journal_of(backup)
    assert journal["failure"]["phase"] == "backup"
    assert journal["failure"]["reason"].startswith(
        f"the backup could not be stored: upload to s3://{BACKUPS}/down/")
    assert "EndpointConnectionError" in journal["failure"]["reason"]


def evidence_vars(s3: S3, prefix: str, **extra: Any) -> dict[str, Any]:
    return {"bucket": EVIDENCE, "prefix": prefix, "endpoint_url": s3.endpoint,
            "region": "us-east-1", "lock_mode": "governance", "retention_days": 30,
            "max_attempts": 2, "connect_timeout_s": 1, **extra}


def test_the_history_head_is_anchored_and_a_cut_off_record_is_named(s3: S3):
    # Anchors are about the history, not about what a backup holds: one cluster suffices.
    env = copy_inventory(s3.drtool, "s3-anchor", {"drtool_evidence_s3": evidence_vars(
        s3, "anchored")}, keep={"main"})
    runs = [s3.run("backup", "--env", env) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[-1].stderr
    assert all("Anchored  history head at s3://drtool-evidence/anchored/s3-anchor/chain/" in
               r.stdout for r in runs)
    history = json.loads(s3.run("history", "--env", env, "--json").stdout)
    assert len(history) == 2 and all(row["anchor"] for row in history)

    # Each anchor is the record and its hash, under Object Lock.
    newest = history[-1]
    key = f"anchored/{env}/chain/{newest['seq']:010d}-{newest['drill_id']}.json"
    assert newest["anchor"]["url"] == f"s3://{EVIDENCE}/{key}"
    head = s3.client.head_object(Bucket=EVIDENCE, Key=key,
                                 VersionId=newest["anchor"]["version_id"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    body = json.loads(s3.client.get_object(Bucket=EVIDENCE, Key=key)["Body"].read())
    assert (body["hash"], body["record"]["status"]) == (newest["hash"], "passed")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.client.delete_object(Bucket=EVIDENCE, Key=key,
                                VersionId=newest["anchor"]["version_id"])

    held = s3.run("evidence", "verify", "--env", env, "--anchors", "--json")
    assert held.returncode == 0, held.stderr
    [result] = json.loads(held.stdout)
    assert result["intact"] and result["anchors"]["checked"] == 2
    assert result["anchors"]["records_after_newest_anchor"] == 0

    # Cut off the newest record together with its journal. The local chain still holds;
    # the anchor names what is missing.
    shutil.rmtree(Path(newest["journal"]).parent)
    db = sqlite3.connect(s3.drtool.home / "history.sqlite3")
    db.execute("DELETE FROM drills WHERE drill_id = ?", (newest["drill_id"],))
    db.commit()
    db.close()
    assert s3.run("evidence", "verify", "--env", env).returncode == 0
    cut = s3.run("evidence", "verify", "--env", env, "--anchors")
    assert cut.returncode == 1
    assert (f"BROKEN at record {newest['seq']} (drill {newest['drill_id']}): it is anchored at "
            f"s3://{EVIDENCE}/{key} (version ") in cut.stdout
    assert "missing from the history (records were cut off or removed)" in cut.stdout

    # A version written over an anchor by someone with the bucket's credentials is found.
    first = history[0]
    forged_key = f"anchored/{env}/chain/{first['seq']:010d}-{first['drill_id']}.json"
    s3.client.put_object(Bucket=EVIDENCE, Key=forged_key, Body=b'{"env": "s3-anchor"}')
    forged = s3.run("evidence", "verify", "--env", env, "--anchors")
    assert forged.returncode == 1
    assert f"record {first['seq']} (drill {first['drill_id']}): s3://{EVIDENCE}/{forged_key}" in (
        forged.stdout) and "is not an anchor drtool wrote: not a chain anchor" in forged.stdout


def test_an_anchor_that_cannot_be_written_is_a_warning_and_checking_needs_a_bucket(s3: S3):
    down = copy_inventory(s3.drtool, "s3-anchor-down", {"drtool_evidence_s3": evidence_vars(
        s3, "down", endpoint_url=f"http://127.0.0.1:{closed_port()}")}, keep={"main"})
    done = s3.run("backup", "--env", down)
    assert done.returncode == 0, done.stderr  # the backup stands
    assert "the history's head was not anchored: evidence copy to s3://drtool-evidence/" in (
        done.stdout)
    assert "EndpointConnectionError" in done.stdout
    as_json = s3.run("backup", "--env", down, "--json")
    assert as_json.returncode == 0
    assert as_json.stderr.count("drtool: warning: the history's head was not anchored") == 1
    [row, _] = json.loads(s3.run("history", "--env", down, "--json").stdout)
    assert row["anchor"] is None

    unreadable = s3.run("evidence", "verify", "--env", down, "--anchors")
    assert unreadable.returncode == 3 and unreadable.stderr.count("\n") == 1
    assert "EndpointConnectionError" in unreadable.stderr

    plain = copy_inventory(s3.drtool, "s3-no-evidence", {}, keep={"main"})
    assert s3.run("backup", "--env", plain).returncode == 0
    refused = s3.run("evidence", "verify", "--env", plain, "--anchors")
    assert refused.returncode == 2
    assert refused.stderr == ("drtool: error: s3-no-evidence has no drtool_evidence_s3 bucket: "
                              "its chain is not anchored\n")
    usage = s3.run("evidence", "verify", "--anchors")
    assert usage.returncode == 2 and "--anchors needs --env" in usage.stderr


def test_no_credential_or_key_is_written_anywhere(s3: S3):
    key_text = s3.key_file.read_text().strip()
    secrets = [ACCESS_KEY, SECRET_KEY, key_text, s3.vault_password.read_text().strip()]
    searched = 0
    for path in s3.drtool.home.rglob("*"):
        if path.is_file() and "inventories" not in path.parts:
            searched += 1
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret[:4]}... in {path}"
    assert searched > 50
    for output in s3.outputs:
        assert not any(secret in output for secret in secrets)


# -- manifests that cannot be trusted, and an endpoint that goes away -------------------------

def publish_small(s3: S3, tmp_path: Path, prefix: str, backup_id: str) -> S3Store:
    """A small backup (not a real dump: these restores stop before the playbook), published
    under PREFIX by the store itself; returns that store."""
    folder = tmp_path / "spool" / backup_id
    (folder / "postgres").mkdir(parents=True)
    (folder / "postgres" / "toc.dat").write_bytes(os.urandom(2048))
    (folder / "redis").mkdir()
    (folder / "redis" / "dump.rdb").write_bytes(b"REDIS0011 small")
    store = S3Store(S3StoreSettings(S3Connection(BACKUPS, prefix, "us-east-1", s3.endpoint, None,
                                                 ACCESS_KEY, SECRET_KEY)), tmp_path / "spool")
    store.publish(manifest_for(folder, backup_id))
    return store


def test_a_forged_manifest_in_the_bucket_writes_nothing_outside_the_staging_folder(
        s3: S3, tmp_path: Path):
    backup_id = "bk-20261122T000000Z-forged"
    outside = tmp_path / "written-outside"
    env = copy_inventory(s3.drtool, "s3-forged", {"drtool_store_s3": store_vars(s3, "forged")})
    staging = s3.drtool.home / "backups" / env / backup_id
    escaped = staging.parent.parent / "x"  # where ../../x from the staging folder lands
    forged = {"../../x": b"written by a forged manifest", str(outside): b"and this one too",
              "redis/dump.rdb": b"REDIS0011 small"}
    entries = tuple(FileEntry(path, len(body), hashlib.sha256(body).hexdigest())
                    for path, body in forged.items())
    manifest = dataclasses.replace(manifest_for(tmp_path / "empty", backup_id), files=entries)
    for path, body in forged.items():  # every object the manifest names is in the bucket
        s3.client.put_object(Bucket=BACKUPS, Key=f"forged/{backup_id}/{path}", Body=body)
    s3.client.put_object(Bucket=BACKUPS, Key=f"forged/{backup_id}/manifest.json",
                         Body=manifest.to_json().encode())
    before = target_state(s3.drtool)

    done = s3.run("restore", "--env", env, "--backup", backup_id)

    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    assert "Traceback" not in done.stderr
    journal = journal_of(done)
    assert journal["failure"]["phase"] == "restore" and journal["failure"]["kind"] == "check"
    reason = journal["failure"]["reason"]
    where = f"s3://{BACKUPS}/forged/{backup_id}/manifest.json"
    assert reason.startswith(f"the backup failed its integrity check: backup {backup_id}: "
                             f"manifest {where} is not valid: file path '../../x' is not "
                             "normalised")
    assert f"file path '{outside}' is absolute" in reason
    [check] = [c for c in journal["checks"] if c["name"] == "backup.integrity"]
    assert check["status"] == "failed" and check["target"] == f"store:{where}"
    assert not [t for p in journal["phases"] for t in p["tasks"] if t["host"] == "drtool"]
    assert not outside.exists() and not escaped.exists() and not staging.exists()
    assert target_state(s3.drtool) == before


def test_the_store_refuses_a_forged_manifest_and_an_object_the_manifest_does_not_list(
        s3: S3, tmp_path: Path):
    backup_id = "bk-20261122T000000Z-extra0"
    store = publish_small(s3, tmp_path, "extra/", backup_id)
    # An entry dropped from the manifest while its object is still there.
    s3.client.put_object(Bucket=BACKUPS, Key=f"extra/{backup_id}/postgres/3.dat.gz", Body=b"x")

    problems, _transfer = store.fetch(store.read_manifest(backup_id))

    assert [p["problem"] for p in problems] == [
        f"object s3://{BACKUPS}/extra/{backup_id}/postgres/3.dat.gz is not in the manifest"]
    assert not (tmp_path / "spool" / backup_id).exists()

    body = s3.client.get_object(Bucket=BACKUPS, Key=f"extra/{backup_id}/manifest.json")
    forged = json.loads(body["Body"].read())
    forged["files"][0]["path"] = "postgres/../../../x"
    s3.client.put_object(Bucket=BACKUPS, Key=f"extra/{backup_id}/manifest.json",
                         Body=json.dumps(forged).encode())
    with pytest.raises(ManifestInvalid, match=r"file path 'postgres/\.\./\.\./\.\./x' is not "):
        store.read_manifest(backup_id)
    assert [b.complete for b in store.catalog() if b.id == backup_id] == [False]


def cut(hop: Any) -> None:
    """Take the hop down: refuse new connections (shutdown wakes its accept(), which a bare
    close leaves waiting for one more) and drop the open ones."""
    with contextlib.suppress(OSError):  # already down
        hop.server.shutdown(socket.SHUT_RDWR)
    hop.close()


def test_an_endpoint_that_goes_down_during_a_restore_fails_it_with_exit_3_and_changes_nothing(
        s3: S3, tmp_path: Path):
    from tests.integration.test_guard import Forwarder  # a TCP hop we can cut

    backup_id = "bk-20261122T000000Z-cutoff"
    publish_small(s3, tmp_path, "cut/", backup_id)
    port = int(s3.endpoint.rsplit(":", 1)[1])
    before = target_state(s3.drtool)
    outputs: list[str] = []

    # Down before the restore starts: its manifest cannot be read.
    env = copy_inventory(s3.drtool, "s3-cut", {"drtool_store_s3": store_vars(
        s3, "cut/", endpoint_url=f"http://127.0.0.1:{closed_port()}")})
    done = s3.run("restore", "--env", env, "--backup", backup_id)
    outputs += [done.stdout, done.stderr]
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr
    journal = journal_of(done)
    assert journal["failure"]["phase"] == "restore"
    assert journal["failure"]["kind"] == "orchestration"
    assert journal["failure"]["reason"].startswith(
        f"the backup could not be fetched: s3://{BACKUPS}/cut/{backup_id}/manifest.json: "
        "EndpointConnectionError")
    assert target_state(s3.drtool) == before

    # Down once the restore began (the manifest was read, the snapshot is being taken): the
    # download finds the endpoint gone.
    hop = Forwarder(port)
    env = copy_inventory(s3.drtool, "s3-cut", {"drtool_store_s3": store_vars(
        s3, "cut/", endpoint_url=f"http://127.0.0.1:{hop.port}")})
    evidence = s3.drtool.home / "evidence" / env
    earlier = set(evidence.glob("*/journal.json"))
    running = s3.drtool.popen("restore", "--env", env, "--backup", backup_id)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and running.poll() is None:
            journals = set(evidence.glob("*/journal.json")) - earlier
            phases = {p["name"]: p["status"] for j in journals
                      for p in json.loads(j.read_text() or "{}").get("phases", [])}
            if phases.get("snapshot") == "running":
                break
            time.sleep(0.05)
        cut(hop)
        out, err = running.communicate(timeout=300)
    finally:
        cut(hop)
        if running.poll() is None:
            running.kill()
    outputs += [out, err]
    assert running.returncode == 3, out[-3000:] + err
    journal = journal_of(subprocess.CompletedProcess([], 3, out, err))
    assert journal["failure"]["phase"] == "restore", journal["failure"]
    reason = journal["failure"]["reason"]
    assert reason.startswith("the backup could not be fetched: ") and (
        f"s3://{BACKUPS}/cut/{backup_id}/" in reason) and "EndpointConnectionError" in reason
    assert err.splitlines()[-1] == f"drtool: restore failed at restore: {reason}"
    assert "Traceback" not in err
    assert not (s3.drtool.home / "backups" / env / backup_id).exists()
    assert target_state(s3.drtool) == before
    for output in [*outputs, *(p.read_text() for p in evidence.glob("*/journal.json"))]:
        assert ACCESS_KEY not in output and SECRET_KEY not in output
    s3.outputs += outputs
