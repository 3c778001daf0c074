"""Client-side encryption of backup files: AES-256-GCM over 1 MiB chunks (cryptography's
AESGCM), with a key kept outside the store.

A file is `MAGIC | salt(16) | chunk*`, each chunk `length(4, big-endian) | ciphertext+tag`.
Chunk n is sealed with nonce = salt[:8] + n (4 bytes) and, as associated data, the header and
a flag saying whether it is the last chunk: reordering, dropping or appending chunks, or
cutting the file short, makes decryption fail instead of yielding a shorter plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drtool.errors import ConfigError

MAGIC = b"DRTOOL-ENC-1\n"
CHUNK = 1 << 20
KEY_BYTES = 32


class DecryptionError(Exception):
    """The file is not what this key sealed: tampered, truncated, or another key's."""


def load_key(path: Path) -> bytes:
    """A 32-byte key from `path`: base64 text (what `drtool keys generate` writes) or raw.
    ConfigError, naming the file but never the key, when it is missing or malformed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"encryption key {path}: {exc.strerror or exc}") from None
    if len(data) == KEY_BYTES:
        return data
    try:
        key = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"encryption key {path}: not a {KEY_BYTES}-byte key (base64 or raw)")
    return key


def fingerprint(key: bytes) -> str:
    """Names a key without revealing it: 16 hex digits of sha256 over a label and the key."""
    return hashlib.sha256(b"drtool key fingerprint\0" + key).hexdigest()[:16]


def new_key() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n"


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">I?", index, last)


def encrypt(key: bytes, source: BinaryIO, target: BinaryIO) -> None:
    aead = AESGCM(key)
    salt = os.urandom(16)
    header = MAGIC + salt
    target.write(header)
    index = 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK) if chunk else b""
        last = not following
        nonce = salt[:8] + struct.pack(">I", index)
        sealed = aead.encrypt(nonce, chunk, _aad(header, index, last))
        target.write(struct.pack(">I", len(sealed)) + sealed)
        if last:
            return
        chunk, index = following, index + 1


def decrypt(key: bytes, source: BinaryIO, target: BinaryIO) -> None:
    aead = AESGCM(key)
    header = source.read(len(MAGIC) + 16)
    if len(header) != len(MAGIC) + 16 or not header.startswith(MAGIC):
        raise DecryptionError("not a drtool-encrypted file")
    salt = header[len(MAGIC):]
    index = 0
    pending = _read_chunk(source)
    if pending is None:
        raise DecryptionError("cut short: no chunk")
    while pending is not None:
        following = _read_chunk(source)
        last = following is None
        try:
            plain = aead.decrypt(salt[:8] + struct.pack(">I", index), pending,
                                 _aad(header, index, last))
        except InvalidTag:
            raise DecryptionError(f"chunk {index} does not authenticate: tampered, cut short "
                                  "or sealed with another key") from None
        target.write(plain)
        pending, index = following, index + 1


def _read_chunk(source: BinaryIO) -> bytes | None:
    size = source.read(4)
    if not size:
        return None
    if len(size) != 4:
        raise DecryptionError("cut short inside a chunk's length")
    (length,) = struct.unpack(">I", size)
    if length > CHUNK + 16:
        raise DecryptionError("a chunk longer than any drtool writes")
    data = source.read(length)
    if len(data) != length:
        raise DecryptionError("cut short inside a chunk")
    return data
