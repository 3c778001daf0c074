"""The pure parts of the off-site store: client-side encryption, S3 settings, retention."""

from __future__ import annotations

import datetime as dt
import io
import os

import pytest

from drtool.store import crypto
from drtool.store.base import BackupSummary, backup_time
from drtool.store.retention import decide
from drtool.store.settings import parse_evidence, parse_store

KEY = bytes(range(32))


def seal(data: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    crypto.encrypt(key, io.BytesIO(data), out)
    return out.getvalue()


def unseal(data: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    crypto.decrypt(key, io.BytesIO(data), out)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, crypto.CHUNK - 1, crypto.CHUNK, 2 * crypto.CHUNK + 17])
def test_encryption_round_trips_any_size(size):
    data = os.urandom(size)
    sealed = seal(data)
    assert sealed.startswith(crypto.MAGIC)
    if size >= 16:  # a shorter plaintext may turn up in random ciphertext by chance
        assert data[:16] not in sealed
    assert unseal(sealed) == data


def test_a_changed_byte_a_cut_or_another_key_is_refused():
    sealed = seal(os.urandom(2 * crypto.CHUNK + 5))
    flipped = bytearray(sealed)
    flipped[len(crypto.MAGIC) + 16 + (4 + crypto.CHUNK + 16) + 100] ^= 1  # inside chunk 1
    with pytest.raises(crypto.DecryptionError, match="chunk 1 does not authenticate"):
        unseal(bytes(flipped))
    # Dropping the last chunk whole leaves a shorter file that must still be refused.
    first_two = len(crypto.MAGIC) + 16 + 2 * (4 + crypto.CHUNK + 16)
    with pytest.raises(crypto.DecryptionError, match="chunk 1 does not authenticate"):
        unseal(sealed[:first_two])
    with pytest.raises(crypto.DecryptionError, match="cut short"):
        unseal(sealed[:-3])
    with pytest.raises(crypto.DecryptionError, match="chunk 0 does not authenticate"):
        unseal(sealed, bytes(32))
    with pytest.raises(crypto.DecryptionError, match="not a drtool-encrypted file"):
        unseal(b"plain text, not sealed at all")


def test_keys_are_read_from_base64_or_raw_and_named_by_fingerprint(tmp_path):
    text, raw, bad = tmp_path / "k.b64", tmp_path / "k.raw", tmp_path / "k.bad"
    text.write_text(crypto.new_key())
    raw.write_bytes(KEY)
    bad.write_text("too short")
    assert len(crypto.load_key(text)) == 32 and crypto.load_key(raw) == KEY
    assert crypto.fingerprint(KEY) != crypto.fingerprint(crypto.load_key(text))
    assert KEY.hex()[:16] not in crypto.fingerprint(KEY)
    with pytest.raises(Exception, match=r"k.bad: not a 32-byte key"):
        crypto.load_key(bad)
    with pytest.raises(Exception, match=r"missing: No such file"):
        crypto.load_key(tmp_path / "missing")


def test_s3_settings_are_parsed_and_every_problem_named_without_values():
    settings, problems = parse_store({"bucket": "drtool-backups", "prefix": "/staging/",
                                      "sse": "aws:kms", "kms_key_id": "alias/drtool",
                                      "part_size_mb": 64, "access_key_id": "AKIAEXAMPLE",
                                      "secret_access_key": "s3cr3t-value"})
    assert problems == [] and settings is not None
    assert settings.connection.prefix == "staging/" and settings.sse == "aws:kms"
    assert "s3cr3t-value" not in repr(settings)
    assert parse_store({}) == (None, [])

    _none, problems = parse_store({"bucket": "Bad_Bucket", "sse": "rot13", "part_size_mb": 1,
                                   "encryption_key_file": "relative/key", "colour": "red",
                                   "endpoint_url": "ftp://x", "access_key_id": "AKIA-only"})
    assert sorted(key for key, _m in problems) == [
        "drtool_store_s3", "drtool_store_s3.bucket", "drtool_store_s3.colour",
        "drtool_store_s3.encryption_key_file", "drtool_store_s3.endpoint_url",
        "drtool_store_s3.part_size_mb", "drtool_store_s3.sse"]
    assert not any("AKIA-only" in message for _key, message in problems)

    evidence, problems = parse_evidence({"bucket": "drtool-evidence", "lock_mode": "compliance",
                                         "retention_days": 2555})
    assert problems == [] and evidence is not None and evidence.lock_mode == "COMPLIANCE"
    assert [k for k, _m in parse_evidence({"bucket": "ok-bucket", "lock_mode": "loose",
                                           "retention_days": 0})[1]] == [
        "drtool_evidence_s3.lock_mode", "drtool_evidence_s3.retention_days"]


def backup(stamp: str, complete: bool = True, verified: str | None = None) -> BackupSummary:
    backup_id = f"bk-{stamp}-abcdef"
    when = backup_time(backup_id)
    return BackupSummary(backup_id, when if complete else None, 10 if complete else None,
                         "x", complete, verified, when)


NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
CATALOG = [
    backup("20261122T100000Z"),                     # newest, never verified
    backup("20261121T100000Z", complete=False),     # a backup that never finished
    backup("20261115T100000Z", verified="d-3"),     # the newest verified
    backup("20261110T100000Z", verified="d-2"),
    backup("20261101T100000Z"),
]


def test_retention_keeps_the_newest_and_the_newest_verified():
    kept = {d.backup.id[3:11]: d.keep for d in decide(CATALOG, 1, None, NOW)}
    assert kept == {"20261122": True, "20261121": False, "20261115": True, "20261110": False,
                    "20261101": False}


def test_retention_by_age_keeps_young_incomplete_backups_too():
    decisions = decide(CATALOG, None, 5, NOW)
    assert [(d.backup.id[3:11], d.keep) for d in decisions] == [
        ("20261122", True), ("20261121", True), ("20261115", True), ("20261110", False),
        ("20261101", False)]
    assert decisions[2].reason == "the newest verified backup (drill d-3)"
    assert decisions[3].reason == "12.1 days old"


def test_retention_without_a_rule_is_refused():
    with pytest.raises(ValueError):
        decide(CATALOG, None, None, NOW)
