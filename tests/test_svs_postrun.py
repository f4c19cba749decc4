"""Post-run review over outputs written by the real stage SDK: stats findings, contract enforcement,
results_spec warnings and the ml_outcome hint, and the optional AI notes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from goldfish.svs.postrun import post_run_review
from tests.sdk_helpers import StageEnv, ok
from tests.svs_helpers import fake_anthropic, make_project

EMB = {"format": "npy", "type": "npy", "schema": {"kind": "tensor", "shape": [None, 4], "dtype": "float32"}}
SPEC = {"primary_metric": "val/acc", "direction": "maximize", "min_value": 0.6, "goal_value": 0.7,
        "dataset_split": "val", "tolerance": 0.01, "context": "baseline for the post-run tests",
        "failure_threshold": 0.4}


def stage(tmp_path: Path, code: str, *, enforcement: str = "warning", domain: str = "default") -> StageEnv:
    env = StageEnv(tmp_path / "run", outputs={"embeddings": EMB},
                   svs={"enabled": True, "stats_enabled": True, "default_enforcement": enforcement, "domain": domain})
    ok(env.run(code))
    return env


CONSTANT = """\
import numpy as np
from goldfish.io import save_output
save_output("embeddings", np.zeros((1000, 4), dtype=np.float32))
"""
NEAR_CONSTANT = """\
import numpy as np
from goldfish.io import save_output
x = np.zeros((5000, 4), dtype=np.float32)
x[:3, 0] = 1.0
save_output("embeddings", x)
"""
HEALTHY = """\
import numpy as np
from goldfish.io import save_output
from goldfish.metrics import log_metric
save_output("embeddings", np.random.default_rng(0).normal(size=(1000, 4)).astype(np.float32))
for step, acc in enumerate([0.5, 0.62, 0.71]):
    log_metric("val/acc", acc, step=step)
"""
WRONG_SHAPE = """\
import numpy as np
from goldfish.io import save_output, ContractViolation
try:
    save_output("embeddings", np.random.default_rng(1).normal(size=(200, 3)).astype(np.float32))
except ContractViolation:
    pass   # the stage swallows it and exits 0: the post-run review still fails the stage
