"""Which object storage a project uses, and the store behind a ``gs://`` URI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from goldfish.errors import ConfigError
from goldfish.storage.base import ObjectStorage, split_uri
from goldfish.storage.gcs import GcsStorage
from goldfish.storage.local import LocalStorage

if TYPE_CHECKING:
    from goldfish.config import GoldfishConfig

_CLIENTS: dict[tuple[str | None, str | None], object] = {}


def _gcs(bucket: str, config: GoldfishConfig) -> GcsStorage:
    project = config.gce.project_id if config.gce is not None else None
    store = GcsStorage(bucket, project=project)
    # One client per process, project and endpoint: building one costs a credentials lookup.
    key = (project, os.environ.get("STORAGE_EMULATOR_HOST"))
    if key in _CLIENTS:
        store.__dict__["client"] = _CLIENTS[key]
    else:
        _CLIENTS[key] = store.client
    return store


def project_storage(config: GoldfishConfig, objects_root: Path) -> ObjectStorage:
    """The store ``storage.backend`` names: the local object directory or the gcs bucket."""
    if config.storage.backend == "gcs":
        if config.gcs is None:  # the config model refuses this; kept for a hand-built config
            raise ConfigError("storage.backend is gcs but there is no gcs section.",
                              fix="Add `gcs: {bucket: my-bucket}` to goldfish.yaml.")
        return _gcs(config.gcs.bucket, config)
    return LocalStorage(objects_root)


def bucket_storage(config: GoldfishConfig) -> GcsStorage | None:
    """The store of ``gcs.bucket`` (cloud runs keep outputs and checkpoints there), or None."""
    return _gcs(config.gcs.bucket, config) if config.gcs is not None else None


def storage_for_uri(config: GoldfishConfig, uri: str) -> tuple[GcsStorage, str]:
    """(store, key) for ``gs://bucket/key``; any bucket, read with the project's credentials."""
    bucket, key = split_uri(uri)
    return _gcs(bucket, config), key
