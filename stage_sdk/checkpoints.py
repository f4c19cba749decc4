"""Checkpoints for resume after preemption, written to durable storage the moment they are saved.

Layout (one directory per checkpoint version, replaced as a unit):
``checkpoints/<run_id>/<name>/step_<N>/`` or ``checkpoints/<run_id>/<name>/latest/`` in the object
store (``GOLDFISH_OBJECTS_DIR``, or ``gs://$GOLDFISH_GCS_BUCKET/`` when ``GOLDFISH_STORAGE_BACKEND=gcs``:
uploaded the moment it is saved), or ``$GOLDFISH_OUTPUTS_DIR/.goldfish/checkpoints/<name>/...`` for
``local_ok`` saves without one. Each holds the payload plus ``.goldfish-checkpoint.json``
(kind, entry, step, run_id, saved_at):

- a ``Path`` file -> the file under its own name; a ``Path`` directory -> its contents;
- an ndarray -> ``data.npy``;
- torch objects (or a dict/list holding them, when torch is already imported) -> ``data.pt`` via
  ``torch.save``, so ``torch.load(load_checkpoint(...))`` works;
- anything else -> ``data.pkl`` (pickle).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import tempfile
import time
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import numpy as np

from stage_sdk import _env, _fs
from stage_sdk.objects import LocalObjectStore, ObjectStore

MANIFEST = ".goldfish-checkpoint.json"
LATEST = "latest"


def _check_step(step: object) -> int | None:
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or int(step) < 0:
        raise ValueError(f"Checkpoint step must be None or an int >= 0, got {step!r}. Fix: pass step=int(step).")
    return int(step)


def _step_dir(step: int | None) -> str:
    return LATEST if step is None else f"step_{step}"


def _object_store() -> ObjectStore | None:
    backend = _env.storage_backend()
    if backend == "gcs":
        from stage_sdk.gcs_objects import GcsObjectStore

        return GcsObjectStore(str(_env.gcs_bucket()))
    root = _env.objects_dir()
    return LocalObjectStore(root) if backend == "local" and root is not None else None


def _local_store() -> LocalObjectStore:
    return LocalObjectStore(_env.runtime_dir() / "checkpoints", location="local")


def _current_run() -> str:
    rid = _env.run_id()
    if rid is None:
        raise RuntimeError(
            "GOLDFISH_RUN_ID is not set; object-store checkpoints are keyed by run id. "
            "Fix: run the stage through goldfish, or export GOLDFISH_RUN_ID=stage-<8 hex> for local testing."
        )
    return _env.check_name(rid, "run id (GOLDFISH_RUN_ID)")


def _is_torch(data: Any, depth: int = 0) -> bool:
    if "torch" not in sys.modules or depth > 3:
        return False
    if type(data).__module__.split(".", 1)[0] == "torch":
        return True
    if isinstance(data, dict):
        return any(_is_torch(v, depth + 1) for v in data.values())
    if isinstance(data, list | tuple):
        return any(_is_torch(v, depth + 1) for v in data[:64])
    return False


def _stage_payload(data: Any, staging: Path, name: str, durable: bool) -> tuple[str, str | None]:
    """Write the payload of an in-memory checkpoint into ``staging``: (kind, entry file name)."""
    if isinstance(data, np.ndarray):
        with _fs.atomic_file(staging / "data.npy", durable=durable) as f:
            np.save(f, data, allow_pickle=False)
        return "array", "data.npy"
    if _is_torch(data):
        with _fs.atomic_file(staging / "data.pt", durable=durable) as f:
            sys.modules["torch"].save(data, f)
        return "torch", "data.pt"
    try:
        with _fs.atomic_file(staging / "data.pkl", durable=durable) as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"Checkpoint {name!r} could not be pickled ({exc}). "
            "Fix: pass a Path to a file/directory you wrote, a numpy array, or a picklable object."
        ) from None
    return "pickle", "data.pkl"


def _manifest(kind: str, entry: str | None, step: int | None, run: str | None) -> bytes:
    return json.dumps({
        "kind": kind, "entry": entry, "step": step, "run_id": run,
        "saved_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "unix_time": time.time(),
    }).encode()


def save_checkpoint(name: str, data: Any, step: int | None = None, local_ok: bool = False) -> Path:
    """Save a checkpoint to durable storage now; returns the stored checkpoint directory.

    ``data``: a ``Path`` (file or directory, copied as is), a numpy array, or any picklable object.
    ``step`` versions it (``step_<N>``); without it, ``latest`` is replaced. Needs an object store
    (``GOLDFISH_OBJECTS_DIR``, or the bucket when ``GOLDFISH_STORAGE_BACKEND=gcs``: uploaded before
    this returns); with ``local_ok=True`` and no object store it saves under ``.goldfish/checkpoints``
    in the outputs dir instead (lost with the machine).
    """
    name = _env.check_name(name, "checkpoint name")
    stepn = _check_step(step)
    store: ObjectStore
    run: str | None
    obj = _object_store()
    if obj is not None:
        store, run = obj, _current_run()
        prefix = f"checkpoints/{run}/{name}/{_step_dir(stepn)}"
    elif local_ok:
        store, run = _local_store(), _env.run_id()
        prefix = f"{name}/{_step_dir(stepn)}"
    else:
        raise RuntimeError(
            f"Checkpoint {name!r} has nowhere durable to go: neither GOLDFISH_OBJECTS_DIR nor "
            "GOLDFISH_GCS_BUCKET is set. Fix: run the stage through goldfish (it sets them), or pass "
            "local_ok=True to keep it in the outputs dir (lost if the machine goes away)."
        )
    # A bucket is the durable copy: the local staging files need no fsync.
    durable = isinstance(store, LocalObjectStore)
    staging_root = _env.runtime_dir() / "tmp"
    if isinstance(data, os.PathLike):
        src = Path(data)
        if not src.exists():
            raise FileNotFoundError(f"Checkpoint {name!r}: {src} does not exist. Fix: write it first.")
        if src.is_dir() and (src.resolve() == staging_root.resolve() or src.resolve() in staging_root.resolve().parents):
            raise ValueError(
                f"Checkpoint {name!r}: {src} contains the SDK's runtime dir ({_env.runtime_dir()}). "
                "Fix: checkpoint the subdirectory that holds your state (e.g. the model dir)."
            )
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".gf-tmp-ckpt-{name}-", dir=staging_root))
    try:
        if isinstance(data, os.PathLike):
            src = Path(data)
            if src.is_dir():
                _fs.copy_tree(src, staging / "payload", durable=durable)
                for child in (staging / "payload").iterdir():
                    child.rename(staging / child.name)
                (staging / "payload").rmdir()
                kind, entry = "directory", None
            else:
                _fs.copy_file(src, staging / src.name, durable=durable)
                kind, entry = "file", src.name
        else:
            kind, entry = _stage_payload(data, staging, name, durable)
        _fs.atomic_write(staging / MANIFEST, _manifest(kind, entry, stepn, run), durable=durable)
        store.put_dir(staging, prefix, move=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return store.root / prefix if isinstance(store, LocalObjectStore) else Path(prefix)


def _versions(store: ObjectStore, base: str) -> dict[str, set[str]]:
    """{checkpoint name: {step dir names}} under ``base`` (keys look like name/step_N/...)."""
    found: dict[str, set[str]] = {}
    try:
        keys = store.list(base)
    except ValueError:
        return found
    cut = len(base) + 1 if base else 0
    for key in keys:
        parts = key[cut:].split("/")
        if len(parts) >= 3 and parts[2] == MANIFEST and (parts[1] == LATEST or _parse_step(parts[1]) is not None):
            found.setdefault(parts[0], set()).add(parts[1])
    return found


def _parse_step(dirname: str) -> int | None:
    if dirname.startswith("step_") and dirname[5:].isdigit():
        return int(dirname[5:])
    return None


def _pick(versions: set[str], step: int | None) -> str | None:
    if step is not None:
        return _step_dir(step) if _step_dir(step) in versions else None
    steps = [s for s in (_parse_step(v) for v in versions) if s is not None]
    if steps:
        return _step_dir(max(steps))
    return LATEST if LATEST in versions else None


def _sources(run_id: str | None) -> list[tuple[ObjectStore, str]]:
    """Stores to search, most durable first, each with the key prefix that holds checkpoint names."""
    out: list[tuple[ObjectStore, str]] = []
    current = _env.run_id()
    obj = _object_store()
    if obj is not None:
        run = run_id or current
        if run is not None:
            out.append((obj, f"checkpoints/{_env.check_name(run, 'run id')}"))
    if run_id is None or run_id == current:
        out.append((_local_store(), ""))
    return out


def load_checkpoint(name: str, step: int | None = None, run_id: str | None = None) -> Path | None:
    """Path to a materialised checkpoint, or None when there is none.

    The path is the payload file (``data.npy``/``data.pkl``/``data.pt``/your file) or the
    directory for a directory checkpoint. ``step=None`` picks the highest step, else ``latest``.
    ``run_id`` reads another run's checkpoints (cross-run resume) from the object store.
    """
    name = _env.check_name(name, "checkpoint name")
    stepn = _check_step(step)
    if run_id is not None:
        _env.check_name(run_id, "run id")
    for store, base in _sources(run_id):
        chosen = _pick(_versions(store, base).get(name, set()), stepn)
        if chosen is None:
            continue
        key = f"{base}/{name}/{chosen}" if base else f"{name}/{chosen}"
        if isinstance(store, LocalObjectStore) and store.location == "local":
            path: Path | None = store.root / key
        else:
            run = base.rsplit("/", 1)[-1]
            dest = _env.runtime_dir() / "restored" / run / name / chosen
            path = store.get(key, dest)
        if path is None:
            continue
        return _entry_path(path)
    return None


def _entry_path(directory: Path) -> Path:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    entry = manifest.get("entry") if isinstance(manifest, dict) else None
    if isinstance(entry, str) and "/" not in entry and (directory / entry).is_file():
        return directory / entry
    return directory


def list_checkpoints(run_id: str | None = None) -> dict[str, dict[str, Any]]:
    """``{name: {"steps": [sorted ints], "latest": bool, "location": "objects"|"local"}}``."""
    if run_id is not None:
        _env.check_name(run_id, "run id")
    out: dict[str, dict[str, Any]] = {}
    for store, base in _sources(run_id):
        for name, versions in _versions(store, base).items():
            entry = out.setdefault(name, {"steps": [], "latest": False, "location": store.location})
            steps = {s for s in (_parse_step(v) for v in versions) if s is not None}
            entry["steps"] = sorted(set(entry["steps"]) | steps)
            entry["latest"] = entry["latest"] or LATEST in versions
    return out
