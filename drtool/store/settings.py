"""Where backups and evidence copies go off the machine: S3 settings from the inventory.

`drtool_store_s3` makes an environment's backup store a bucket (the local store folder then
only stages files on their way up and down); `drtool_evidence_s3` names an Object Lock bucket
that receives a copy of every drill's evidence. Pure: parsing and validation only, so that
loading an environment does not import boto3.

Credentials come from boto3's usual chain (environment variables, an AWS profile, instance
roles) or from the inventory through ansible-vault (`access_key_id`, `secret_access_key`);
like notification URLs they are kept in memory only.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
SSE = ("AES256", "aws:kms")
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
MIB = 1024 * 1024
# S3 refuses parts under 5 MiB (but the last); 64 MiB was measured fastest on moto and is
# AWS's own advice for large objects (bench/s3_parts.py measures it again).
MIN_PART_MB, DEFAULT_PART_MB, MAX_PART_MB = 5, 64, 5120


@dataclass(frozen=True)
class S3Connection:
    """How to reach a bucket."""

    bucket: str
    prefix: str = ""  # ends with "/" when not empty
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    max_attempts: int = 4  # botocore's "standard" retry mode, backoff with jitter
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def secrets(self) -> list[str]:
        return [s for s in (self.access_key_id, self.secret_access_key, self.session_token) if s]


@dataclass(frozen=True)
class S3StoreSettings:
    connection: S3Connection
    sse: str | None = None
    kms_key_id: str | None = None
    storage_class: str | None = None
    part_size_mb: int = DEFAULT_PART_MB
    concurrency: int = 4
    encryption_key_file: str | None = None


@dataclass(frozen=True)
class EvidenceSettings:
    connection: S3Connection
    lock_mode: str = "GOVERNANCE"
    retention_days: int = 400


Problems = list[tuple[str, str]]

CONNECTION_KEYS = {"bucket", "prefix", "region", "endpoint_url", "profile", "access_key_id",
                   "secret_access_key", "session_token", "max_attempts", "connect_timeout_s",
                   "read_timeout_s"}


def _text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value in (None, ""):
        return None
    return str(value)


def _number(raw: dict[str, Any], key: str, default: float, low: float, high: float,
            whole: bool, problems: Problems, name: str) -> float:
    value = raw.get(key, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if whole and number != int(number):
            raise ValueError
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number <= high:
        kind = "a whole number" if whole else "a number"
        problems.append((f"{name}.{key}", f"must be {kind} from {low:g} to {high:g}"))
        return default
    return int(number) if whole else number


def _connection(raw: dict[str, Any], name: str, problems: Problems) -> S3Connection | None:
    bucket = _text(raw, "bucket")
    if bucket is None or not BUCKET.match(bucket):
        problems.append((f"{name}.bucket", "must be an S3 bucket name (3-63 of a-z 0-9 . -)"))
    prefix = (_text(raw, "prefix") or "").strip("/")
    endpoint = _text(raw, "endpoint_url")
    if endpoint is not None:
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append((f"{name}.endpoint_url", "must be an http(s) URL"))
            endpoint = None
    if bool(raw.get("access_key_id")) != bool(raw.get("secret_access_key")):
        problems.append((name, "access_key_id and secret_access_key go together"))
    attempts = int(_number(raw, "max_attempts", 4, 1, 10, True, problems, name))
    connect = _number(raw, "connect_timeout_s", 5.0, 0.1, 300, False, problems, name)
    read = _number(raw, "read_timeout_s", 60.0, 0.1, 3600, False, problems, name)
    if bucket is None or not BUCKET.match(bucket):
        return None
    return S3Connection(
        bucket=bucket, prefix=f"{prefix}/" if prefix else "", region=_text(raw, "region"),
        endpoint_url=endpoint, profile=_text(raw, "profile"),
        access_key_id=_text(raw, "access_key_id"),
        secret_access_key=_text(raw, "secret_access_key"),
        session_token=_text(raw, "session_token"),
        max_attempts=attempts, connect_timeout_s=connect, read_timeout_s=read)


def _unknown(raw: dict[str, Any], known: set[str], name: str, problems: Problems) -> None:
    for key in sorted(set(raw) - known, key=str):
        problems.append((f"{name}.{key}", f"unknown setting (known: {', '.join(sorted(known))})"))


def parse_store(raw: Any) -> tuple[S3StoreSettings | None, Problems]:
    """`drtool_store_s3` as Ansible resolved it: settings (None: the local store) and every
    problem as (key, message). Messages never quote a value: some are secrets."""
    name = "drtool_store_s3"
    problems: Problems = []
    if raw in (None, "", {}):
        return None, problems
    if not isinstance(raw, dict):
        return None, [(name, "must be a mapping with at least a bucket")]
    known = CONNECTION_KEYS | {"sse", "kms_key_id", "storage_class", "part_size_mb",
                               "concurrency", "encryption_key_file"}
    _unknown(raw, known, name, problems)
    connection = _connection(raw, name, problems)
    sse = _text(raw, "sse")
    if sse is not None and sse not in SSE:
        problems.append((f"{name}.sse", f"must be one of {', '.join(SSE)}"))
    if raw.get("kms_key_id") and sse != "aws:kms":
        problems.append((f"{name}.kms_key_id", "needs sse: aws:kms"))
    key_file = _text(raw, "encryption_key_file")
    if key_file is not None and not key_file.startswith("/"):
        problems.append((f"{name}.encryption_key_file", "must be an absolute path"))
    part = int(_number(raw, "part_size_mb", DEFAULT_PART_MB, MIN_PART_MB, MAX_PART_MB, True,
                       problems, name))
    concurrency = int(_number(raw, "concurrency", 4, 1, 64, True, problems, name))
    if connection is None or problems:
        return None, problems
    return S3StoreSettings(connection, sse, _text(raw, "kms_key_id"),
                           _text(raw, "storage_class"), part, concurrency, key_file), problems


def parse_evidence(raw: Any) -> tuple[EvidenceSettings | None, Problems]:
    """`drtool_evidence_s3`: the Object Lock bucket for evidence copies, or None."""
    name = "drtool_evidence_s3"
    problems: Problems = []
    if raw in (None, "", {}):
        return None, problems
    if not isinstance(raw, dict):
        return None, [(name, "must be a mapping with at least a bucket")]
    _unknown(raw, CONNECTION_KEYS | {"lock_mode", "retention_days"}, name, problems)
    connection = _connection(raw, name, problems)
    mode = str(raw.get("lock_mode", "GOVERNANCE")).upper()
    if mode not in LOCK_MODES:
        problems.append((f"{name}.lock_mode", f"must be one of {', '.join(LOCK_MODES)}"))
    days = int(_number(raw, "retention_days", 400, 1, 36500, True, problems, name))
    if connection is None or problems:
        return None, problems
    return EvidenceSettings(connection, mode, days), problems
