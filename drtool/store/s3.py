"""The S3 backup store (AWS S3 or any S3-compatible endpoint), through boto3.

A backup is the objects `PREFIX/<backup_id>/<path>` for every file of its manifest, then
`PREFIX/<backup_id>/manifest.json`, written last, so that a backup without a manifest is
known to be incomplete. A local folder (the environment's store folder) stages files on
their way: the backup phase writes there, `publish` uploads and then empties it, and
`fetch` downloads into it, checking every file against the manifest before the restore
playbook may use any of it.

Every upload carries an S3 SHA-256 checksum (per part for multipart), which S3 checks on
receipt; with a client-side key, files are sealed (drtool.store.crypto) before they leave.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from drtool.core.clock import iso, utc_now
from drtool.core.manifest import Manifest, manifest_from_json, path_problem, shown
from drtool.errors import ConfigError, StoreError
from drtool.store import crypto
from drtool.store.base import BackupSummary, ManifestInvalid, Transfer, backup_time
from drtool.store.local import MANIFEST, LocalStore, sha256_of
from drtool.store.settings import MIB, S3Connection, S3StoreSettings

VERIFIED = "verified.json"
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
ENCRYPTION = "AES-256-GCM, 1 MiB chunks (drtool.store.crypto)"


def client(connection: S3Connection) -> Any:
    """A boto3 S3 client with bounded retries and timeouts; path-style addressing when an
    endpoint URL is given (S3-compatible servers rarely resolve bucket subdomains)."""
    session = boto3.session.Session(
        profile_name=connection.profile, aws_access_key_id=connection.access_key_id,
        aws_secret_access_key=connection.secret_access_key,
        aws_session_token=connection.session_token, region_name=connection.region)
    config = Config(
        retries={"max_attempts": connection.max_attempts, "mode": "standard"},
        connect_timeout=connection.connect_timeout_s, read_timeout=connection.read_timeout_s,
        s3={"addressing_style": "path" if connection.endpoint_url else "auto"})
    try:
        return session.client("s3", endpoint_url=connection.endpoint_url, config=config)
    except BotoCoreError as exc:
        raise StoreError(f"{connection.url}: {exc}") from None


def describe_error(exc: Exception, where: str, started: float | None = None) -> str:
    """One line for an S3 failure: what, where, and (given when it began) after how long.
    Never a credential."""
    took = f" (after {time.monotonic() - started:.1f} s)" if started is not None else ""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        return f"{where}: {code}{': ' + message if message else ''}{took}"
    return f"{where}: {type(exc).__name__}: {exc}{took}"


def _not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND


class S3Store:
    """Backups in a bucket under a prefix; staged in a local folder on their way."""

    def __init__(self, settings: S3StoreSettings, spool: Path, s3: Any = None) -> None:
        self.settings = settings
        self.connection = settings.connection
        self.spool = LocalStore(spool)
        self._s3 = s3

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = client(self.connection)
        return self._s3

    @property
    def location(self) -> str:
        return self.connection.url

    def location_of(self, backup_id: str) -> str:
        return f"{self.connection.url}{backup_id}/"

    def key(self, backup_id: str, path: str) -> str:
        self.spool.backup_path(backup_id)  # refuses a malformed id
        return f"{self.connection.prefix}{backup_id}/{path}"

    def url(self, backup_id: str, path: str) -> str:
        return f"s3://{self.connection.bucket}/{self.key(backup_id, path)}"

    def backup_path(self, backup_id: str) -> Path:
        return self.spool.backup_path(backup_id)

    def _transfer_config(self) -> TransferConfig:
        part = self.settings.part_size_mb * MIB
        return TransferConfig(multipart_threshold=part, multipart_chunksize=part,
                              max_concurrency=self.settings.concurrency, use_threads=True)

    def _call(self, where: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return action(*args, **kwargs)
        except ClientError:
            raise
        except (BotoCoreError, OSError) as exc:
            raise StoreError(describe_error(exc, where, started)) from None

    # -- manifests and the catalog ----------------------------------------------------------

    def write_manifest(self, manifest: Manifest) -> tuple[Path, str]:
        """Stage the manifest; `publish` uploads it, last."""
        return self.spool.write_manifest(manifest)

    def read_manifest(self, backup_id: str) -> Manifest:
        """The backup's manifest from the bucket, validated (manifest_from_json). ConfigError
        when there is none; ManifestInvalid when it cannot be trusted; StoreError when the
        bucket cannot be read (naming the object, never a credential)."""
        where = self.url(backup_id, MANIFEST)
        try:
            body = self._call(where, self._get, self.key(backup_id, MANIFEST))
        except ClientError as exc:
            if _not_found(exc):
                raise ConfigError(f"no backup {backup_id!r} in {self.location}") from None
            raise StoreError(describe_error(exc, where)) from None
        try:
            return manifest_from_json(body.decode("utf-8"), backup_id)
        except ValueError as exc:  # not UTF-8, not JSON, or not a manifest drtool wrote
            raise ManifestInvalid(backup_id, where, str(exc)) from None

    def _get(self, key: str) -> bytes:
        response = self.s3.get_object(Bucket=self.connection.bucket, Key=key)
        return bytes(response["Body"].read())

    def _ids(self) -> Iterator[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.connection.bucket,
                                       Prefix=self.connection.prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"][len(self.connection.prefix):].rstrip("/")

    def catalog(self) -> list[BackupSummary]:
        """Every backup under the prefix, newest first, with its manifest (when complete) and
        whether a passed drill verified it."""
        where = self.location
        try:
            ids = [i for i in self._call(where, lambda: list(self._ids()))
                   if LocalStore.valid_id(i)]
            summaries = []
            for backup_id in ids:
                try:
                    manifest = manifest_from_json(
                        self._call(where, self._get, self.key(backup_id, MANIFEST)).decode(),
                        backup_id)
                    consistent, size, complete = manifest.consistent_at, manifest.size, True
                except (ClientError, ValueError, KeyError, TypeError):
                    consistent, size, complete = None, None, False
                verified = self._verified(backup_id)
                summaries.append(BackupSummary(
                    backup_id, consistent, size, self.location_of(backup_id), complete,
                    verified_by=verified, created_at=backup_time(backup_id)))
        except ClientError as exc:
            raise StoreError(describe_error(exc, where)) from None
        return sorted(summaries, key=lambda s: s.id, reverse=True)

    def _verified(self, backup_id: str) -> str | None:
        try:
            data = json.loads(self._get(self.key(backup_id, VERIFIED)))
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        except ValueError:
            return None
        return str(data.get("drill_id")) if isinstance(data, dict) else None

    def mark_verified(self, backup_id: str, drill_id: str) -> None:
        body = json.dumps({"backup_id": backup_id, "drill_id": drill_id,
                           "verified_at": iso(utc_now())}, indent=2).encode()
        where = self.url(backup_id, VERIFIED)
        try:
            self._call(where, self.s3.put_object, Bucket=self.connection.bucket,
                       Key=self.key(backup_id, VERIFIED), Body=body,
                       ChecksumAlgorithm="SHA256", **self._object_args())
        except ClientError as exc:
            raise StoreError(describe_error(exc, where)) from None

    # -- up ----------------------------------------------------------------------------------

    def _object_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.settings.sse:
            args["ServerSideEncryption"] = self.settings.sse
        if self.settings.kms_key_id:
            args["SSEKMSKeyId"] = self.settings.kms_key_id
        if self.settings.storage_class:
            args["StorageClass"] = self.settings.storage_class
        return args

    def _key(self) -> bytes | None:
        path = self.settings.encryption_key_file
        return crypto.load_key(Path(path)) if path else None

    def publish(self, manifest: Manifest) -> tuple[Manifest, Transfer]:
        """Upload every file of the staged backup, then its manifest (which now says where
        and how the backup is stored); empty the staging folder. StoreError when any upload
        fails, ConfigError when the encryption key cannot be read."""
        key = self._key()
        folder = self.spool.backup_path(manifest.backup_id)
        started, began = time.monotonic(), iso(utc_now())
        storage = {"kind": "s3", "location": self.location_of(manifest.backup_id),
                   "encryption": None if key is None else {
                       "algorithm": ENCRYPTION, "key_fingerprint": crypto.fingerprint(key)}}
        sent = 0
        files: list[dict[str, Any]] = []
        sealed_dir = folder / ".sealed"
        try:
            for entry in manifest.files:
                source = folder / entry.path
                if key is not None:
                    sealed = sealed_dir / entry.path
                    sealed.parent.mkdir(parents=True, exist_ok=True)
                    with open(source, "rb") as plain, open(sealed, "wb") as out:
                        crypto.encrypt(key, plain, out)
                    source = sealed
                stored_sha256 = entry.sha256 if key is None else sha256_of(source)
                metadata = {"drtool-sha256": entry.sha256,
                            "drtool-encrypted": "yes" if key is not None else "no"}
                files.append(self._upload(source, manifest.backup_id, entry.path, metadata,
                                          stored_sha256, entry.sha256))
                sent += source.stat().st_size
            published = dataclasses.replace(manifest, extra={**manifest.extra,
                                                             "storage": storage})
            self.spool.write_manifest(published)
            manifest_sha256 = sha256_of(folder / MANIFEST)
            files.append(self._upload(folder / MANIFEST, manifest.backup_id, MANIFEST, {},
                                      manifest_sha256, manifest_sha256))
        finally:
            shutil.rmtree(sealed_dir, ignore_errors=True)
        took = time.monotonic() - started
        self.release(manifest.backup_id)  # the off-site copy is now the only one
        return published, Transfer("upload", len(files), sent, took, began, iso(utc_now()),
                                   self.location_of(manifest.backup_id), files)

    def _upload(self, source: Path, backup_id: str, path: str, metadata: dict[str, str],
                stored_sha256: str, sha256: str) -> dict[str, Any]:
        """Upload one file with an S3 SHA-256 checksum, then read back what S3 recorded. A
        whole-object checksum must be the file's sha256; a multipart (composite) one was
        checked part by part by S3 on receipt. Returns the file's record for the journal."""
        key, where = self.key(backup_id, path), self.url(backup_id, path)
        extra = {"ChecksumAlgorithm": "SHA256", "Metadata": metadata, **self._object_args()}
        started = time.monotonic()
        try:
            self.s3.upload_file(str(source), self.connection.bucket, key, ExtraArgs=extra,
                                Config=self._transfer_config())
            head = self.s3.head_object(Bucket=self.connection.bucket, Key=key,
                                       ChecksumMode="ENABLED")
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StoreError(describe_error(exc, f"upload to {where}", started)) from None
        checksum = head.get("ChecksumSHA256")
        # A multipart upload's checksum is a checksum of the parts' checksums (S3 marks it
        # COMPOSITE and suffixes "-N"; some servers do neither). Its ETag ends in "-N" always.
        etag = str(head.get("ETag", "")).strip('"')
        composite = (head.get("ChecksumType") == "COMPOSITE" or "-" in str(checksum or "")
                     or "-" in etag)
        if not checksum:
            checked = "no checksum came back"
        elif composite:
            checked = "per part, by S3"
        elif base64.b64decode(checksum).hex() == stored_sha256:
            checked = "whole object, matches"
        else:
            raise StoreError(f"upload to {where}: S3's SHA-256 {checksum} is not the file's "
                             f"({stored_sha256})")
        return {"path": path, "url": where, "bytes": int(head.get("ContentLength", 0)),
                "sha256": sha256, "stored_sha256": stored_sha256, "s3_checksum_sha256": checksum,
                "checksum": checked, "etag": etag,
                "version_id": head.get("VersionId")}

    # -- down --------------------------------------------------------------------------------

    def fetch(self, manifest: Manifest) -> tuple[list[dict[str, Any]], Transfer]:
        """Download the backup into the staging folder and check every file against the
        manifest. Returns the problems (each names its object; none: ready to restore) and
        what was moved. A path that would lead outside the staging folder, or an object of
        the backup that the manifest does not list, is a problem found before any download.
        On any problem the staging folder is emptied, so nothing half-checked can be
        restored. StoreError when the store cannot be reached (naming the object)."""
        folder = self.spool.backup_path(manifest.backup_id)
        self.release(manifest.backup_id)
        started, began = time.monotonic(), iso(utc_now())
        problems = self._outside(manifest, folder) or self._unlisted(manifest, started)
        folder.mkdir(parents=True, mode=0o700)
        storage = manifest.extra.get("storage")
        encryption = storage.get("encryption") if isinstance(storage, dict) else None
        sealed_by = encryption.get("key_fingerprint") if isinstance(encryption, dict) else None
        key: bytes | None = None
        if sealed_by and not problems:
            key, problem = self._restore_key(sealed_by)
            if problem:
                problems.append({"path": "*", "object": self.location_of(manifest.backup_id),
                                 "expected": f"key {sealed_by}", "actual": problem,
                                 "problem": problem})
        received = 0
        files: list[dict[str, Any]] = []
        for entry in manifest.files if not problems else ():
            where = self.url(manifest.backup_id, entry.path)
            target = folder / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            try:
                self.s3.download_file(self.connection.bucket,
                                      self.key(manifest.backup_id, entry.path), str(part),
                                      Config=self._transfer_config())
            except ClientError as exc:
                if _not_found(exc):
                    problems.append({"path": entry.path, "object": where,
                                     "expected": entry.sha256, "actual": None,
                                     "problem": f"object {where} is missing"})
                    continue
                self.release(manifest.backup_id)
                raise StoreError(describe_error(exc, f"download of {where}", started)) from None
            except (BotoCoreError, Boto3Error, OSError) as exc:  # Boto3Error: retries exceeded
                self.release(manifest.backup_id)
                raise StoreError(describe_error(exc, f"download of {where}", started)) from None
            size = part.stat().st_size
            received += size
            actual, problem = self._open_file(part, target, key)
            if problem is None and actual != entry.sha256:
                problem = f"object {where}: sha256 {actual} differs from the manifest's"
            files.append({"path": entry.path, "url": where, "bytes": size,
                          "expected_sha256": entry.sha256, "sha256": actual,
                          "verified": problem is None})
            if problem is not None:
                problems.append({"path": entry.path, "object": where, "expected": entry.sha256,
                                 "actual": actual, "problem": problem})
        if problems:
            self.release(manifest.backup_id)
        else:
            self.spool.write_manifest(manifest)
        return problems, Transfer("download", len(files), received,
                                  time.monotonic() - started, began, iso(utc_now()),
                                  self.location_of(manifest.backup_id), files)

    def _outside(self, manifest: Manifest, folder: Path) -> list[dict[str, Any]]:
        """One problem per manifest path that could lead outside the staging folder.
        read_manifest already refuses such a manifest; this holds for any manifest given."""
        where, root = self.url(manifest.backup_id, MANIFEST), folder.resolve()
        problems = []
        for entry in manifest.files:
            problem = path_problem(entry.path)
            if problem is None and not (folder / entry.path).resolve().is_relative_to(root):
                problem = f"file path {shown(entry.path)} leads outside the staging folder"
            if problem is not None:
                problems.append({"path": entry.path, "object": where, "expected": entry.sha256,
                                 "actual": None, "problem": f"manifest {where}: {problem}"})
        return problems

    def _unlisted(self, manifest: Manifest, started: float) -> list[dict[str, Any]]:
        """One problem per object of the backup that its manifest does not list (an entry
        dropped from the manifest while its file is still there). StoreError when the
        backup's objects cannot be listed."""
        prefix = self.key(manifest.backup_id, "")
        where = f"s3://{self.connection.bucket}/{prefix}"
        known = {self.key(manifest.backup_id, e.path) for e in manifest.files}
        known |= {prefix + MANIFEST, prefix + VERIFIED}
        try:
            paginator = self.s3.get_paginator("list_objects_v2")
            keys = [o["Key"] for page in paginator.paginate(Bucket=self.connection.bucket,
                                                            Prefix=prefix)
                    for o in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(describe_error(exc, f"listing of {where}", started)) from None
        return [{"path": key[len(prefix):], "object": f"s3://{self.connection.bucket}/{key}",
                 "expected": None, "actual": None,
                 "problem": f"object s3://{self.connection.bucket}/{shown(key)[1:-1]} is not "
                            "in the manifest"}
                for key in sorted(set(keys) - known)]

    def _restore_key(self, sealed_by: str) -> tuple[bytes | None, str | None]:
        path = self.settings.encryption_key_file
        if not path:
            return None, (f"the backup is encrypted (key {sealed_by}) and "
                          "drtool_store_s3.encryption_key_file is not set")
        try:
            key = crypto.load_key(Path(path))
        except ConfigError as exc:
            return None, f"the backup is encrypted (key {sealed_by}): {exc.message}"
        if crypto.fingerprint(key) != sealed_by:
            return None, (f"the backup is encrypted with key {sealed_by}; {path} holds key "
                          f"{crypto.fingerprint(key)}")
        return key, None

    @staticmethod
    def _open_file(part: Path, target: Path, key: bytes | None) -> tuple[str | None, str | None]:
        """Decrypt (or just rename) a downloaded file into place; its sha256, or a problem."""
        if key is None:
            part.replace(target)
            return sha256_of(target), None
        try:
            with open(part, "rb") as sealed, open(target, "wb") as plain:
                crypto.decrypt(key, sealed, plain)
        except crypto.DecryptionError as exc:
            return None, f"cannot decrypt: {exc}"
        finally:
            part.unlink(missing_ok=True)
        return sha256_of(target), None

    # -- housekeeping -------------------------------------------------------------------------

    def check(self, manifest: Manifest) -> list[dict[str, Any]]:
        """Download every object of the backup and check it (see fetch), then empty the
        staging folder: nothing is kept from a check."""
        try:
            problems, _transfer = self.fetch(manifest)
        finally:
            self.release(manifest.backup_id)
        return problems

    def release(self, backup_id: str) -> None:
        """Empty the staging folder of a backup (the bucket keeps it)."""
        shutil.rmtree(self.spool.backup_path(backup_id), ignore_errors=True)

    def delete(self, backup_id: str) -> None:
        """Delete every object of the backup (current versions; a versioned bucket keeps the
        older ones by its own rules)."""
        prefix = self.key(backup_id, "")
        where = f"s3://{self.connection.bucket}/{prefix}"
        started = time.monotonic()
        try:
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.connection.bucket, Prefix=prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    answer = self.s3.delete_objects(Bucket=self.connection.bucket,
                                                    Delete={"Objects": keys, "Quiet": True})
                    if answer.get("Errors"):
                        first = answer["Errors"][0]
                        raise StoreError(f"delete of {where}: {first.get('Key')}: "
                                         f"{first.get('Code')}")
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(describe_error(exc, f"delete of {where}", started)) from None
        self.release(backup_id)


