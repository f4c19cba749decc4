"""Checkpoints in a GCS bucket, written from inside the stage (``GOLDFISH_STORAGE_BACKEND=gcs``).

Same five methods as ``objects.LocalObjectStore``; google-cloud-storage is imported on first use, so
a stage that never checkpoints never pays for it. A stage image that checkpoints to GCS must contain
``google-cloud-storage`` (Goldfish's base images do); credentials come from the VM's service account
(or ``STORAGE_EMULATOR_HOST`` for an emulator).

A directory is published as a unit as far as GCS allows: its old manifest goes first (readers skip
a checkpoint without one), then the new files, the new manifest last, then leftovers of the old
version are deleted. Downloads are checked against the object's crc32c.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from stage_sdk import _fs
from stage_sdk.objects import check_key

MANIFEST = ".goldfish-checkpoint.json"
RESUMABLE_BYTES = 8 << 20
CHUNK_BYTES = 100 << 20
TIMEOUT = (10, 300)


class GcsObjectStore:
    location = "gcs"

    def __init__(self, bucket: str):
        self.bucket_name = bucket
        self._bucket: Any = None

    @property
    def bucket(self) -> Any:
        if self._bucket is None:
            try:
                from google.cloud import storage
            except ImportError:
                raise RuntimeError(
                    "Checkpoints go to gs://" + self.bucket_name + " but google-cloud-storage is not installed "
                    "in this stage's environment. Fix: add google-cloud-storage to the image (requirements.txt), "
                    "or pass local_ok=True."
                ) from None
            self._bucket = storage.Client().bucket(self.bucket_name)
        return self._bucket

    def _upload(self, src: Path, key: str) -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        size = os.path.getsize(src)
        blob = self.bucket.blob(key, chunk_size=CHUNK_BYTES if size > RESUMABLE_BYTES else None)
        blob.upload_from_filename(str(src), checksum="crc32c", timeout=TIMEOUT, retry=DEFAULT_RETRY)

    def put_file(self, src: Path, key: str) -> str:
        self._upload(Path(src), check_key(key))
        return key

    def put_dir(self, src: Path, prefix: str, *, move: bool = False) -> str:
        prefix = check_key(prefix).rstrip("/")
        files = sorted(p for p in Path(src).rglob("*") if p.is_file() or p.is_symlink())
        for path in files:
            if path.is_symlink():
                raise ValueError(f"{path} is a symlink; checkpoints copy real files only. "
                                 "Fix: copy the file it points to into the directory instead.")
        old = set(self.list(prefix))
        manifest_key = f"{prefix}/{MANIFEST}"
        if manifest_key in old:
            self.bucket.delete_blob(manifest_key, timeout=TIMEOUT)
        new: set[str] = set()
        for path in sorted(files, key=lambda p: p.name == MANIFEST):  # the manifest last
            key = f"{prefix}/{path.relative_to(src).as_posix()}"
            self._upload(path, key)
            new.add(key)
        for key in sorted(old - new - {manifest_key}):
            self.bucket.delete_blob(key, timeout=TIMEOUT)
        if move:
            shutil.rmtree(src, ignore_errors=True)
        return prefix

    def get(self, key: str, dest: Path) -> Path | None:
        """Materialise ``key`` (an object, or every object under ``key/``) at ``dest``; None if absent."""
        key = check_key(key).rstrip("/")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        blob = self.bucket.get_blob(key, timeout=TIMEOUT)
        if blob is not None:
            with _fs.atomic_file(dest) as f:
                blob.download_to_file(f, checksum="crc32c", timeout=TIMEOUT)
            return dest
        keys = self.list(key)
        if not keys:
            return None
        tmp = _fs.tmp_sibling(dest)
        try:
            for k in keys:
                target = tmp / k[len(key) + 1:]
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as f:
                    self.bucket.blob(k).download_to_file(f, checksum="crc32c", timeout=TIMEOUT)
            _fs.replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    def list(self, prefix: str) -> list[str]:
        """Every object key under ``prefix/`` (sorted)."""
        base = check_key(prefix).rstrip("/") + "/" if prefix.strip("/") else ""
        blobs = self.bucket.client.list_blobs(self.bucket_name, prefix=base or None, timeout=TIMEOUT)
        return sorted(b.name for b in blobs)

    def exists(self, key: str) -> bool:
        return self.bucket.get_blob(check_key(key), timeout=TIMEOUT) is not None or bool(self.list(key))
