"""A stage that uses every public function of goldfish.io and goldfish.metrics, run as a real
subprocess, then checked through the files it left behind (and a second run resuming from it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import goldfish.io as gio
import goldfish.metrics as gm
from tests.sdk_helpers import StageEnv, ok

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
LOG_LINE = re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] [A-Z]+: ")

FULL_STAGE = """
import json, os, pickle, time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from goldfish.io import (
    ContractViolation, finish_metrics, flush_metrics, get_config, get_heartbeat_age, get_input_path,
    get_output_path, get_stop_reason, heartbeat, list_checkpoints, load_checkpoint, load_input, log_artifact,
    log_metric, log_metrics, read_heartbeat, runtime_log, save_checkpoint, save_output, should_stop,
)
from goldfish.metrics import (
    finish, get_backend_errors, get_logger, had_backend_errors, log_artifacts, lost_counts,
)
import goldfish.metrics as gm

report = {}
cfg = get_config()
report["lr"] = cfg["lr"]
cfg["lr"] = 99
report["config_isolated"] = get_config()["lr"] == 0.1

X = load_input("features")
Xm = load_input("features", mmap=True)
report["mmap"] = type(Xm).__name__
report["same"] = bool(np.array_equal(X, Xm))
table = load_input("table")
report["table_cols"] = list(table.columns)
params = load_input("params")
report["params"] = params
bundle = load_input("bundle")
report["bundle_keys"] = sorted(bundle.files)
raw = load_input("raw")
report["raw_is_dir"] = raw.is_dir()
extra = load_input("extra")
report["extra_sum"] = float(extra.sum())
report["input_path"] = str(get_input_path("features"))
report["extra_path"] = str(get_input_path("extra"))

report["hb_first"] = heartbeat("starting")
report["hb_second"] = heartbeat("too soon")
report["hb_forced"] = heartbeat("epoch 0", force=True)

for step in range(200):
    log_metric("train/loss", 1.0 / (step + 1), step=step)
    log_metrics({"train/acc": step / 200, "train/lr": np.float32(0.5)}, step=step)
log_metric("wallclock", 3.5, timestamp=time.time() - 60)
log_metric("eval/score", np.int64(7), timestamp="2026-01-02T03:04:05")
flush_metrics()
runtime_log("epoch 0 done")
runtime_log("careful now", level="warn")

report["emb_path"] = str(save_output("emb", X))
tokens = (np.arange(4000) % 97).astype(np.int64)
save_output("bundle", {"tokens": tokens, "mask": np.ones(4000, np.int8)}, artifact=True)
save_output("table", table)
save_output("summary", {"rows": int(len(table)), "mean": np.float64(1.5)})
model_dir = get_output_path("model")
(model_dir / "weights.bin").write_bytes(b"w" * 100)
save_output("model", model_dir)
save_output("records", [{"id": 1}, {"id": 2}])
save_output("const", np.zeros(500, np.int64))

report["artifact_url"] = log_artifact("model", "model/weights.bin")
report["artifacts"] = log_artifacts({"emb": "emb.npy", "table": "table.csv"})

save_checkpoint("state", {"step": 5, "w": [1, 2]}, step=5)
save_checkpoint("state", {"step": 10, "w": [3, 4]}, step=10)
save_checkpoint("weights", X)
save_checkpoint("model", model_dir, step=10)
report["ckpts"] = list_checkpoints()
with open(load_checkpoint("state"), "rb") as f:
    report["state_step"] = pickle.load(f)["step"]
with open(load_checkpoint("state", step=5), "rb") as f:
    report["state5"] = pickle.load(f)["step"]
report["weights_ok"] = bool(np.array_equal(np.load(load_checkpoint("weights")), X))
report["model_ckpt"] = sorted(p.name for p in load_checkpoint("model").iterdir())
report["missing_ckpt"] = load_checkpoint("nope")

