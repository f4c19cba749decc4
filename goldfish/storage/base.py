"""The object storage interface and what every implementation shares: keys, object facts, checksums.

Keys are ``/``-separated relative names (``runs/<id>/outputs/model.npy``); every segment is checked
the way the stage SDK checks them (no ``..``, no empty segment, no NUL or backslash, no reserved
``.gf-`` names), so a key can never address anything outside its store.

Every download is verified: the bytes written locally must match the object's stored crc32c (and
its sha256 when the object carries one); a mismatch is an error and leaves nothing at the
destination.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from goldfish.errors import GoldfishError

import google_crc32c

SHA256_META = "goldfish-sha256"
_RESERVED = (".gf-tmp-", ".gf-old-", ".gf-meta")


class StorageError(GoldfishError):
    """An object could not be read or written (missing, corrupted, refused, unreachable)."""

    kind = "storage"


@dataclass(frozen=True)
class ObjectInfo:
    """Facts about one stored object."""

    key: str
    uri: str
    size: int
    crc32c: str | None = None  # base64 of the big-endian CRC32C, as GCS reports it
    md5: str | None = None
    sha256: str | None = None  # hex, when the writer recorded one
    generation: int | None = None
    updated: str | None = None


@runtime_checkable
class ObjectStorage(Protocol):
    """A flat namespace of objects under one root (a directory or a bucket)."""

    kind: Literal["local", "gcs"]

    def uri(self, key: str = "") -> str:
        """The object's address as shown to people (``gs://bucket/key`` or an absolute path)."""
        ...

    def put_file(self, src: Path, key: str, *, sha256: str | None = None) -> ObjectInfo:
        """Store the file ``src`` as ``key`` (large files go up in resumable chunks)."""
        ...

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo: ...

    def put_dir(self, src: Path, prefix: str) -> list[ObjectInfo]:
        """Store every file under ``src`` as ``prefix/<relative path>``."""
        ...

    def get_file(self, key: str, dest: Path, *, generation: int | None = None) -> ObjectInfo:
        """Download ``key`` to ``dest`` (atomically, checksum-verified); StorageError if absent."""
        ...

    def get_bytes(self, key: str) -> bytes | None:
        """A small object's bytes (verified), or None when it does not exist."""
        ...

    def get_dir(self, prefix: str, dest: Path) -> list[ObjectInfo]:
        """Download every object under ``prefix/`` into ``dest`` (relative paths kept)."""
        ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""
        ...

    def delete(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int: ...


def check_key(key: object, *, prefix: bool = False) -> str:
    """A valid object key (or key prefix, which may end with '/'); StorageError naming the rule."""
    if not isinstance(key, str) or not key or key.startswith("/"):
        raise StorageError(f"Object key {key!r} must be a non-empty relative name like 'runs/stage-1a2b3c4d/outputs'.",
                           fix="Use '/'-separated names without a leading '/'.")
    body = key[:-1] if prefix and key.endswith("/") else key
    for seg in body.split("/"):
        if seg in ("", ".", "..") or "\x00" in seg or "\\" in seg or seg.startswith(_RESERVED):
            raise StorageError(f"Object key {key!r} has an invalid segment {seg!r}.",
                               fix="Use names without '..', empty segments, NUL, backslashes or a leading '.gf-'.")
    return key


_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]", re.ASCII)


def split_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/key`` → (bucket, key), both checked; StorageError for anything else."""
    if not isinstance(uri, str) or not uri.startswith("gs://"):
        raise StorageError(f"{uri!r} is not a gs:// URI.", fix="Write gs://<bucket>/<object>.")
    bucket, _, key = uri[len("gs://"):].partition("/")
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise StorageError(f"{uri!r} has no valid bucket name.", fix="Write gs://<bucket>/<object>.")
    if key:
        check_key(key, prefix=True)
    return bucket, key


class Digests:
    """crc32c (GCS's format) and sha256 of a byte stream, fed in chunks."""

    def __init__(self, *, sha256: bool = True) -> None:
        # sha256 costs ~3x crc32c: a download only computes it for an object that records one.
        self._sha = hashlib.sha256() if sha256 else None
        self._crc = google_crc32c.Checksum()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        if self._sha is not None:
            self._sha.update(chunk)
        self.size += len(chunk)
        self._crc.update(chunk)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest() if self._sha is not None else ""

    @property
    def crc32c(self) -> str:
        return base64.b64encode(self._crc.digest()).decode("ascii")


def file_digests(path: Path, chunk: int = 8 << 20) -> Digests:
    d = Digests()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            d.update(block)
    return d


def verify(info: ObjectInfo, got: Digests, *, where: str) -> None:
    """Raise StorageError when downloaded bytes differ from what the store says it holds."""
    problems = []
    if got.size != info.size:
        problems.append(f"size {got.size} != {info.size}")
    if info.crc32c and got.crc32c != info.crc32c:
        problems.append(f"crc32c {got.crc32c} != {info.crc32c}")
    if info.sha256 and got.sha256 != info.sha256:
        problems.append(f"sha256 {got.sha256[:12]}… != {info.sha256[:12]}…")
    if problems:
        raise StorageError(f"Download of {info.uri} to {where} is corrupted ({'; '.join(problems)}); nothing was kept.",
                           fix="Retry; if it persists the stored object is damaged: re-upload it.")
