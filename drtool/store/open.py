"""Which store an environment uses: the local folder by default, S3 when `drtool_store_s3`
is set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from drtool.store.local import LocalStore

if TYPE_CHECKING:
    from pathlib import Path

    from drtool.store.base import BackupStore
    from drtool.store.settings import S3StoreSettings


class StorePlace(Protocol):
    """What open_store reads of an environment (drtool.config.Environment)."""

    @property
    def store_root(self) -> Path: ...
    @property
    def store_s3(self) -> S3StoreSettings | None: ...


def open_store(env: StorePlace) -> BackupStore:
    """The environment's store. The S3 store stages files in the local store's folder."""
    if env.store_s3 is not None:
        from drtool.store.s3 import S3Store  # noqa: PLC0415 - boto3 only when S3 is used

        return S3Store(env.store_s3, env.store_root)
    return LocalStore(env.store_root)
