"""Object storage: one interface, two places — a local directory and a GCS bucket.

Runs, checkpoints, sources, artifacts and backups read and write objects through ``ObjectStorage``;
``project_storage`` gives the project's store (``storage.backend``), ``bucket_storage`` the store of
``gcs.bucket`` (where cloud runs keep their outputs whatever ``storage.backend`` says).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.storage.base import ObjectInfo, ObjectStorage, StorageError, check_key, split_uri
    from goldfish.storage.cache import materialize
    from goldfish.storage.gcs import GcsStorage
    from goldfish.storage.local import LocalStorage
    from goldfish.storage.select import bucket_storage, project_storage, storage_for_uri

__all__ = [
    "GcsStorage",
    "LocalStorage",
    "ObjectInfo",
    "ObjectStorage",
    "StorageError",
    "bucket_storage",
    "check_key",
    "materialize",
    "project_storage",
    "split_uri",
    "storage_for_uri",
]

__getattr__ = lazy_face(__name__, {
    "ObjectInfo": "base",
    "ObjectStorage": "base",
    "StorageError": "base",
    "check_key": "base",
    "split_uri": "base",
    "LocalStorage": "local",
    "GcsStorage": "gcs",
    "materialize": "cache",
    "bucket_storage": "select",
    "project_storage": "select",
    "storage_for_uri": "select",
})
