"""Output stats and the domain thresholds that turn them into findings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stage_sdk import stats
from stage_sdk import io as sio
from tests.sdk_helpers import StageEnv

KEYS = {"dtype", "shape", "mean", "std", "min", "max", "samples_used", "total_elements", "entropy", "null_ratio",
        "unique_count", "top1_fraction", "vocab_utilization"}


def test_keys_and_sampling_bound() -> None:
    arr = np.random.default_rng(0).standard_normal((300, 100), dtype=np.float32)
    s = stats.array_stats(arr)
    assert set(s) == KEYS
    assert s["samples_used"] == 10_000 and s["total_elements"] == 30_000 and s["shape"] == [300, 100]
    assert s["dtype"] == "float32" and abs(s["mean"]) < 0.05 and abs(s["std"] - 1) < 0.05
    assert 9.0 < s["entropy"] <= 10.0  # a Gaussian over 1024 bins
    assert s == stats.array_stats(arr)  # deterministic sample
    strided = stats.array_stats(np.asfortranarray(arr)[:, ::2])
    assert strided["total_elements"] == 15_000 and strided["samples_used"] == 10_000


def test_integer_entropy_is_exact_and_null_ratio_counts_nans() -> None:
    ints = np.tile(np.arange(8), 100)
    s = stats.array_stats(ints)
    assert s["entropy"] == pytest.approx(3.0) and s["unique_count"] == 8 and s["null_ratio"] == 0.0
    assert s["top1_fraction"] == pytest.approx(1 / 8)
    floats = np.where(np.arange(1000) % 4 == 0, np.nan, 1.0)
    f = stats.array_stats(floats)
    assert f["null_ratio"] == pytest.approx(0.25) and f["unique_count"] == 1 and f["mean"] == 1.0


def test_one_outlier_does_not_collapse_float_entropy() -> None:
    arr = np.random.default_rng(1).uniform(size=5000)
    arr[0] = 1e12
    assert stats.array_stats(arr)["entropy"] > 9.0


def test_vocab_utilization_exact_and_sampled() -> None:
    small = np.arange(700) % 70
    assert stats.array_stats(small, vocab_size=100)["vocab_utilization"] == pytest.approx(0.7)
    big = np.random.default_rng(2).integers(0, 1000, size=2_000_000)
    util = stats.array_stats(big, vocab_size=1000)["vocab_utilization"]
    assert util > 0.95  # sampled (4 x vocab elements) but sees nearly every id


def test_strings_and_empty() -> None:
    s = stats.array_stats(np.array(["a", "b", "a", None, "a"], dtype=object))
    assert s["null_ratio"] == pytest.approx(0.2) and s["unique_count"] == 2 and s["mean"] is None
    assert s["top1_fraction"] == pytest.approx(0.75)
    e = stats.array_stats(np.zeros((0, 3)))
    assert e["total_elements"] == 0 and e["samples_used"] == 0
    assert [f.check for f in stats.evaluate(e, signal="x", key="x", domain="default")] == ["empty_output"]


def _checks(entry: dict, domain: str, **kw) -> dict[str, str]:
    return {f.check: f.severity for f in stats.evaluate(entry, signal="x", key="x", domain=domain, **kw)}


def test_default_domain_checks() -> None:
    assert _checks(stats.array_stats(np.random.default_rng(0).normal(size=1000)), "default") == {}
    nulls = stats.array_stats(np.where(np.arange(1000) < 600, np.nan, np.arange(1000.0)))
    assert _checks(nulls, "default") == {"null_ratio_max": "warning"}
    const = stats.array_stats(np.full(1000, 3))
    assert _checks(const, "default") == {"constant_output": "warning"}
    skewed = stats.array_stats(np.r_[np.zeros(995), np.ones(5)])  # 0.045 bits
    assert _checks(skewed, "default") == {"entropy_min": "warning"}
    assert _checks(stats.array_stats(np.r_[np.zeros(95), np.ones(1)]), "default") == {}  # <= 100 elements
    assert _checks(stats.array_stats(np.array([7])), "default") == {}  # a single element is not "constant"


def test_domain_presets_really_apply() -> None:
    rng = np.random.default_rng(3)
    tokens = stats.array_stats(rng.integers(0, 16, size=20_000), vocab_size=1000)  # 4 bits, 1.6% of vocab
    assert _checks(tokens, "nlp_tokenizer") == {"entropy_min": "error", "vocab_utilization_min": "warning"}
    assert _checks(tokens, "nlp_tokenizer", domain_checks=False) == {}
    good = stats.array_stats(rng.integers(0, 1000, size=20_000), vocab_size=1000)
    assert _checks(good, "nlp_tokenizer") == {}
    emb = stats.array_stats(np.round(rng.normal(size=20_000), 1))  # quantised: ~5.7 bits
    assert _checks(emb, "image_embeddings") == {"entropy_min": "warning"}
    emb_nan = stats.array_stats(np.where(np.arange(20_000) % 500 == 0, np.nan, rng.normal(size=20_000)))
    assert _checks(emb_nan, "image_embeddings") == {"null_ratio_max": "error"}
    col = stats.array_stats(np.where(np.arange(1000) < 700, 1.0, rng.normal(size=1000)))
    assert _checks(col, "tabular_features") == {"top1_fraction_max": "warning"}
    col_nan = stats.array_stats(np.where(np.arange(1000) < 80, np.nan, rng.normal(size=1000)))
    assert _checks(col_nan, "tabular_features") == {"null_ratio_max": "error"}


def test_csv_stats_per_column_with_tabular_domain(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = StageEnv(tmp_path, outputs={"feats": {"type": "csv", "schema": {"kind": "tabular", "columns": ["a", "b"]}}},
                   svs={"enabled": True, "default_enforcement": "blocking", "domain": "tabular_features"})
    env.apply(monkeypatch)
    frame = pd.DataFrame({"a": [1.0] * 60 + list(range(2, 32)) + [float("nan")] * 10, "b": np.arange(100)})
    with pytest.raises(sio.ContractViolation, match=r"null_ratio 0\.1 is above the maximum 0\.05"):
        sio.save_output("feats", frame)
    st = env.stats()
    assert set(st) == {"feats.a", "feats.b"} and st["feats.a"]["null_ratio"] == pytest.approx(0.1)
    assert st["feats.b"]["entropy"] == pytest.approx(math.log2(100))
    found = {(f["check"], f["severity"]) for f in env.findings()}
    assert found == {("null_ratio_max", "error"), ("top1_fraction_max", "warning")}
    assert not (env.out_dir / "feats.csv").exists()


def test_stats_disabled_writes_no_stats(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = StageEnv(tmp_path, outputs={"x": {"type": "npy", "schema": None}},
                   extra={"GOLDFISH_SVS_STATS_ENABLED": "false"})
    env.apply(monkeypatch)
    sio.save_output("x", np.zeros(1000))
    assert not (env.rt / "svs_stats.json").exists() and env.findings() == []


def test_path_outputs_are_checked_by_opening_them(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    schema = {"kind": "tensor", "arrays": {"w": {"shape": [None, 2], "dtype": "float64"}}}
    env = StageEnv(tmp_path, outputs={"model": {"type": "directory", "schema": schema},
                                      "arr": {"type": "npy", "schema": {"kind": "tensor", "shape": [3]}}},
                   svs={"enabled": True, "default_enforcement": "blocking"})
    env.apply(monkeypatch)
    src = tmp_path / "built"
    src.mkdir()
    np.save(src / "w.npy", np.ones((4, 3)))
    with pytest.raises(sio.ContractViolation, match=r"model\.w: shape mismatch"):
        sio.save_output("model", src)
    assert not (env.out_dir / "model").exists()
    np.save(src / "w.npy", np.ones((4, 2)))
    assert sio.save_output("model", src) == env.out_dir / "model"
    assert (env.out_dir / "model" / "w.npy").is_file() and "model.w" in env.stats()
    target = sio.get_output_path("arr")
    np.save(target, np.arange(3))
    assert sio.save_output("arr", target) == target  # already in place: validated, not copied
    assert env.stats()["arr"]["total_elements"] == 3