report["stop_before"] = [should_stop(), get_stop_reason()]
Path(os.environ["GOLDFISH_OUTPUTS_DIR"], ".goldfish", "stop_requested").write_text("svs: loss diverged")
report["stop_after"] = [should_stop(), get_stop_reason()]

hb = read_heartbeat()
report["hb"] = [hb["message"], hb["pid"] == os.getpid(), get_heartbeat_age() < 60]
report["cv_is_value_error"] = issubclass(ContractViolation, ValueError)

log_metric("bad", float("nan"), step=1)
log_metric("flag", True)
report["lost"] = lost_counts()
report["logger"] = type(get_logger()).__name__
report["backend"] = [had_backend_errors(), get_backend_errors()]
report["finish"] = finish()
report["finish_again"] = finish_metrics()
report["gm_all"] = sorted(gm.__all__)
print("REPORT " + json.dumps(report))
"""

RESUME_STAGE = """
import json, pickle
from goldfish.io import list_checkpoints, load_checkpoint
report = {"own": load_checkpoint("state"), "other": list_checkpoints(run_id="stage-0a1b2c3d")}
with open(load_checkpoint("state", run_id="stage-0a1b2c3d"), "rb") as f:
    report["resumed_step"] = pickle.load(f)["step"]
with open(load_checkpoint("state", step=5, run_id="stage-0a1b2c3d"), "rb") as f:
    report["resumed_step5"] = pickle.load(f)["step"]
