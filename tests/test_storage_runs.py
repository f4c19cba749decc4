"""Object storage wired into runs on the local backend: a gs:// source staged into a run's inputs,
checkpoints written by the stage straight into the bucket, outputs copied to runs/<id>/outputs/ when
storage.backend is gcs, and get_debug_info pointing at objects that exist (gcp-storage-emulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.run_helpers import REASON, SPEC, make_env, wait_terminal
from tests.source_helpers import gcs, gcs_emulator, npy_meta

__all__ = ["gcs", "gcs_emulator"]

TRAIN = '''
import json, os
from pathlib import Path
import numpy as np
from goldfish.io import load_input, save_checkpoint, load_checkpoint, save_output
from goldfish.metrics import log_metric
x = load_input("data")
assert os.path.islink(os.path.join(os.environ["GOLDFISH_INPUTS_DIR"], "data"))
for step in range(3):
    save_checkpoint("state", {"step": step, "sum": float(x.sum())}, step=step)
    log_metric("acc", 0.5 + step / 10, step=step)
save_output("features", x * 2)
'''


def test_local_run_with_gcs_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gcs: Any,
                                    gcs_emulator: str) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    env = make_env(tmp_path, monkeypatch)
    env.configure(gcs={"bucket": "test-bucket"}, storage={"backend": "gcs"})
    raw = np.arange(30, dtype=np.float32).reshape(10, 3)
    local = tmp_path / "raw.npy"
    np.save(local, raw)
    gcs.bucket("test-bucket").blob("data/raw.npy").upload_from_filename(str(local))
    project = env.project
    meta = npy_meta(local.stat().st_size, description="Raw features stored in the bucket")
    project.sources.register_source("raw", "gs://test-bucket/data/raw.npy", meta["description"], REASON, meta)
    env.write([{"name": "train", "inputs": {"data": {"dataset": "raw", "schema": None}},
                "outputs": {"features": {"type": "npy", "schema": None}}}], {"train": TRAIN})
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    result = wait_terminal(project, started.pipeline_run_id, timeout=60)
    rid = started.stage_runs[0].stage_run_id
    doc = project.runs.get(rid)
    assert result.status == "completed", doc.get("error")
    # The input came from the bucket, through the generation-keyed cache.
    staged = (project.runs_dir / rid / "inputs" / "data").resolve()
    assert staged.is_relative_to(project.cache_dir) and np.array_equal(np.load(staged), raw)
    # Checkpoints went to the bucket from inside the stage; outputs were copied after it.
    keys = {b.name for b in gcs.list_blobs("test-bucket", prefix=f"checkpoints/{rid}/")}
    assert {f"checkpoints/{rid}/state/step_{i}/data.pkl" for i in range(3)} <= keys
    assert doc["outputs"]["features"]["uri"] == f"gs://test-bucket/runs/{rid}/outputs/features.npy"
    blob = gcs.bucket("test-bucket").get_blob(f"runs/{rid}/outputs/features.npy")
    assert blob is not None and blob.size == Path(doc["outputs"]["features"]["location"]).stat().st_size
    info = project.records.get_debug_info(rid)
    assert info.objects["checkpoints"] == f"gs://test-bucket/checkpoints/{rid}/"
    assert info.objects["outputs"] == f"gs://test-bucket/runs/{rid}/outputs/"
    assert info.exists["checkpoints"] and info.exists["outputs"]


def test_a_container_without_network_checkpoints_to_the_object_store() -> None:
    from goldfish.runs import stage_env

    env = {"GOLDFISH_STORAGE_BACKEND": "gcs", "GOLDFISH_OBJECTS_DIR": "/mnt/objects"}
    assert stage_env.offline_checkpoints(env, network=False)
    assert env["GOLDFISH_STORAGE_BACKEND"] == "local"  # the stage SDK writes to the mounted store
    for network, backend in ((True, "gcs"), (False, "local")):
        env = {"GOLDFISH_STORAGE_BACKEND": backend, "GOLDFISH_OBJECTS_DIR": "/mnt/objects"}
        assert not stage_env.offline_checkpoints(env, network=network)
        assert env["GOLDFISH_STORAGE_BACKEND"] == backend
