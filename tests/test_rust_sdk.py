"""The Rust stage SDK end to end: compile a real stage with build_rust_stage, run the binary with the
stage environment, and read everything it wrote with numpy/json."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stage_sdk import stats as py_stats
from stage_sdk.contracts import check_contract

from goldfish.errors import InvalidInput, NotFound
from goldfish.runs.rust_stage import (
    RustBuildFailed,
    RustToolchainMissing,
    build_rust_stage,
    dump_toml,
    find_cargo,
    rust_toolchain_status,
    stage_manifest,
    trim_compiler_output,
)

REPO = Path(__file__).resolve().parent.parent
CRATE = REPO / "goldfish-rust"
needs_cargo = pytest.mark.skipif(
    find_cargo() is None, reason="cargo is not installed; run scripts/setup-rust.sh to enable Rust SDK tests"
)

PROBE_RS = r"""
use std::collections::HashMap;
use goldfish_rust::{init, load_input, save_output, OutputData, GoldfishError, ArrayD, load_npz, get_config};
use goldfish_rust::{runtime_log, heartbeat, log_metric, log_metrics, log_artifact, should_stop, stop_reason};

fn main() -> Result<(), GoldfishError> {
    let _guard = init();
    let cfg = get_config()?;
    let mode = cfg.get_str("mode").unwrap_or("ok").to_string();

    let features = load_input("features", None)?.into_tensor_f32().expect("features are float32");
    let scaled = features.map(|x| x * 2.0);
    let npz_path = load_input("bundle", None)?.into_path().expect("npz inputs come back as a path");
    let mut bundle = load_npz(&npz_path)?;
    let labels = bundle.take("labels").expect("labels array").into_tensor_i64().expect("int64 labels");
    let legacy = load_input("legacy", None)?;

    for step in 0..4i64 {
        let loss = if step == 3 { f64::NAN } else { 1.0 / (step as f64 + 1.0) };
        runtime_log(&format!("step {} loss {:.4}", step, loss), "INFO");
        log_metric("train/loss", loss, Some(step));
        log_metrics([("val/acc", 0.5 + step as f64 / 10.0)], Some(step));
        heartbeat(Some(&format!("step {}/4", step)), false);
    }
    log_metric("final/score", 0.75, None);
    if should_stop() {
        runtime_log(&format!("stop requested: {}", stop_reason().unwrap_or_default()), "WARN");
    }

    if mode == "panic" {
        let empty: Vec<f32> = Vec::new();
        let _ = empty[3];
    }
    if mode == "mismatch" {
        let wrong = ArrayD::from_shape_vec(vec![4, 2], vec![0.0f32; 8])?;
        save_output("scaled", OutputData::TensorF32(wrong), false)?;
        runtime_log("unreachable in blocking mode", "INFO");
        return Ok(());
    }

    save_output("scaled", OutputData::TensorF32(scaled), false)?;
    save_output("labels", OutputData::TensorI64(labels), true)?;
    let mut parts: HashMap<String, OutputData> = bundle.into_arrays();
    parts.insert("ids".to_string(), OutputData::TensorI32(ArrayD::from_vec(vec![3, 1, 2])));
    save_output("parts", OutputData::MultiTensor(parts), false)?;
    save_output("legacy_out", legacy, false)?;
    save_output("summary", OutputData::Json(serde_json_value()), false)?;
    log_artifact("summary", "summary.json");
    heartbeat(Some("done"), true);
    Ok(())
}

fn serde_json_value() -> goldfish_rust::JsonValue {
    goldfish_rust::json!({"rows": 4, "ok": true})
}
"""

CUSTOM_RS = r"""
fn main() {
    let mut buf = itoa::Buffer::new();
    goldfish_rust::runtime_log(&format!("itoa says {}", buf.format(42)), "INFO");
}
"""

CUSTOM_TOML = """
[package]
name = "whatever"
edition = "2021"

