"""Bad input to the stage SDK: each gets a clear error (or, for metrics, a logged and counted skip)
and changes nothing it should not. Real files; the env is set in this process (the SDK reads it at
call time) except where a whole stage must fail as a subprocess."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stage_sdk import io as sio
from stage_sdk.contracts import ContractViolation
from stage_sdk.metrics import MetricsLogger
from tests.sdk_helpers import StageEnv

TENSOR = {"kind": "tensor", "shape": [None, 4], "dtype": "float32"}


def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, enforcement: str = "warning",
         domain: str = "default", enabled: bool = True, objects: bool = True) -> StageEnv:
    env = StageEnv(
        tmp_path / "run",
        inputs={"features": {"type": "npy", "schema": TENSOR}, "raw": {"type": "dataset", "schema": None}},
        outputs={
            "emb": {"type": "npy", "schema": TENSOR},
            "model": {"type": "directory", "schema": None},
            "tokens": {"type": "npy", "schema": {"kind": "tensor", "dtype": "int64", "vocab_size": 50000}},
            "table": {"type": "csv", "schema": {"kind": "tabular", "columns": ["a", "b"], "dtypes": {"a": "int64"}}},
        },
        svs={"enabled": enabled, "stats_enabled": True, "default_enforcement": enforcement, "domain": domain},
        objects=objects,
    )
    env.apply(monkeypatch)
    np.save(env.in_dir / "features.npy", np.ones((3, 4), np.float32))
    return env


# ------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("call", [
    lambda: sio.load_input("featurs"),
    lambda: sio.save_output("embb", np.ones((2, 4), np.float32)),
    lambda: sio.get_output_path("embs"),
    lambda: sio.get_input_path("feature"),
])
def test_undeclared_signal_names_the_closest_declared_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          call) -> None:
    env = _env(tmp_path, monkeypatch)
    before = env.tree()
    with pytest.raises(ValueError, match=r"not declared for stage 'train'\. Did you mean '(features|emb)'\?"):
        call()
    assert env.tree() == before


@pytest.mark.parametrize("bad", ["../x", "a/b", "/etc/passwd", "..", "", "x\x00y", "émb", "a" * 65])
def test_traversal_and_malformed_names_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   bad: str) -> None:
    env = _env(tmp_path, monkeypatch)
    before = env.tree()
    for call in (lambda: sio.load_input(bad), lambda: sio.save_output(bad, np.ones(3)),
                 lambda: sio.get_output_path(bad), lambda: sio.get_input_path(bad)):
        with pytest.raises(ValueError, match=r"Invalid (input|output) name"):
            call()
    for call in (lambda: sio.save_checkpoint(bad, np.ones(3)), lambda: sio.load_checkpoint(bad),
                 lambda: sio.load_checkpoint("ok", run_id=bad), lambda: sio.list_checkpoints(run_id=bad)):
        with pytest.raises(ValueError, match=r"Invalid (checkpoint name|run id)"):
            call()
    assert env.tree() == before


def test_stage_config_missing_is_a_runtime_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOLDFISH_STAGE_CONFIG", raising=False)
    with pytest.raises(RuntimeError, match=r"GOLDFISH_STAGE_CONFIG is not set.*Fix"):
        sio.load_input("features")


# ------------------------------------------------------------------------------------------ inputs


def test_missing_input_and_unknown_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    (env.in_dir / "features.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"Input 'features' not found; looked at .*features"):
        sio.load_input("features")
    with pytest.raises(FileNotFoundError, match=r"Input 'raw' not found"):
        sio.load_input("raw")
    np.save(env.in_dir / "features.npy", np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"Unknown format 'parquet'.*npy, npz, csv, json, file, directory, dataset"):
        sio.load_input("features", format="parquet")


def test_ambiguous_directory_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    (env.in_dir / "features.npy").unlink()
    (env.in_dir / "features").mkdir()
    np.save(env.in_dir / "features" / "a.npy", np.ones(2))
    np.save(env.in_dir / "features" / "b.npy", np.ones(2))
    with pytest.raises(ValueError, match=r"holds 2 \.npy files.*format='directory'"):
        sio.load_input("features")
    np.save(env.in_dir / "features" / "features.npy", np.arange(3))
    assert sio.load_input("features").tolist() == [0, 1, 2]  # <name>.npy wins inside a directory


# ----------------------------------------------------------------------------------------- outputs


def test_directory_signal_points_to_get_output_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    before = env.tree()
    with pytest.raises(ValueError, match=r"write the directory yourself at get_output_path\('model'\)"):
        sio.save_output("model", np.ones(3))
    assert env.tree() == before


def test_symlink_output_leading_outside_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    outside = tmp_path / "outside.npy"
    outside.write_bytes(b"keep")
    (env.out_dir / "emb.npy").symlink_to(outside)
    with pytest.raises(ValueError, match="symlink that leads outside the outputs dir"):
        sio.save_output("emb", np.ones((2, 4), np.float32))
    assert outside.read_bytes() == b"keep"


def test_contract_blocking_raises_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch, enforcement="blocking")
    with pytest.raises(ContractViolation) as info:
        sio.save_output("emb", np.ones((2, 5), np.float64))
    msg = str(info.value)
    assert "'emb'" in msg and "expected [null, 4]" in msg and "got [2, 5]" in msg
    assert "expected float32, got float64" in msg and "Fix:" in msg
    assert isinstance(info.value, ValueError) and {f.check for f in info.value.findings} == {"shape", "dtype"}
    assert not (env.out_dir / "emb.npy").exists()
    assert [f["severity"] for f in env.findings() if f["source"] == "contract"] == ["error", "error"]
    # a conforming save still goes through in blocking mode
    assert sio.save_output("emb", np.ones((2, 4), np.float32)).is_file()


def test_contract_blocking_fails_the_stage_process(tmp_path: Path) -> None:
    env = StageEnv(tmp_path, outputs={"emb": {"type": "npy", "schema": TENSOR}},
                   svs={"enabled": True, "default_enforcement": "blocking"})
    proc = env.run("import numpy as np\nfrom goldfish.io import save_output\n"
                   "save_output('emb', np.zeros((2, 3), np.float32))\n")
    assert proc.returncode == 1
    assert "ContractViolation: Output 'emb' was not written" in proc.stderr
    assert not (env.out_dir / "emb.npy").exists()


def test_contract_warning_writes_and_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(tmp_path, monkeypatch, enforcement="warning")
    path = sio.save_output("emb", np.ones((2, 5), np.float32))
    assert np.load(path).shape == (2, 5)
    contract = [f for f in env.findings() if f["source"] == "contract"]
    assert [(f["check"], f["severity"], f["signal"]) for f in contract] == [("shape", "warning", "emb")]
    assert "WARNING: SVS contract warning (shape)" in capsys.readouterr().out
    assert "SVS contract warning (shape)" in (env.rt / "logs.txt").read_text()


@pytest.mark.parametrize(("enforcement", "enabled"), [("silent", True), ("blocking", False)])
def test_contract_silent_or_svs_off_writes_without_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            enforcement: str, enabled: bool) -> None:
    env = _env(tmp_path, monkeypatch, enforcement=enforcement, enabled=enabled)
    assert np.load(sio.save_output("emb", np.ones((2, 5), np.int8))).dtype == np.int8
    assert [f for f in env.findings() if f["source"] == "contract"] == []


def test_tabular_contract_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch, enforcement="blocking")
    with pytest.raises(ContractViolation, match=r"missing \['b'\]; unexpected \['c'\]"):
        sio.save_output("table", {"a": [1, 2], "c": [3, 4]})
    with pytest.raises(ContractViolation, match=r"column 'a' dtype mismatch: expected int64, got float64"):
        sio.save_output("table", {"a": [1.5, 2.0], "b": [3, 4]})
    assert not (env.out_dir / "table.csv").exists()
    sio.save_output("table", np.array([[1, 2], [3, 4]], dtype=np.int64))  # 2-D array: headers from the schema
    assert (env.out_dir / "table.csv").read_text().splitlines() == ["a,b", "1,2", "3,4"]


def test_constant_output_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    sio.save_output("emb", np.full((300, 4), 0.5, np.float32))
    found = {f["check"]: f for f in env.findings() if f["source"] == "stats"}
    assert found["constant_output"]["severity"] == "warning"
    assert "constant" in found["constant_output"]["message"]
    assert env.stats()["emb"]["unique_count"] == 1 and env.stats()["emb"]["entropy"] == 0.0


def test_low_entropy_blocking_domain_raises_after_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch, enforcement="blocking", domain="nlp_tokenizer")
    tokens = np.random.default_rng(0).integers(0, 4, size=20_000).astype(np.int64)  # 2 bits, needs 6
    with pytest.raises(ContractViolation, match=r"entropy 2 bits is below the minimum 6 bits"):
        sio.save_output("tokens", tokens)
    assert not (env.out_dir / "tokens.npy").exists()
    checks = {f["check"]: f for f in env.findings()}
    assert checks["entropy_min"]["severity"] == "error" and checks["entropy_min"]["threshold"] == 6.0
    assert checks["vocab_utilization_min"]["severity"] == "warning"
    assert env.stats()["tokens"]["vocab_utilization"] == pytest.approx(4 / 50000)


# -------------------------------------------------------------------------------------- checkpoints


def test_checkpoint_without_durable_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch, objects=False)
    before = env.tree()
    with pytest.raises(RuntimeError, match=r"neither GOLDFISH_OBJECTS_DIR nor GOLDFISH_GCS_BUCKET is set.*local_ok=True"):
        sio.save_checkpoint("state", {"a": 1})
    assert env.tree() == before
    stored = sio.save_checkpoint("state", np.arange(4), step=2, local_ok=True)
    assert stored == env.rt / "checkpoints" / "state" / "step_2"
    assert sio.list_checkpoints() == {"state": {"steps": [2], "latest": False, "location": "local"}}
    assert np.load(sio.load_checkpoint("state")).tolist() == [0, 1, 2, 3]
    for bad_step in (-1, True, 1.5, "3"):
        with pytest.raises(ValueError, match="step must be None or an int >= 0"):
            sio.save_checkpoint("state", 1, step=bad_step, local_ok=True)


def test_checkpoint_replacement_survives_a_crash_between_renames(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    sio.save_checkpoint("state", {"v": 1})
    latest = env.obj_dir / "checkpoints" / env.run_id / "state" / "latest"
    # Simulate dying right after the old version was moved aside and before the new one was renamed in.
    latest.rename(latest.with_name(".gf-old-latest.deadbeef"))
    assert sio.list_checkpoints()["state"]["latest"] is True
    assert latest.is_dir()
    import pickle

    with open(sio.load_checkpoint("state"), "rb") as f:
        assert pickle.load(f) == {"v": 1}


def test_checkpoint_refuses_symlinked_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    src = tmp_path / "model"
    src.mkdir()
    (src / "link").symlink_to("/etc/hostname")
    with pytest.raises(ValueError, match="is a symlink"):
        sio.save_checkpoint("model", src)
    assert not (env.obj_dir / "checkpoints" / env.run_id / "model").exists()


# ------------------------------------------------------------------------------------------ metrics


@pytest.fixture
def loggers() -> Iterator[list[MetricsLogger]]:
    made: list[MetricsLogger] = []
    yield made
    for lg in made:
        lg.close()


def _logger(env: StageEnv, made: list[MetricsLogger]) -> MetricsLogger:
    lg = MetricsLogger(env.out_dir)
    made.append(lg)
    return lg


def test_bad_metric_values_are_skipped_counted_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loggers: list[MetricsLogger],
) -> None:
    env = _env(tmp_path, monkeypatch)
    lg = _logger(env, loggers)
    lg.log_metric("loss", float("nan"), step=3)
    lg.log_metric("loss", float("inf"), step=4)
    lg.log_metric("flag", True)
    lg.log_metric("flag", np.bool_(False))
    lg.log_metric("text", "0.5")
    lg.log_metric("vec", np.ones(2))
    lg.log_metric("bad name", 1.0)
    lg.log_metric("a..b", 1.0)
    lg.log_metric("x", 1.0, step=-1)
    lg.log_metric("x", 1.0, step=1.5)
    lg.log_metric("x", 1.0, timestamp="yesterday")
    lg.log_metric("x", 1.0, timestamp=4_102_444_800.0)  # 2100
    lg.log_metrics(["not", "a", "dict"])  # type: ignore[arg-type]
    lg.log_metric("ok", 1)
    lg.finish()
    assert lg.lost_counts() == {"non_finite": 2, "invalid_value": 4, "invalid_name": 2, "invalid_step": 2,
                                "invalid_timestamp": 2, "invalid_batch": 1}
    records = env.metrics()
    assert [r["name"] for r in records if r["type"] == "metric"] == ["ok"]
    lost = [r for r in records if r["type"] == "lost"]
    assert sum(r["count"] for r in lost) == 13
    health = [f for f in env.findings() if f["source"] == "metric_health"]
    assert [(f["check"], f["severity"], f["signal"]) for f in health] == [("non_finite_metric", "error", "loss")]
    log = (env.rt / "logs.txt").read_text()
    assert "skipped (invalid_value): metric 'flag': metric value True is a bool; log 0 or 1 instead." in log


def test_step_mode_switch_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loggers: list[MetricsLogger],
) -> None:
    env = _env(tmp_path, monkeypatch)
    lg = _logger(env, loggers)
    lg.log_metric("loss", 1.0, step=1)
    lg.log_metric("loss", 2.0)
    lg.log_metric("lr", 0.1)
    lg.log_metric("lr", 0.2, step=2)
    lg.finish()
    assert [(r["name"], r["step"]) for r in env.metrics() if r["type"] == "metric"] == [("loss", 1), ("lr", None)]
    assert lg.lost_counts() == {"step_mode": 2}
    assert "first logged with a step, so this call without one is skipped" in (env.rt / "logs.txt").read_text()


def test_metric_name_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loggers: list[MetricsLogger],
) -> None:
    env = _env(tmp_path, monkeypatch)
    monkeypatch.setenv("GOLDFISH_METRICS_MAX_NAMES", "3")
    lg = _logger(env, loggers)
    for i in range(5):
        lg.log_metric(f"m{i}", 1.0)
    lg.log_metric("m0", 2.0)  # a known name is still fine
    lg.finish()
    assert [r["name"] for r in env.metrics() if r["type"] == "metric"] == ["m0", "m1", "m2", "m0"]
    assert lg.lost_counts() == {"name_cap": 2}


def test_problem_logging_is_rate_limited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loggers: list[MetricsLogger],
) -> None:
    env = _env(tmp_path, monkeypatch)
    lg = _logger(env, loggers)
    for _ in range(500):
        lg.log_metric("flag", True)
    lg.finish()
    log = (env.rt / "logs.txt").read_text()
    assert log.count("skipped (invalid_value)") == 10
    assert "further 'invalid_value' problems are not logged one by one" in log
    assert lg.lost_counts() == {"invalid_value": 500}


@pytest.mark.parametrize("bad", ["/etc/passwd", "../escape.txt", "a/../../b", "%2e%2e/x", "%252e%252e/x",
                                 "a\\b", "a%5cb", "x\x00y", " lead", "", "~/x", "C:/x", "a;rm -rf"])
def test_bad_artifact_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        loggers: list[MetricsLogger], bad: str) -> None:
    env = _env(tmp_path, monkeypatch)
    lg = _logger(env, loggers)
    assert lg.log_artifact("model", bad) is None
    lg.finish()
    assert [r for r in env.metrics() if r["type"] == "artifact"] == []
    assert lg.lost_counts() == {"invalid_artifact": 1}


def test_symlinked_artifacts_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loggers: list[MetricsLogger],
) -> None:
    env = _env(tmp_path, monkeypatch)
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    (env.out_dir / "link.txt").symlink_to(secret)
    (env.out_dir / "real").mkdir()
    (env.out_dir / "real" / "f.txt").write_text("ok")
    (env.out_dir / "dirlink").symlink_to(env.out_dir / "real")
    lg = _logger(env, loggers)
    assert lg.log_artifact("a", "link.txt") is None
    assert lg.log_artifact("b", "dirlink/f.txt") is None
    assert lg.log_artifact("c", "./real/f.txt") is None  # accepted, no backend -> None
    lg.finish()
    arts = [r for r in env.metrics() if r["type"] == "artifact"]
    assert [(r["name"], r["path"]) for r in arts] == [("c", "real/f.txt")]
    assert lg.lost_counts() == {"invalid_artifact": 2}
    assert "symlink" in (env.rt / "logs.txt").read_text()


def test_loss_spike_writes_a_divergence_warning_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loggers: list[MetricsLogger],
) -> None:
    env = _env(tmp_path, monkeypatch)
    lg = _logger(env, loggers)
    for step in range(50):
        lg.log_metric("train/loss", 1.0 - step * 0.01, step=step)
    lg.log_metric("train/loss", 30.0, step=50)
    lg.log_metric("train/loss", 40.0, step=51)  # same window: no second finding
    lg.log_metric("val/accuracy", 1e6, step=1)  # not a loss
    lg.finish()
    div = [f for f in env.findings() if f["check"] == "loss_divergence"]
    assert len(div) == 1 and div[0]["signal"] == "train/loss" and div[0]["value"] == 30.0
    assert div[0]["threshold"] == pytest.approx(10 * 0.51)
    assert len([r for r in env.metrics() if r["type"] == "metric"]) == 53  # spikes are still recorded


def test_wandb_mirror_absent_is_noted_once(tmp_path: Path) -> None:
    env = StageEnv(tmp_path, extra={"GOLDFISH_METRICS_BACKEND": "wandb"})
    proc = env.run("from goldfish.metrics import log_metric, finish, had_backend_errors\n"
                   "for i in range(3): log_metric('a', i, step=i)\n"
                   "print('URL', finish(), had_backend_errors())\n")
    assert proc.returncode == 0, proc.stderr
    assert "URL None False" in proc.stdout
    assert (env.rt / "logs.txt").read_text().count("wandb is not installed") == 1
    assert len(env.metrics()) == 3


def test_wandb_mirror_forwards_when_importable(tmp_path: Path) -> None:
    fake = tmp_path / "fakepkgs" / "wandb"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import json, os\n"
        "LOG = os.environ['FAKE_WANDB_LOG']\n"
        "def _w(*a):\n    open(LOG, 'a').write(json.dumps(a) + '\\n')\n"
        "class Artifact:\n"
        "    def __init__(self, name, type):\n        self.name = name\n"
        "    def add_file(self, p):\n        _w('file', self.name, os.path.basename(p))\n"
        "    def add_dir(self, p):\n        _w('dir', self.name)\n"
        "class Run:\n    url = 'https://wandb.example/run1'\n"
        "    def log(self, d, step=None):\n        _w('log', d, step)\n"
        "        if 'boom' in d: raise RuntimeError('backend down')\n"
        "    def log_artifact(self, a):\n        _w('artifact', a.name)\n"
        "    def finish(self):\n        _w('finish')\n"
        "def init(**kw):\n    _w('init', kw['project'], kw['name'])\n    return Run()\n"
    )
    log = tmp_path / "wandb.log"
    env = StageEnv(tmp_path / "run", extra={"GOLDFISH_METRICS_BACKEND": "wandb", "GOLDFISH_WORKSPACE": "w1",
                                            "PYTHONPATH": str(fake.parent), "FAKE_WANDB_LOG": str(log)})
    env.env()
    (env.out_dir / "m.pt").write_bytes(b"x")
    proc = env.run("from goldfish.metrics import *\n"
                   "log_metric('a', 1.5, step=0)\nlog_metric('boom', 1.0)\n"
                   "print('ART', log_artifact('model', 'm.pt'))\n"
                   "print('ERR', had_backend_errors(), get_backend_errors())\nprint('URL', finish())\n")
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(x) for x in log.read_text().splitlines()]
    assert calls[0] == ["init", "goldfish-w1", "stage-0a1b2c3d"]
    assert ["log", {"a": 1.5}, 0] in calls and ["artifact", "model"] in calls and calls[-1] == ["finish"]
    assert "ART https://wandb.example/run1/artifacts" in proc.stdout
    assert "ERR True ['wandb log failed: RuntimeError: backend down']" in proc.stdout
    assert "URL https://wandb.example/run1" in proc.stdout
    assert [r["name"] for r in env.metrics() if r["type"] == "metric"] == ["a", "boom"]


def test_metrics_survive_an_unwritable_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loggers: list[MetricsLogger],
) -> None:
    env = _env(tmp_path, monkeypatch)
    (env.out_dir / ".goldfish").write_text("a file where the runtime dir should be")
    lg = _logger(env, loggers)
    lg.log_metric("a", 1.0)
    lg.finish()  # must not raise
    assert lg.lost_counts() == {"write_error": 1}
    assert os.path.isfile(env.out_dir / ".goldfish")


def test_a_directory_containing_its_own_destination_is_refused(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    before = env.tree()
    with pytest.raises(ValueError, match="contains the output path"):
        sio.save_output("model", env.out_dir)
    with pytest.raises(ValueError, match="contains the SDK's runtime dir"):
        sio.save_checkpoint("everything", env.out_dir)
    assert env.tree() == before


def test_unserialisable_json_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = StageEnv(tmp_path, outputs={"summary": {"type": "json", "schema": {"kind": "json"}}})
    env.apply(monkeypatch)
    before = env.tree()
    for bad in ({"x": float("nan")}, {"x": {1, 2}}, {"x": object()}):
        with pytest.raises(ValueError, match=r"not JSON serialisable.*Fix"):
            sio.save_output("summary", bad)
    assert env.tree() == before
    assert sio.save_output("summary", {"n": np.int64(3), "v": np.arange(2)}).read_text() == '{"n": 3, "v": [0, 1]}'