print("REPORT " + json.dumps(report))
"""


def _report(stdout: str) -> dict:
    line = next(x for x in stdout.splitlines() if x.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


def _stage(tmp_path: Path) -> StageEnv:
    tensor8 = {"kind": "tensor", "shape": [None, 8], "dtype": "float32"}
    env = StageEnv(
        tmp_path,
        user={"lr": 0.1},
        inputs={
            "features": {"type": "npy", "format": "npy", "schema": tensor8},
            "table": {"type": "csv", "schema": {"kind": "tabular", "columns": ["price", "volume"]}},
            "params": {"type": "json", "schema": {"kind": "json"}},
            "bundle": {"type": "npz", "schema": None},
            "raw": {"type": "dataset", "schema": None},
            "extra": {"type": "npy", "location": str(tmp_path / "elsewhere" / "extra.npy"), "schema": None},
        },
        outputs={
            "emb": {"type": "npy", "schema": tensor8},
            "bundle": {"type": "npz", "schema": {"kind": "tensor", "primary_array": "tokens", "vocab_size": 100,
                                                 "arrays": {
                "tokens": {"shape": [-1], "dtype": "int64"},
                "mask": {"shape": [None], "dtype": "int8"}}}},
            "table": {"type": "csv", "artifact": True, "schema": {
                "kind": "tabular", "columns": ["price", "volume"], "dtypes": {"price": "float64", "volume": "int64"}}},
            "summary": {"type": "json", "schema": {"kind": "json"}},
            "model": {"type": "directory", "schema": None},
            "records": {"type": "file", "schema": {"kind": "json"}},
            "const": {"type": "npy", "schema": None},
        },
    )
    env.env()
    rng = np.random.default_rng(1)
    np.save(env.in_dir / "features.npy", rng.normal(size=(64, 8)).astype(np.float32))
    (env.in_dir / "table").mkdir()
    pd.DataFrame({"price": rng.normal(size=50), "volume": rng.integers(0, 9, 50)}).to_csv(
        env.in_dir / "table" / "table.csv", index=False)
    (env.in_dir / "params.json").write_text(json.dumps({"depth": 3}))
    (env.in_dir / "bundle").mkdir()
    np.savez(env.in_dir / "bundle" / "anything.npz", a=np.arange(3), b=np.ones(2))
    (env.in_dir / "raw").mkdir()
    (env.in_dir / "raw" / "part-0.txt").write_text("hello")
    (tmp_path / "elsewhere").mkdir()
    np.save(tmp_path / "elsewhere" / "extra.npy", np.arange(5.0))
    return env


def test_script_uses_every_public_function() -> None:
    used = set(re.findall(r"[A-Za-z_]+", FULL_STAGE))
    assert set(gio.__all__) <= used, set(gio.__all__) - used
    assert set(gm.__all__) <= used, set(gm.__all__) - used


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[StageEnv, dict]:
    env = _stage(tmp_path_factory.mktemp("stage"))
    proc = ok(env.run(FULL_STAGE))
    return env, _report(proc.stdout) | {"_stdout": proc.stdout, "_stderr": proc.stderr}


def test_inputs_config_heartbeat_and_stop(full_run: tuple[StageEnv, dict]) -> None:
    env, r = full_run
    assert r["lr"] == 0.1 and r["config_isolated"]
    assert r["mmap"] == "memmap" and r["same"]
    assert r["table_cols"] == ["price", "volume"]
    assert r["params"] == {"depth": 3}
    assert r["bundle_keys"] == ["a", "b"]
    assert r["raw_is_dir"] and r["extra_sum"] == 10.0
    assert r["input_path"] == str(env.in_dir / "features.npy")
    assert r["extra_path"] == str(env.root / "elsewhere" / "extra.npy")
    assert [r["hb_first"], r["hb_second"], r["hb_forced"]] == [True, False, True]
    assert r["hb"] == ["epoch 0", True, True]
    hb = json.loads((env.rt / "heartbeat").read_text())
    assert set(hb) == {"timestamp", "iso_time", "message", "pid"} and ISO_Z.fullmatch(hb["iso_time"])
    assert r["stop_before"] == [False, None]
    assert r["stop_after"] == [True, "svs: loss diverged"]
    assert "Input 'bundle' has schema: null" in r["_stdout"]


def test_metrics_file(full_run: tuple[StageEnv, dict]) -> None:
    env, r = full_run
    records = env.metrics()
    metrics = [x for x in records if x["type"] == "metric"]
    loss = [x for x in metrics if x["name"] == "train/loss"]
    assert [x["step"] for x in loss] == list(range(200))
    assert loss[3]["value"] == 0.25 and all(ISO_Z.fullmatch(x["timestamp"]) for x in metrics)
    assert {x["name"] for x in metrics} == {"train/loss", "train/acc", "train/lr", "wallclock", "eval/score"}
    lr = [x for x in metrics if x["name"] == "train/lr"]
    assert len(lr) == 200 and lr[0]["value"] == 0.5 and isinstance(lr[0]["value"], float)
    score = next(x for x in metrics if x["name"] == "eval/score")
    assert score == {"type": "metric", "name": "eval/score", "value": 7.0, "step": None,
                     "timestamp": "2026-01-02T03:04:05.000000Z"}
    arts = {x["name"]: x for x in records if x["type"] == "artifact"}
    assert arts["model"]["path"] == "model/weights.bin" and arts["model"]["backend_url"] is None
    assert set(arts) == {"model", "emb", "table"}
    lost = [x for x in records if x["type"] == "lost"]
    assert sum(x["count"] for x in lost) == 2
    assert r["lost"] == {"non_finite": 1, "invalid_value": 1}
    assert r["artifacts"] == {"emb": None, "table": None} and r["artifact_url"] is None
    assert r["backend"] == [False, []] and r["finish"] is None and r["finish_again"] is None
    assert r["logger"] == "MetricsLogger"
    assert not any(x["name"] in ("bad", "flag") for x in metrics)


def test_logs(full_run: tuple[StageEnv, dict]) -> None:
    env, _ = full_run
    lines = (env.rt / "logs.txt").read_text().splitlines()
    assert all(LOG_LINE.match(x) or x.startswith("    ") for x in lines)
    assert any(x.endswith("INFO: epoch 0 done") for x in lines)
    assert any(x.endswith("WARNING: careful now") for x in lines)
    assert any("skipped (non_finite)" in x and "'bad'" in x for x in lines)
    assert any("skipped (invalid_value)" in x and "bool" in x for x in lines)


def test_outputs_stats_and_findings(full_run: tuple[StageEnv, dict]) -> None:
    env, r = full_run
    out = env.out_dir
    assert r["emb_path"] == str(out / "emb.npy")
    assert np.array_equal(np.load(out / "emb.npy"), np.load(env.in_dir / "features.npy"))
    with np.load(out / "bundle.npz") as z:
        assert sorted(z.files) == ["mask", "tokens"]
    assert pd.read_csv(out / "table.csv").shape == (50, 2)
    assert json.loads((out / "summary.json").read_text()) == {"rows": 50, "mean": 1.5}
    assert (out / "model" / "weights.bin").read_bytes() == b"w" * 100
    assert json.loads((out / "records").read_text()) == [{"id": 1}, {"id": 2}]
    assert sorted(p.name for p in (out / ".artifacts").iterdir()) == ["bundle", "table"]
    stats = env.stats()
    assert set(stats) == {"emb", "bundle.tokens", "bundle.mask", "table.price", "table.volume", "const"}
    keys = {"dtype", "shape", "mean", "std", "min", "max", "samples_used", "total_elements", "entropy",
            "null_ratio", "unique_count", "top1_fraction", "vocab_utilization"}
    assert all(set(v) == keys for v in stats.values())
    assert stats["emb"]["shape"] == [64, 8] and stats["emb"]["samples_used"] == 512
    assert stats["bundle.tokens"]["vocab_utilization"] == pytest.approx(0.97)
    assert stats["bundle.tokens"]["unique_count"] == 97
    assert stats["bundle.mask"]["vocab_utilization"] is None  # vocab_size describes the primary array
    found = env.findings()
    checks = {(f["source"], f["check"], f["signal"]) for f in found}
    assert ("stats", "constant_output", "const") in checks
    assert ("stats", "constant_output", "bundle") in checks  # the all-ones mask (default sanity check)
    assert ("metric_health", "non_finite_metric", "bad") in checks
    assert not any(f["source"] == "contract" for f in found)
    assert not any(f["check"] == "loss_divergence" for f in found)  # the loss only fell


def test_checkpoints_and_cross_run_resume(full_run: tuple[StageEnv, dict], tmp_path: Path) -> None:
    env, r = full_run
    assert r["ckpts"] == {
        "state": {"steps": [5, 10], "latest": False, "location": "objects"},
        "weights": {"steps": [], "latest": True, "location": "objects"},
        "model": {"steps": [10], "latest": False, "location": "objects"},
    }
    assert r["state_step"] == 10 and r["state5"] == 5 and r["weights_ok"]
    assert r["model_ckpt"] == [".goldfish-checkpoint.json", "weights.bin"]
    assert r["missing_ckpt"] is None
    base = env.obj_dir / "checkpoints" / "stage-0a1b2c3d"
    assert (base / "state" / "step_5" / "data.pkl").is_file()
    assert (base / "weights" / "latest" / "data.npy").is_file()
    assert (base / "model" / "step_10" / "weights.bin").is_file()
    leftovers = [p for p in env.root.rglob("*") if p.name.startswith(".gf-")]
    assert leftovers == []

    # A later run with another id resumes from the first run's checkpoints.
    second = StageEnv(env.root / "second", run_id="stage-99999999", objects=False,
                      extra={"GOLDFISH_OBJECTS_DIR": str(env.obj_dir)})
    r2 = _report(ok(second.run(RESUME_STAGE)).stdout)
    assert r2["own"] is None
    assert r2["other"]["state"]["steps"] == [5, 10]
    assert r2["resumed_step"] == 10 and r2["resumed_step5"] == 5