"""


def review(project: Any, env: StageEnv, **kw: Any) -> Any:
    return post_run_review(project, run_dir=env.root, stage="train", **kw)


def test_constant_output_is_flagged(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = review(project, stage(tmp_path, CONSTANT))
    assert not result.fail and result.cause is None
    [finding] = result.findings
    assert (finding.source, finding.check, finding.signal) == ("stats", "constant_output", "embeddings")
    assert result.stats["embeddings"]["unique_count"] == 1


def test_low_entropy_output_is_flagged(tmp_path: Path) -> None:
    result = review(make_project(tmp_path), stage(tmp_path, NEAR_CONSTANT))
    [finding] = result.findings
    assert finding.check == "entropy_min" and finding.value is not None and finding.value < 0.1
    assert finding.threshold == 0.1 and not result.fail


def test_policy_fail_turns_stats_findings_into_a_failure(tmp_path: Path) -> None:
    project = make_project(tmp_path, svs={"default_policy": "fail"})
    result = review(project, stage(tmp_path, CONSTANT))
    assert result.fail and result.cause == "contract"
    assert "default_policy is fail" in (result.error or "") and "embeddings" in (result.error or "")


def test_policy_ignore_drops_stats_findings(tmp_path: Path) -> None:
    result = review(make_project(tmp_path, svs={"default_policy": "ignore"}), stage(tmp_path, CONSTANT))
    assert result.findings == [] and not result.fail


def test_contract_mismatch_fails_in_blocking_mode(tmp_path: Path) -> None:
    project = make_project(tmp_path, svs={"default_enforcement": "blocking"})
    env = stage(tmp_path, WRONG_SHAPE, enforcement="blocking")
    assert not (env.out_dir / "embeddings.npy").exists()
    result = review(project, env)
    assert result.fail and result.cause == "contract"
    assert any(f.source == "contract" and f.severity == "error" for f in result.findings)
    assert "embeddings" in (result.error or "") and "blocking" in (result.error or "")


def test_contract_mismatch_warns_in_warning_mode(tmp_path: Path) -> None:
    result = review(make_project(tmp_path), stage(tmp_path, WRONG_SHAPE))
    assert not result.fail
    assert {(f.source, f.severity) for f in result.findings} == {("contract", "warning")}


def test_host_rechecks_stats_without_sdk_findings(tmp_path: Path) -> None:
    """An SDK (e.g. another language) that wrote stats but no findings still gets judged."""
    run = tmp_path / "run"
    rt = run / "outputs" / ".goldfish"
    rt.mkdir(parents=True)
    entry = {"dtype": "int64", "shape": [5000], "mean": 0.0, "std": 0.0, "min": 0, "max": 0, "samples_used": 5000,
             "total_elements": 5000, "entropy": 0.0, "null_ratio": 0.0, "unique_count": 1, "top1_fraction": 1.0,
             "vocab_utilization": None}
    (rt / "svs_stats.json").write_text(json.dumps({"version": 1, "stats": {"tokens": entry}}))
    result = post_run_review(make_project(tmp_path), run_dir=run, stage="tok")
    assert [(f.check, f.signal) for f in result.findings] == [("constant_output", "tokens")]


def test_results_spec_hint_and_warnings(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = stage(tmp_path, HEALTHY)
    result = review(project, env, results_spec=SPEC)
    assert result.findings == [] and result.primary_value == 0.71 and result.ml_outcome_hint == "success"
    low = review(project, env, results_spec={**SPEC, "primary_metric": "val/acc"},
                 metrics_summary={"val/acc": {"last": 0.3}})
    assert low.ml_outcome_hint == "miss"
    assert [(f.check, f.severity, f.value) for f in low.findings] == [("failure_threshold", "warning", 0.3)]


def test_primary_metric_never_logged(tmp_path: Path) -> None:
    result = review(make_project(tmp_path), stage(tmp_path, HEALTHY), results_spec={**SPEC, "primary_metric": "val/accuracy"})
    [finding] = result.findings
    assert finding.check == "primary_metric_missing" and 'Did you mean "val/acc"' in finding.message
    assert result.ml_outcome_hint == "unknown" and not result.fail
    # A stage that feeds a later stage of the same pipeline run (preprocess → train) is not expected
    # to log the primary metric itself.
    upstream = review(make_project(tmp_path / "again"), stage(tmp_path / "again", HEALTHY),
                      results_spec={**SPEC, "primary_metric": "val/accuracy"}, feeds_later_stages=True)
    assert upstream.findings == [] and upstream.ml_outcome_hint == "unknown"


def test_unreadable_results_spec_is_a_warning(tmp_path: Path) -> None:
    result = review(make_project(tmp_path), stage(tmp_path, HEALTHY), results_spec={"primary_metric": "x"})
    assert [f.check for f in result.findings] == ["results_spec_unreadable"] and result.ml_outcome_hint is None


def test_svs_disabled_keeps_only_the_hint(tmp_path: Path) -> None:
    result = review(make_project(tmp_path, svs={"enabled": False}), stage(tmp_path, CONSTANT),
                    results_spec=SPEC, metrics_summary={"val/acc": {"last": 0.65}})
    assert result.findings == [] and result.ml_outcome_hint == "partial"


def test_ai_notes_and_rate_limit(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_tool("submit_post_run_review", {
            "findings": [{"check": "collapsed", "severity": "warning", "message": "all embeddings equal"}],
            "ml_outcome_hint": "miss", "summary": "outputs collapsed"})
        project = make_project(tmp_path, svs={"agent_provider": "anthropic", "anthropic_base_url": fake.url,
                                              "anthropic_api_key": "sk-test", "rate_limit_per_hour": 1})
        env = stage(tmp_path, CONSTANT)
        first = review(project, env, results_spec=SPEC)
        second = review(project, env, results_spec=SPEC)
    assert len(fake.requests) == 1
    assert first.ai_summary == "outputs collapsed" and first.ai_ml_outcome_hint == "miss"
    assert [f.check for f in first.findings if f.source == "anthropic"] == ["ai:collapsed"]
    assert second.ai_summary is None and not any(f.source == "anthropic" for f in second.findings)
    assert "constant_output" in fake.requests[0]["body"]["messages"][0]["content"]


def test_ai_failure_is_a_note(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_status(500)
        project = make_project(tmp_path, svs={"agent_provider": "anthropic", "anthropic_base_url": fake.url,
                                              "anthropic_api_key": "sk-test"})
        result = review(project, stage(tmp_path, CONSTANT))
    assert [(f.check, f.severity) for f in result.findings if f.source == "anthropic"] == [("provider_unavailable", "info")]
    assert not result.fail
