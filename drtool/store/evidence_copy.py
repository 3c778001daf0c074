"""Copies of a drill's evidence in an S3 bucket with Object Lock, so that no one with the
machine's credentials can rewrite or delete them before their retention ends.

Each object is written with its Object Lock mode (GOVERNANCE or COMPLIANCE) and retain-until
date, and an S3 SHA-256 checksum; the version id S3 returns is what the journal records.
Two kinds of object go there: copies of journals and reports (`copy_evidence`) and anchors of
the history chain's head (`drtool.store.anchor`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from drtool.core.clock import iso, utc_now
from drtool.errors import StoreError
from drtool.store.s3 import client, describe_error
from drtool.store.settings import EvidenceSettings


def put_locked(settings: EvidenceSettings, s3: Any, key: str, body: bytes,
               now: dt.datetime | None = None) -> dict[str, Any]:
    """Write one object under Object Lock; return its url, version id, sha256, mode and
    retain-until date. StoreError when it cannot be written or comes back unversioned."""
    bucket = settings.connection.bucket
    url = f"s3://{bucket}/{key}"
    sha256 = hashlib.sha256(body).hexdigest()
    retain_until = (now or utc_now()) + dt.timedelta(days=settings.retention_days)
    started = time.monotonic()
    try:
        answer = s3.put_object(
            Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256",
            ObjectLockMode=settings.lock_mode, ObjectLockRetainUntilDate=retain_until,
            Metadata={"drtool-sha256": sha256})
    except (BotoCoreError, ClientError) as exc:
        raise StoreError(describe_error(exc, f"evidence copy to {url}", started)) from None
    version = answer.get("VersionId")
    if not version:
        raise StoreError(f"evidence copy to {url}: no version id came back: is the bucket "
                         "versioned, with Object Lock?")
    return {"url": url, "version_id": version, "sha256": sha256, "mode": settings.lock_mode,
            "retain_until": iso(retain_until)}


def copy_evidence(settings: EvidenceSettings, env: str, drill_id: str, files: list[Path],
                  s3: Any = None, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Put each file under PREFIX/ENV/DRILL_ID/ with retention; return what was written
    (url, version id, sha256, mode, retain-until). StoreError names the first failure."""
    s3 = s3 or client(settings.connection)
    return [{"file": path.name, **put_locked(
                settings, s3, f"{settings.connection.prefix}{env}/{drill_id}/{path.name}",
                path.read_bytes(), now)}
            for path in files]
