"""The data registry end to end with real runs: register → consume → promote → consume again,
lineage for both, and a source changed after registration blocking the next run in preflight."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from goldfish.errors import Conflict
from tests.run_helpers import REASON, SPEC, Env, create_workspace, make_env, wait_terminal
from tests.source_helpers import npy_meta, write_npy

PREP = '''
import json, os
from pathlib import Path
import numpy as np
cfg = json.loads(os.environ["GOLDFISH_STAGE_CONFIG"])
out = Path(os.environ["GOLDFISH_OUTPUTS_DIR"])
x = np.load(cfg["inputs"]["raw"]["location"])
np.save(out / "features.npy", x * 2)
np.save(out / "scaled.npy", x / 10)
rt = out / ".goldfish"
rt.mkdir(exist_ok=True)
(rt / "metrics.jsonl").write_text(json.dumps({"type": "metric", "name": "acc", "value": 0.7, "step": 0,
                                              "timestamp": "2026-01-01T00:00:00.000000Z"}) + "\\n")
'''

TRAIN = '''
import json, os, time
from pathlib import Path
import numpy as np
from goldfish.io import load_input
cfg = json.loads(os.environ["GOLDFISH_STAGE_CONFIG"])
# No format in pipeline.yaml: a dataset input reads in its source's registered format (npy here).
assert cfg["inputs"]["data"]["format"] == "npy", cfg["inputs"]["data"]
x = load_input("data")
time.sleep(float(cfg.get("sleep", 0)))
(Path(os.environ["GOLDFISH_OUTPUTS_DIR"]) / "model").write_text(json.dumps({"sum": float(x.sum())}))
'''


def prep_pipeline() -> list[dict[str, Any]]:
    meta = npy_meta(None, description="Doubled raw features written by the prep stage")
    return [{
        "name": "prep",
        "inputs": {"raw": {"dataset": "raw", "schema": None}},
        "outputs": {"features": {"type": "npy", "schema": None, "artifact": True, "metadata": meta},
                    "scaled": {"type": "npy", "schema": None}},
    }]


def train_pipeline(dataset: str) -> list[dict[str, Any]]:
    return [{"name": "train", "inputs": {"data": {"dataset": dataset, "schema": None}},
             "outputs": {"model": {"type": "file", "schema": None}}}]


def mount(env: Env, workspace: str, slot: str) -> Env:
    create_workspace(env, workspace, slot=slot)
    other = Env(env.root)
    other.slot = env.root / "workspaces" / slot
    return other


def test_register_consume_promote_consume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    project = env.project
    raw = env.root / "data" / "raw.npy"
    size = write_npy(raw)
    meta = npy_meta(size, description="Raw float32 features measured in the lab")
    project.sources.register_source("raw", "data/raw.npy", meta["description"], REASON, meta, format="npy")

    # 1. A pipeline reads the source; its artifact output is registered when it completes.
    env.write(prep_pipeline(), {"prep": PREP})
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    assert wait_terminal(project, started.pipeline_run_id).status == "completed"
    prep_id = started.stage_runs[0].stage_run_id
    prep = project.runs.get(prep_id)
    assert prep["inputs"]["raw"]["kind"] == "source" and prep["inputs"]["raw"]["source"] == "raw"
    auto = f"exp-prep-features-{prep_id.removeprefix('stage-')}"
    auto_row = project.sources.row(auto)
    assert auto_row is not None and auto_row["lineage"]["parent_sources"] == ["raw"]
    assert np.array_equal(np.load(auto_row["location"]), np.load(raw) * 2)
    assert any(f["check"] == "auto_register" and f["severity"] == "info" for f in prep["svs"]["post"]["findings"])

    # 2. Promote another output of that run.
    promoted = project.sources.promote_artifact(
        prep_id, "scaled", "scaled_v1", "promote the scaled features for training",
        npy_meta(None, description="Raw features divided by ten, from prep"))
    assert promoted.lineage.parent_sources == ["raw"] and promoted.lineage.run_id == prep_id

    # 3. A pipeline in another workspace reads the promoted source; while it has not finished,
    # the promoted source cannot be deleted.
    env2 = mount(env, "exp2", "w2")
    env2.write(train_pipeline("scaled_v1"), {"train": TRAIN}, configs={"train": {"sleep": 1.0}})
    second = project.runs.run("w2", reason=REASON, results_spec=SPEC)
    train_id = second.stage_runs[0].stage_run_id
    with pytest.raises(Conflict, match=train_id):
        project.sources.manage_sources("delete", name="scaled_v1", reason="trying to delete a source in use")
    assert wait_terminal(project, second.pipeline_run_id).status == "completed"
    model = json.loads(Path(project.runs.get(train_id)["outputs"]["model"]["location"]).read_text())
    assert model["sum"] == pytest.approx(float((np.load(raw) / 10).sum()), rel=1e-5)

    lineage = project.sources.manage_sources("lineage", name="raw").lineage
    assert lineage is not None and lineage.produced_by_run is None and lineage.parents == []
    assert [(c.run_id, c.workspace, c.input) for c in lineage.consumers] == [(prep_id, "exp", "raw")]
    assert lineage.consumers[0].sha256 == project.sources.row("raw")["sha256"]  # type: ignore[index]

    lineage = project.sources.manage_sources("lineage", name="scaled_v1").lineage
    assert lineage is not None
    assert [p.name for p in lineage.parents] == ["raw"] and lineage.output_name == "scaled"
    assert lineage.produced_by_run is not None and lineage.produced_by_run.run_id == prep_id
    assert lineage.produced_by_run.state == "completed"
    assert [(c.run_id, c.workspace, c.stage) for c in lineage.consumers] == [(train_id, "exp2", "train")]

    # 4. The raw file changes: the next run that reads it is blocked in preflight, before it launches.
    env3 = mount(env, "exp3", "w3")
    env3.write(train_pipeline("raw"), {"train": TRAIN})
    data = bytearray(raw.read_bytes())
    data[-1] ^= 0x01
    raw.write_bytes(bytes(data))
    dry = project.runs.run("w3", reason=REASON, results_spec=SPEC, dry_run=True)
    assert not dry.valid and any("source raw changed since registration (sha" in e.message for e in dry.errors)
    third = project.runs.run("w3", reason=REASON, results_spec=SPEC)
    assert third.status == "blocked" and wait_terminal(project, third.pipeline_run_id).status == "blocked"
    blocked = project.runs.get(third.stage_runs[0].stage_run_id)
    assert blocked["cause"] == "preflight" and blocked["infra_outcome"] == "blocked"
    assert "source raw changed since registration (sha" in blocked["error"]
    assert "register it under a new name" in blocked["error"].lower()
    assert "manage_sources(action='update'" in blocked["error"]
    # Blocked runs did not read the source.
    consumers = project.sources.manage_sources("lineage", name="raw").lineage.consumers  # type: ignore[union-attr]
    assert [c.run_id for c in consumers] == [prep_id]