[dependencies]
itoa = "1"
goldfish-rust = { path = "../somewhere/else" }

[features]
extra = []
"""

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
LOG_RE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] (INFO|WARNING|ERROR): .+$")


# Shared across sessions so only the first run on a machine compiles the dependencies. Read at import:
# the autouse fixture clears GOLDFISH_* variables before each test.
TARGET_DIR = Path(
    os.environ.get("GOLDFISH_RUST_TEST_TARGET")
    or Path(tempfile.gettempdir()) / f"goldfish-rust-target-{os.getuid()}"
)


def _target_dir() -> Path:
    return TARGET_DIR


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if find_cargo() is None:
        pytest.skip("cargo is not installed; run scripts/setup-rust.sh to enable Rust SDK tests")
    app = tmp_path_factory.mktemp("rust_app")
    (app / "modules").mkdir()
    (app / "modules" / "probe.rs").write_text(PROBE_RS)
    (app / "modules" / "custom.rs").write_text(CUSTOM_RS)
    (app / "modules" / "custom.Cargo.toml").write_text(CUSTOM_TOML)
    messages: list[str] = []
    started = time.monotonic()
    probe = build_rust_stage(
        app, "probe", entrypoint=None, crate_path=CRATE, target_dir=_target_dir(), log=messages.append
    )
    first = time.monotonic() - started
    custom = build_rust_stage(
        app, "custom", entrypoint="entrypoints/bin/custom", crate_path=CRATE, target_dir=_target_dir()
    )
    print(f"\nRust stage build: first {first:.1f} s (target dir {_target_dir()})")
    return {"app": app, "probe": probe, "custom": custom, "messages": messages}


EXTRA = {
    "pix": np.array([[0, 255], [7, 128]], dtype=np.uint8),
    "idx": np.array([-5, 0, 2**31 - 1], dtype=np.int32),
}
# Format 3.0 with a Fortran-ordered array: the reader must reorder it into C order.
LEGACY = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3) - 2.5)


def _write_inputs(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    inputs = root / "inputs"
    (inputs / "features").mkdir(parents=True)
    features = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    np.save(inputs / "features" / "features.npy", features)
    labels = np.array([0, 1, 1, 3], dtype=np.int64)
    weights = np.linspace(-1, 1, 6, dtype=np.float64).reshape(2, 3)
    np.savez_compressed(inputs / "bundle.npz", labels=labels, weights=weights, **EXTRA)
    with open(inputs / "legacy.npy", "wb") as f:
        np.lib.format.write_array(f, LEGACY, version=(3, 0))
    return features, labels, weights


def _env(root: Path, *, mode: str = "ok", enforcement: str = "blocking") -> dict[str, str]:
    inputs = root / "inputs"
    tensor = {"kind": "tensor"}
    config = {
        "stage": "probe",
        "mode": mode,
        "inputs": {
            "features": {
                "location": str(inputs / "features"),
                "format": "npy",
                "type": "npy",
                "schema": None,
            },
            "bundle": {
                "location": str(inputs / "bundle.npz"),
                "format": "npz",
                "type": "npz",
                "schema": None,
            },
            "legacy": {"format": "npy", "type": "npy", "schema": None},
        },
        "outputs": {
            "scaled": {
                "format": "npy",
                "type": "npy",
                "artifact": False,
                "schema": {**tensor, "shape": [None, 3], "dtype": "float32", "rank": 2},
            },
            "labels": {
                "format": "npy",
                "type": "npy",
                "artifact": False,
                "schema": {**tensor, "shape": [-1], "dtype": "int64"},
            },
            "parts": {
                "format": "directory",
                "type": "directory",
                "artifact": False,
                "schema": {
                    **tensor,
                    "arrays": {
                        "weights": {"shape": [2, 3], "dtype": "float64", "role": "weights"},
                        "ids": {"shape": [None], "dtype": "int32", "role": "index"},
                    },
                },
            },
            "summary": {"format": "json", "type": "json", "artifact": False, "schema": {"kind": "json"}},
            "legacy_out": {"format": "npy", "type": "npy", "artifact": False, "schema": None},
        },
    }
    env = dict(os.environ)
    env.update(
        {
            "GOLDFISH_INPUTS_DIR": str(inputs),
            "GOLDFISH_OUTPUTS_DIR": str(root / "outputs"),
            "GOLDFISH_STAGE_CONFIG": json.dumps(config),
            "GOLDFISH_SVS_CONFIG": json.dumps(
                {
                    "enabled": True,
                    "stats_enabled": True,
                    "default_enforcement": enforcement,
                    "domain": "default",
                }
            ),
            "GOLDFISH_SVS_STATS_ENABLED": "true",
            "GOLDFISH_RUN_ID": "stage-0123abcd",
            "GOLDFISH_STAGE": "probe",
        }
    )
    return env


def _run(binary: Path, root: Path, env: dict[str, str]) -> tuple[int, str, str, int]:
    proc = subprocess.Popen(
        [str(binary)], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err, proc.pid


@needs_cargo
def test_stage_outputs_metrics_logs_and_stats(built: dict[str, Any], tmp_path: Path) -> None:
    features, labels, weights = _write_inputs(tmp_path)
    runtime = tmp_path / "outputs" / ".goldfish"
    runtime.mkdir(parents=True)
    (runtime / "stop_requested").write_text("budget exhausted")
    code, out, err, pid = _run(built["probe"], tmp_path, _env(tmp_path))
    assert code == 0, err
    outputs = tmp_path / "outputs"

    scaled = np.load(outputs / "scaled.npy")
    assert scaled.dtype == np.float32 and scaled.shape == (4, 3)
    np.testing.assert_array_equal(scaled, features * 2)
    got_labels = np.load(outputs / "labels.npy")
    assert got_labels.dtype == np.int64
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_array_equal(np.load(outputs / "parts" / "weights.npy"), weights)
    ids = np.load(outputs / "parts" / "ids.npy")
    assert ids.dtype == np.int32 and ids.tolist() == [3, 1, 2]
    for key, arr in EXTRA.items():
        got = np.load(outputs / "parts" / f"{key}.npy")
        assert got.dtype == arr.dtype
        np.testing.assert_array_equal(got, arr)
    legacy = np.load(outputs / "legacy_out.npy")
    assert legacy.flags.c_contiguous and legacy.dtype == np.float64
    np.testing.assert_array_equal(legacy, LEGACY)
    assert not (outputs / "parts.npz").exists()
    assert json.loads((outputs / "summary.json").read_text()) == {"rows": 4, "ok": True}
    assert (outputs / ".artifacts" / "labels").exists()

    records = [json.loads(line) for line in (runtime / "metrics.jsonl").read_text().splitlines()]
    metrics = [r for r in records if r["type"] == "metric"]
    for r in metrics:
        assert list(r) == ["type", "name", "value", "step", "timestamp"]
        assert TS_RE.match(r["timestamp"]), r["timestamp"]
        assert isinstance(r["value"], float)
    losses = [(r["step"], r["value"]) for r in metrics if r["name"] == "train/loss"]
    assert losses == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))], "the NaN at step 3 is skipped"
    assert [r["step"] for r in metrics if r["name"] == "val/acc"] == [0, 1, 2, 3]
    assert [r["step"] for r in metrics if r["name"] == "final/score"] == [None]
    lost = [r for r in records if r["type"] == "lost"]
    assert lost == [{"type": "lost", "count": 1, "reasons": {"non_finite": 1}}]
    artifacts = [r for r in records if r["type"] == "artifact"]
    assert [(a["name"], a["path"], a["backend_url"]) for a in artifacts] == [
        ("summary", "summary.json", None)
    ]
    assert TS_RE.match(artifacts[0]["timestamp"])

    findings = json.loads((runtime / "svs_findings.json").read_text())
    assert findings["version"] == 1
    [health] = findings["findings"]
    assert (health["source"], health["check"], health["severity"]) == (
        "metric_health",
        "non_finite_metric",
        "error",
    )
    assert health["signal"] == "train/loss" and "produced NaN at step 3" in health["message"]
    assert set(health) == {"source", "check", "severity", "signal", "message", "value", "threshold"}

    log_lines = (runtime / "logs.txt").read_text().splitlines()
    assert log_lines and all(LOG_RE.match(line) for line in log_lines), log_lines
    assert any(line.endswith("INFO: step 1 loss 0.5000") for line in log_lines)
    assert any(line.endswith("WARNING: stop requested: budget exhausted") for line in log_lines)
    assert any(
        line.endswith(
            "WARNING: goldfish.metrics: skipped (non_finite): metric 'train/loss' value NaN at step 3 is not finite."
        )
        for line in log_lines
    )
    assert "goldfish.metrics: skipped" in err and "goldfish.metrics" not in out, "SDK problems go to stderr"
    assert "INFO: step 0 loss 1.0000" in out, "runtime_log also prints to stdout"

    hb = json.loads((runtime / "heartbeat").read_text())
    assert set(hb) == {"timestamp", "iso_time", "message", "pid"}
    assert hb["message"] == "done" and hb["pid"] == pid
    assert abs(hb["timestamp"] - time.time()) < 120 and TS_RE.match(hb["iso_time"])
    assert not list(runtime.glob("*.tmp")), "atomic writes leave no temp files"

    stats = json.loads((runtime / "svs_stats.json").read_text())
    assert stats["version"] == 1
    # The Python SDK computes the same stats from the same files (all samples below 10,000 elements).
    files = {
        "scaled": outputs / "scaled.npy",
        "labels": outputs / "labels.npy",
        "legacy_out": outputs / "legacy_out.npy",
        **{f"parts.{p.stem}": p for p in (outputs / "parts").glob("*.npy")},
    }
    assert set(stats["stats"]) == set(files) and len(files) == 7
    for key, file in files.items():
        _assert_same_stats(stats["stats"][key], py_stats.array_stats(np.load(file)), key)
    assert stats["stats"]["scaled"]["entropy"] == pytest.approx(math.log2(12))


def _assert_same_stats(rust: dict[str, Any], python: dict[str, Any], key: str) -> None:
    assert list(rust) == list(python), key
    for name, expected in python.items():
        got = rust[name]
        if isinstance(expected, float):
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), (key, name, got, expected)
        else:
            assert got == expected, (key, name, got, expected)


@needs_cargo
def test_blocking_contract_mismatch_fails_and_writes_nothing(built: dict[str, Any], tmp_path: Path) -> None:
    _write_inputs(tmp_path)
    code, _, err, _ = _run(built["probe"], tmp_path, _env(tmp_path, mode="mismatch"))
    assert code != 0
    # Same finding text as the Python SDK for the same data and schema.
    schema = json.loads(_env(tmp_path)["GOLDFISH_STAGE_CONFIG"])["outputs"]["scaled"]["schema"]
    [expected] = check_contract(np.zeros((4, 2), dtype=np.float32), schema, signal="scaled")
    assert expected.check == "shape"
    assert (
        "schema contract violated: Output 'scaled' was not written (svs.default_enforcement: blocking)" in err
    )
    assert expected.message in err and "Fix:" in err, err
    outputs = tmp_path / "outputs"
    assert not (outputs / "scaled.npy").exists()
    assert sorted(p.name for p in outputs.iterdir()) == [".goldfish"]
    runtime = outputs / ".goldfish"
    assert "unreachable" not in (runtime / "logs.txt").read_text()
    contract = [
        f
        for f in json.loads((runtime / "svs_findings.json").read_text())["findings"]
        if f["source"] == "contract"
    ]
    assert [(f["check"], f["severity"], f["signal"], f["message"]) for f in contract] == [
        ("shape", "error", "scaled", expected.message)
    ]


@needs_cargo
def test_panic_is_logged_and_the_guard_still_finalizes(built: dict[str, Any], tmp_path: Path) -> None:
    _write_inputs(tmp_path)
    code, _, err, _ = _run(built["probe"], tmp_path, _env(tmp_path, mode="panic"))
    assert code == 101 and "index out of bounds" in err
    runtime = tmp_path / "outputs" / ".goldfish"
    lines = (runtime / "logs.txt").read_text().splitlines()
    assert any(
        LOG_RE.match(line) and "ERROR: stage panicked:" in line and "index out of bounds" in line
        for line in lines
    )
    records = [json.loads(line) for line in (runtime / "metrics.jsonl").read_text().splitlines()]
    assert records[-1] == {"type": "lost", "count": 1, "reasons": {"non_finite": 1}}


@needs_cargo
def test_warning_mode_saves_and_reports(built: dict[str, Any], tmp_path: Path) -> None:
    _write_inputs(tmp_path)
    code, _, err, _ = _run(built["probe"], tmp_path, _env(tmp_path, mode="mismatch", enforcement="warning"))
    assert code == 0, err
    assert np.load(tmp_path / "outputs" / "scaled.npy").shape == (4, 2)
    runtime = tmp_path / "outputs" / ".goldfish"
    assert (
        "WARNING: SVS contract warning (shape): scaled: shape mismatch" in (runtime / "logs.txt").read_text()
    )
    sev = [
        f["severity"]
        for f in json.loads((runtime / "svs_findings.json").read_text())["findings"]
        if f["source"] == "contract"
    ]
    assert sev == ["warning"]


@needs_cargo
def test_custom_manifest_and_cached_rebuild(built: dict[str, Any], tmp_path: Path) -> None:
    custom = built["custom"]
    assert custom == built["app"] / "entrypoints" / "bin" / "custom" and os.access(custom, os.X_OK)
    env = {**os.environ, "GOLDFISH_OUTPUTS_DIR": str(tmp_path / "out")}
    done = subprocess.run([str(custom)], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "itoa says 42" in done.stdout
    manifest = tomllib.loads((_target_dir() / "stage-crates" / "custom" / "Cargo.toml").read_text())
    assert manifest["dependencies"]["goldfish-rust"] == {"path": str(CRATE)}
    assert manifest["features"] == {"extra": []}

    again = build_rust_stage(
        built["app"], "probe", entrypoint=None, crate_path=CRATE, target_dir=_target_dir()
    )
    assert again == built["probe"]
    log = (_target_dir() / "stage-crates" / "probe" / "build.log").read_text()
    assert "Compiling" not in log, "an unchanged stage must not recompile anything"
    assert any("built Rust stage 'probe'" in m for m in built["messages"])


@needs_cargo
def test_compile_error_is_reported_against_the_module(built: dict[str, Any]) -> None:
    app = built["app"]
    (app / "modules" / "broken.rs").write_text('fn main() {\n    let x: u32 = "text";\n}\n')
    with pytest.raises(RustBuildFailed) as info:
        build_rust_stage(app, "broken", entrypoint=None, crate_path=CRATE, target_dir=_target_dir())
    msg = str(info.value)
    assert "mismatched types" in msg and "modules/broken.rs:2" in msg
    assert "Compiling" not in msg and "Fix the errors in modules/broken.rs" in msg
    assert not (app / "entrypoints" / "broken").exists()


@needs_cargo
def test_toolchain_status_reports_cargo_and_crates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    status = rust_toolchain_status()
    assert status["ok"] is True, status
    assert status["cargo_version"].startswith("cargo ") and not status["missing_crates"]
    assert status["crates"]["serde_json"] and status["crates"]["zip"]
    monkeypatch.setenv("GOLDFISH_CARGO_REGISTRY", str(tmp_path / "empty"))
    bad = rust_toolchain_status()
    assert bad["ok"] is False and "zip" in bad["missing_crates"] and "setup-rust.sh" in bad["fix"]


def test_missing_cargo_names_the_setup_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "modules").mkdir(parents=True)
    (app / "modules" / "train.rs").write_text("fn main() {}\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))
    monkeypatch.delenv("GOLDFISH_CARGO", raising=False)
    with pytest.raises(RustToolchainMissing) as info:
        build_rust_stage(app, "train", entrypoint=None, crate_path=CRATE, target_dir=tmp_path / "target")
    assert "cargo is not installed" in str(info.value) and "scripts/setup-rust.sh" in str(info.value)
    assert not (tmp_path / "target").exists() and not (app / "entrypoints").exists()
    assert rust_toolchain_status()["ok"] is False


@pytest.mark.parametrize(
    "entrypoint", ["/abs/bin", "entrypoints/../x", "bin/train", "entrypoints", "entrypoints\\x"]
)
def test_bad_entrypoint_is_refused_before_anything(entrypoint: str, tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "modules").mkdir(parents=True)
    (app / "modules" / "train.rs").write_text("fn main() {}\n")
    with pytest.raises(InvalidInput) as info:
        build_rust_stage(app, "train", entrypoint=entrypoint, crate_path=CRATE, target_dir=tmp_path / "t")
    assert "entrypoints/" in (info.value.fix or "")
    assert not (tmp_path / "t").exists()


def test_missing_source_and_bad_stage_name(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as info:
        build_rust_stage(tmp_path, "train", entrypoint=None, crate_path=CRATE, target_dir=tmp_path / "t")
    assert "modules/train.rs" in str(info.value)
    with pytest.raises(InvalidInput):
        build_rust_stage(tmp_path, "../evil", entrypoint=None, crate_path=CRATE, target_dir=tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_user_manifest_is_adapted(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "enc.Cargo.toml").write_text(
        '[package]\nname = "x"\nbuild = "build.rs"\n\n[lib]\npath = "lib.rs"\n\n'
        '[dependencies]\ngoldfish_rust = "0.1"\nlocal = { path = "../vendor/local" }\n'
        "[target.'cfg(unix)'.dependencies]\nother = { path = \"other\" }\n"
    )
    doc = tomllib.loads(stage_manifest(tmp_path, "enc", Path("/opt/goldfish-rust")))
    assert doc["package"]["name"] == "goldfish-stage-enc" and "build" not in doc["package"]
    assert doc["bin"] == [{"name": "goldfish-stage-enc", "path": "src/main.rs"}]
    assert "lib" not in doc and doc["workspace"] == {}
    assert doc["dependencies"]["goldfish-rust"] == {"path": "/opt/goldfish-rust"}
    assert "goldfish_rust" not in doc["dependencies"]
    assert doc["dependencies"]["local"]["path"] == str((tmp_path / "vendor" / "local").resolve())
    assert doc["target"]["cfg(unix)"]["dependencies"]["other"]["path"] == str(tmp_path / "modules" / "other")
    (tmp_path / "modules" / "enc.Cargo.toml").write_text("[package\n")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        stage_manifest(tmp_path, "enc", Path("/opt/goldfish-rust"))


def test_toml_writer_round_trips() -> None:
    doc = {
        "cargo-features": ["a"],
        "package": {"name": "n", "weird key": 'q"u\\o\x7f\n', "n": 1, "f": 1.5, "inf": math.inf, "b": True},
        "profile": {"release": {"opt-level": 3, "lto": "thin"}},
        "empty": {},
    }
    assert tomllib.loads(dump_toml(doc)) == doc


def test_trim_compiler_output() -> None:
    raw = "   Compiling goldfish-rust v0.1.0\nerror: boom\n --> src/main.rs:1:1\n" + "x\n" * 200
    out = trim_compiler_output(raw, "train")
    assert out.startswith("error: boom") and "modules/train.rs:1:1" in out and "more lines" in out
