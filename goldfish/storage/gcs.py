"""Object storage in a GCS bucket (google-cloud-storage, imported on first use: it is slow to import).

Uploads above ``RESUMABLE_BYTES`` go up as resumable uploads in ``CHUNK_BYTES`` chunks, so a dropped
connection resumes instead of restarting; the library checks each upload against the crc32c GCS
computed. Downloads stream through ``Digests`` and are compared with the object's stored crc32c
(and its ``goldfish-sha256`` metadata when present) before the file is renamed into place.
The client honours ``STORAGE_EMULATOR_HOST`` (the tests' gcp-storage-emulator) by itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from goldfish.storage.base import SHA256_META, Digests, ObjectInfo, StorageError, check_key, verify
from goldfish.storage.local import _files

RESUMABLE_BYTES = 8 << 20
CHUNK_BYTES = 100 << 20  # the library's default; a multiple of 256 KiB, as the API requires
TIMEOUT = (10, 120)
T = TypeVar("T")


class _HashingWriter:
    """A write-only file that hashes what passes through it."""

    def __init__(self, f: IO[bytes], *, sha256: bool):
        self.f = f
        self.digests = Digests(sha256=sha256)

    def write(self, data: bytes) -> int:
        self.digests.update(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


class GcsStorage:
    kind: Literal["local", "gcs"] = "gcs"

    def __init__(self, bucket: str, *, project: str | None = None, client: Any = None):
        self.bucket_name = bucket
        self._project = project
        if client is not None:
            self.__dict__["client"] = client

    @cached_property
    def client(self) -> Any:
        try:
            from google.auth.exceptions import DefaultCredentialsError
            from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise StorageError("google-cloud-storage is not installed.", fix="pip install google-cloud-storage") from exc
        try:
            return storage.Client(project=self._project)
        except DefaultCredentialsError as exc:
            raise StorageError(f"No Google Cloud credentials for gs://{self.bucket_name} ({exc}).",
                               fix="Run `gcloud auth application-default login`, or set "
                                   "GOOGLE_APPLICATION_CREDENTIALS to a service account key file.") from None

    @cached_property
    def bucket(self) -> Any:
        return self.client.bucket(self.bucket_name)

    def uri(self, key: str = "") -> str:
        return f"gs://{self.bucket_name}/{key}"

    # ---------------------------------------------------------------- errors
    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        from google.api_core import exceptions as gexc

        try:
            return fn()
        except gexc.NotFound as exc:
            raise StorageError(f"{what} {self.uri(key)}: not found ({exc.message}).",
                               fix=f"Check that bucket {self.bucket_name} exists and the key is right.") from None
        except gexc.Forbidden as exc:
            raise StorageError(f"{what} {self.uri(key)} was refused ({exc.message}).",
                               fix="Grant the credentials roles/storage.objectAdmin on the bucket "
                                   f"(gcloud storage buckets add-iam-policy-binding gs://{self.bucket_name} ...).") from None
        except gexc.GoogleAPIError as exc:
            raise StorageError(f"{what} {self.uri(key)} failed ({exc}).",
                               fix="Check the network and the bucket, then retry.") from None
        except OSError as exc:  # requests' connection errors
            raise StorageError(f"{what} {self.uri(key)} failed: GCS is unreachable ({exc}).",
                               fix="Check the network (or STORAGE_EMULATOR_HOST for an emulator), then retry.") from None

    def _info(self, blob: Any) -> ObjectInfo:
        meta = blob.metadata or {}
        updated = blob.updated.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if blob.updated else None
        return ObjectInfo(key=blob.name, uri=self.uri(blob.name), size=int(blob.size or 0), crc32c=blob.crc32c,
                          md5=blob.md5_hash, sha256=meta.get(SHA256_META), generation=blob.generation,
                          updated=updated)

    # ----------------------------------------------------------------- writes
    def put_file(self, src: Path, key: str, *, sha256: str | None = None) -> ObjectInfo:
        check_key(key)
        size = os.path.getsize(src)
        from google.cloud.storage.retry import DEFAULT_RETRY

        def upload() -> ObjectInfo:
            blob = self.bucket.blob(key, chunk_size=CHUNK_BYTES if size > RESUMABLE_BYTES else None)
            if sha256:
                blob.metadata = {SHA256_META: sha256}
            # Re-sending the same bytes to the same key is harmless, so uploads are retried too.
            blob.upload_from_filename(str(src), checksum="crc32c", timeout=TIMEOUT, retry=DEFAULT_RETRY)
            return self._info(blob)

        return self._call("Upload to", key, upload)

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        check_key(key)
        from google.cloud.storage.retry import DEFAULT_RETRY

        def upload() -> ObjectInfo:
            blob = self.bucket.blob(key)
            blob.upload_from_string(data, checksum="crc32c", timeout=TIMEOUT, retry=DEFAULT_RETRY)
            return self._info(blob)

        return self._call("Upload to", key, upload)

    def put_dir(self, src: Path, prefix: str) -> list[ObjectInfo]:
        prefix = check_key(prefix, prefix=True).rstrip("/")
        return [self.put_file(path, f"{prefix}/{rel}") for rel, path in _files(Path(src))]

    # ------------------------------------------------------------------ reads
    def stat(self, key: str) -> ObjectInfo | None:
        check_key(key)
        blob = self._call("Reading", key, lambda: self.bucket.get_blob(key, timeout=TIMEOUT))
        return self._info(blob) if blob is not None else None

    def get_file(self, key: str, dest: Path, *, generation: int | None = None) -> ObjectInfo:
        check_key(key)
        blob = self._call("Reading", key, lambda: self.bucket.get_blob(key, generation=generation, timeout=TIMEOUT))
        if blob is None:
            gen = f" (generation {generation})" if generation is not None else ""
            raise StorageError(f"Object {self.uri(key)}{gen} does not exist.",
                               fix="Check the key; if it was overwritten, register or upload it again.")
        info = self._info(blob)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _replacing(dest) as tmp:
            with open(tmp, "wb") as f:
                writer = _HashingWriter(f, sha256=bool(info.sha256))
                self._call("Download of", key,
                           lambda: blob.download_to_file(writer, checksum=None, timeout=TIMEOUT))
            verify(info, writer.digests, where=str(dest))
        return info

    def get_bytes(self, key: str) -> bytes | None:
        check_key(key)
        blob = self._call("Reading", key, lambda: self.bucket.get_blob(key, timeout=TIMEOUT))
        if blob is None:
            return None
        from google.api_core import exceptions as gexc

        try:
            data: bytes = blob.download_as_bytes(checksum=None, timeout=TIMEOUT)
        except gexc.NotFound:
            return None  # deleted between the two calls
        info = self._info(blob)
        d = Digests(sha256=bool(info.sha256))
        d.update(data)
        verify(info, d, where="memory")
        return data

    def get_dir(self, prefix: str, dest: Path) -> list[ObjectInfo]:
        base = check_key(prefix, prefix=True).rstrip("/") + "/"
        return [self.get_file(info.key, Path(dest) / info.key[len(base):]) for info in self.list(base)]

    def list(self, prefix: str) -> list[ObjectInfo]:
        if prefix:
            check_key(prefix, prefix=True)
        blobs = self._call("Listing", prefix,
                           lambda: list(self.client.list_blobs(self.bucket_name, prefix=prefix or None, timeout=TIMEOUT)))
        return sorted((self._info(b) for b in blobs), key=lambda i: i.key)

    # ---------------------------------------------------------------- deletes
    def delete(self, key: str) -> bool:
        check_key(key)
        from google.api_core import exceptions as gexc

        def delete() -> bool:
            try:
                self.bucket.delete_blob(key, timeout=TIMEOUT)
            except gexc.NotFound:
                return False
            return True

        return self._call("Deleting", key, delete)

    def delete_prefix(self, prefix: str) -> int:
        infos = self.list(prefix)
        for info in infos:
            self.delete(info.key)
        return len(infos)


@contextlib.contextmanager
def _replacing(dest: Path) -> Iterator[Path]:
    """A temp sibling of ``dest`` renamed over it on success, removed on any error."""
    tmp = dest.with_name(f".gf-tmp-{dest.name}.{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
