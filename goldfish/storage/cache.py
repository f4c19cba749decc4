"""Remote objects made local: a ``gs://`` input of a run on this machine is downloaded once per
object generation into ``.goldfish/cache/gcs/<bucket>/<key>`` (checksum-verified), then reused.

A URI ending in ``/`` names a prefix (a directory output of a cloud run): every object under it is
fetched and the local directory is rebuilt when any generation changed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from goldfish.fsutil import atomic_write
from goldfish.storage.base import StorageError
from goldfish.storage.select import storage_for_uri

if TYPE_CHECKING:
    from goldfish.config import GoldfishConfig


def _stamp(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def materialize(config: GoldfishConfig, cache_root: Path, uri: str, *, generation: int | None = None) -> Path:
    """A local path holding ``uri``'s bytes (a file, or a directory for a prefix URI)."""
    store, key = storage_for_uri(config, uri)
    if not key:
        raise StorageError(f"{uri} names a bucket, not an object.", fix="Give gs://<bucket>/<object>.")
    target = cache_root / "gcs" / store.bucket_name / key.rstrip("/")
    stamp_path = cache_root / "gcs" / ".gf-meta" / store.bucket_name / f"{key.rstrip('/')}.json"
    stamp_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(stamp_path) + ".lock"):
        if key.endswith("/"):
            infos = store.list(key)
            if not infos:
                raise StorageError(f"Nothing is stored under {uri}.", fix="Check the run or source that produced it.")
            want = {i.key: i.generation for i in infos}
            old = _stamp(stamp_path)
            if old is not None and old.get("objects") == want and target.is_dir():
                return target
            if target.exists():
                shutil.rmtree(target)
            store.get_dir(key, target)
            atomic_write(stamp_path, json.dumps({"objects": want}), durable=False)
            return target
        old = _stamp(stamp_path)
        if target.is_file() and old is not None:
            current = generation if generation is not None else getattr(store.stat(key), "generation", None)
            if current is not None and old.get("generation") == current:
                return target
        info = store.get_file(key, target, generation=generation)
        atomic_write(stamp_path, json.dumps({"generation": info.generation, "crc32c": info.crc32c}), durable=False)
        return target
