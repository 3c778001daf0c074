"""The history chain's head, anchored in the Object Lock evidence bucket.

The local chain shows a journal or a record changed, removed from the middle, inserted or
reordered. It cannot show the newest records cut off together with their journals: what is
left is a shorter chain that holds. So after each record is appended, drtool puts a copy of
it, with its hash, at PREFIX/ENV/chain/SEQ-DRILL_ID.json in the Object Lock bucket. A record's
hash covers every record before it, so one anchor pins the whole chain up to it.
`drtool evidence verify --env ENV --anchors` reads every version of every anchor back and
checks that each anchored record is still in the history with the same hash.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from drtool.core import chain
from drtool.errors import StoreError
from drtool.store.evidence_copy import put_locked
from drtool.store.s3 import client, describe_error
from drtool.store.settings import EvidenceSettings

ANCHOR_FIELDS = ("env", "seq", "drill_id", "hash", "previous_hash", "journal_sha256")


def chain_prefix(settings: EvidenceSettings, env: str) -> str:
    return f"{settings.connection.prefix}{env}/chain/"


def anchor_body(env: str, entry: chain.Link) -> bytes:
    """What an anchor holds: the record, its place in the chain and its hash."""
    return chain.canonical({
        "env": env, "seq": entry.seq, "drill_id": entry.drill_id, "hash": entry.hash,
        "previous_hash": entry.previous_hash, "journal_sha256": entry.journal_sha256,
        "record": entry.record}).encode("utf-8")


def put_anchor(settings: EvidenceSettings, env: str, entry: chain.Link, s3: Any = None,
               now: dt.datetime | None = None) -> dict[str, Any]:
    """Anchor one record (the head, just appended); StoreError when it cannot be written."""
    key = f"{chain_prefix(settings, env)}{entry.seq:010d}-{entry.drill_id}.json"
    return put_locked(settings, s3 or client(settings.connection), key,
                      anchor_body(env, entry), now)


def read_anchors(settings: EvidenceSettings, env: str, s3: Any = None) -> list[dict[str, Any]]:
    """Every version of every anchor of `env`, each with its url and version id. A version
    that is not an anchor drtool wrote comes back with an `invalid` reason (someone wrote
    it with the bucket's credentials: that is a finding, not an error)."""
    s3 = s3 or client(settings.connection)
    bucket, prefix = settings.connection.bucket, chain_prefix(settings, env)
    started = time.monotonic()
    found = []
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket,
                                                                     Prefix=prefix):
            for version in page.get("Versions", []):
                key, version_id = version["Key"], version["VersionId"]
                body = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"]
                found.append({"url": f"s3://{bucket}/{key}", "version_id": version_id,
                              **named_by(key[len(prefix):]),
                              **parse_anchor(body.read(), env)})
    except (BotoCoreError, ClientError) as exc:
        raise StoreError(describe_error(exc, f"reading the anchors under s3://{bucket}/{prefix}",
                                        started)) from None
    return found


def named_by(name: str) -> dict[str, Any]:
    """The seq and drill id an anchor's object name gives (SEQ-DRILL_ID.json), to name an
    anchor whose contents cannot be read."""
    seq, _, rest = name.partition("-")
    return {"seq": int(seq), "drill_id": rest.removesuffix(".json")} if seq.isdigit() else {
        "seq": 0, "drill_id": name}


def parse_anchor(data: bytes, env: str) -> dict[str, Any]:
    """An anchor's fields, or {"invalid": why} for anything drtool did not write for `env`."""
    try:
        anchor = json.loads(data)
    except ValueError:
        return {"invalid": "not JSON"}
    if (not isinstance(anchor, dict) or any(k not in anchor for k in ANCHOR_FIELDS)
            or not isinstance(anchor["seq"], int) or not isinstance(anchor.get("record"), dict)):
        return {"invalid": "not a chain anchor"}
    if anchor["env"] != env:
        return {"invalid": f"an anchor of {anchor['env']!r}, not of {env!r}"}
    if chain.link(anchor["previous_hash"], anchor["record"],
                  anchor["journal_sha256"]) != anchor["hash"]:
        return {"invalid": "its record does not match its hash"}
    return {k: anchor[k] for k in ANCHOR_FIELDS}
