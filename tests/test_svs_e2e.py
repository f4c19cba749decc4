"""SVS end to end through run() and the real detached runner: review blocks and skip_review, the
monitor stopping a diverged run, output stats and blocking contracts, and a failure learned as a
pattern that then blocks the same code."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from goldfish.runs.inspect import inspect_run
from goldfish.svs.run_findings import run_svs_findings
from tests.run_helpers import REASON, SPEC, Env, file_stage, make_env, wait_terminal

SVS_ON = {"test_mode": True, "ai_during_run_interval_seconds": 1}


def env_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **svs: Any) -> Env:
    env = make_env(tmp_path, monkeypatch)
    env.configure(pre_run_review={"enabled": True}, svs={**SVS_ON, **svs})
    return env


def stage_ids(started: Any) -> dict[str, str]:
    return {s.stage: s.stage_run_id for s in started.stage_runs}


def finalize(env: Env, run_id: str) -> None:
    with env.project.store.transaction() as tx:  # what finalize_run does to the gate
        tx.table("runs", "ws/exp").patch(run_id, {"results_status": "finalized"})


# --------------------------------------------------------------------------- review
SAFE_BUT_FLAGGED = """\
from goldfish.io import get_output_path
from goldfish.metrics import log_metric

log_metric("acc", 0.7)
get_output_path("out").write_text("ok")
if False:
    print(never_defined_anywhere)   # dead code: the rules flag it, the run would not mind
"""
MISSPELLED = """\
from goldfish.io import get_output_path

get_output_path("outt").write_text("ok")
"""


def test_review_blocks_then_skip_review_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(tmp_path, monkeypatch)
    env.write([file_stage("flagged"), file_stage("typo")], {"flagged": SAFE_BUT_FLAGGED, "typo": MISSPELLED})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    ids = stage_ids(started)
    # Both stages were reviewed before either launched: run() itself answers BLOCKED.
    assert started.status == "blocked" and started.done
    assert {(f.stage, f.check) for f in started.findings if f.blocks} >= {("typo", "unknown_signal")}
    assert wait_terminal(project, started.pipeline_run_id).status == "blocked"
    flagged, typo = project.runs.get(ids["flagged"]), project.runs.get(ids["typo"])
    for doc in (flagged, typo):
        assert (doc["state"], doc["cause"], doc["infra_outcome"]) == ("failed", "review_blocked", "blocked")
        assert doc["svs"]["review"]["decision"] == "blocked" and doc["svs"]["review"]["provider"] == "rules"
        assert not (project.runs_dir / doc["id"]).exists()  # never launched: not even a run dir
    assert "never_defined_anywhere" in flagged["error"] and "Fix:" in flagged["error"]
    assert "get_output_path('out')" in typo["error"]
    shown = inspect_run(project, ids["typo"], include=["svs"]).svs or {}
    assert shown["review"]["findings"][0]["check"] == "unknown_signal"
    review = run_svs_findings(project, ids["typo"]).review  # get_run_svs_findings reads the stored review
    assert review is not None and (review.verdict, review.provider) == ("blocked", "rules")
    assert review.findings[0].check == "unknown_signal"

    # blocked runs do not hold the gate; skip_review runs them and records the bypass
    again = project.runs.run("w1", reason=REASON, results_spec=SPEC, skip_review=True)
    ids = stage_ids(again)
    wait_terminal(project, again.pipeline_run_id)
    flagged, typo = project.runs.get(ids["flagged"]), project.runs.get(ids["typo"])
    assert flagged["state"] == "completed"
    assert flagged["svs"]["skip_review"] is True and flagged["svs"]["review"]["decision"] == "skipped"
    assert (typo["state"], typo["cause"]) == ("failed", "exit_nonzero") and "outt" in typo["error"]
    bypassed = run_svs_findings(project, ids["flagged"])
    assert bypassed.skip_review is True and bypassed.review is not None and bypassed.review.skipped


# --------------------------------------------------------------------------- monitor
DIVERGING = """\
import time
from goldfish.io import get_output_path, heartbeat, flush_metrics
from goldfish.metrics import log_metric

for step in range(3000):
    loss = float("nan") if step >= 10 else 1.0 / (step + 1)
    log_metric("train/loss", loss, step=step)
    flush_metrics()
    heartbeat()
    time.sleep(0.02)   # never looks at should_stop()
get_output_path("model").write_text("finished")
"""


def test_monitor_stops_a_diverged_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(tmp_path, monkeypatch, ai_during_run_auto_stop=True, ai_during_run_stop_grace_seconds=1)
    env.write([file_stage("train", outputs=("model",))], {"train": DIVERGING})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec={**SPEC, "primary_metric": "train/loss",
                                                                   "direction": "minimize", "min_value": 1.0,
                                                                   "goal_value": 0.1})
    run_id = started.stage_runs[0].stage_run_id
    begin = time.monotonic()
    wait_terminal(project, started.pipeline_run_id, timeout=60)
    assert time.monotonic() - begin < 40  # far sooner than the 60 s the loop would take
    doc = project.runs.get(run_id)
    assert (doc["state"], doc["cause"], doc["infra_outcome"]) == ("terminated", "ai_stopped", "crashed")
    assert "non_finite_metric" in doc["error"]
    during = doc["svs"]["during"]
    assert [f["check"] for f in during if f["severity"] == "error"] == ["non_finite_metric"]
    assert doc["svs"]["review"]["decision"] == "approved"
    assert (project.runs_dir / run_id / "outputs" / ".goldfish" / "stop_requested").is_file()
    log = (project.runs_dir / run_id / "logs" / "stdout.log").read_text()
    assert "stop requested: SVS monitor stopped the run" in log


# --------------------------------------------------------------------------- outputs
def npy_stage(name: str) -> dict[str, Any]:
    return {"name": name, "outputs": {"emb": {"type": "npy", "schema": {"kind": "tensor", "shape": [None, 4],
                                                                        "dtype": "float32"}}}}


NEAR_CONSTANT = """\
import numpy as np
from goldfish.io import save_output
x = np.zeros((5000, 4), dtype=np.float32)
x[:3, 0] = 1.0
save_output("emb", x)
"""
CONSTANT = """\
import numpy as np
from goldfish.io import save_output
save_output("emb", np.full((1000, 4), 7.0, dtype=np.float32))
"""
WRONG_SHAPE_CAUGHT = """\
import numpy as np
from goldfish.io import save_output, ContractViolation
try:
    save_output("emb", np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32))
except ContractViolation as exc:
    print("ignoring", exc)
"""
WRONG_SHAPE = """\
import numpy as np
from goldfish.io import save_output
save_output("emb", np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32))
"""


def test_low_entropy_output_is_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(tmp_path, monkeypatch)
    env.write([npy_stage("emb")], {"emb": NEAR_CONSTANT})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    wait_terminal(project, started.pipeline_run_id)
    doc = project.runs.get(started.stage_runs[0].stage_run_id)
    assert doc["state"] == "completed"
    assert [f["check"] for f in doc["svs"]["post"]["findings"]] == ["entropy_min"]
    details = doc["svs"]["post"]["hook"]["details"]
    assert details["fail"] is False and details["ml_outcome_hint"] == "unknown"  # acc was never logged
    assert [f["check"] for f in doc["svs"]["post"]["hook"]["findings"]] == ["primary_metric_missing"]
    assert doc["ml_outcome"] == "unknown"  # the hint never sets the outcome


def test_blocking_contracts_and_failing_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(tmp_path, monkeypatch, default_enforcement="blocking", default_policy="fail")
    env.write([npy_stage("caught"), npy_stage("uncaught"), npy_stage("constant")],
              {"caught": WRONG_SHAPE_CAUGHT, "uncaught": WRONG_SHAPE, "constant": CONSTANT})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    ids = stage_ids(started)
    wait_terminal(project, started.pipeline_run_id)
    caught, uncaught, constant = (project.runs.get(ids[s]) for s in ("caught", "uncaught", "constant"))
    assert (caught["state"], caught["cause"]) == ("failed", "contract") and "emb" in caught["error"]
    assert (uncaught["state"], uncaught["cause"]) == ("failed", "exit_nonzero")
    assert "ContractViolation" in uncaught["error"]
    assert (constant["state"], constant["cause"]) == ("failed", "contract")
    assert "default_policy is fail" in constant["error"] and "constant" in constant["error"]
    assert constant["infra_outcome"] == "crashed"


# --------------------------------------------------------------------------- failure patterns
FAILING = """\
from goldfish.io import get_output_path
from goldfish.metrics import log_metric


def normalise(items):
    scale = 1.0 / len(items)
    return [x * scale for x in items]


log_metric("acc", 0.5)
values = normalise([])
get_output_path("out").write_text(str(values))
"""


def test_failure_learned_approved_then_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(tmp_path, monkeypatch, auto_learn_failures=True)
    env.write([file_stage("prep")], {"prep": FAILING})
    project = env.project
    first = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    run_id = first.stage_runs[0].stage_run_id
    wait_terminal(project, first.pipeline_run_id)
    deadline = time.monotonic() + 15
    while not (project.runs.get(run_id)["svs"].get("failure_patterns")) and time.monotonic() < deadline:
        time.sleep(0.05)
    doc = project.runs.get(run_id)
    assert (doc["state"], doc["cause"], doc["svs"]["review"]["decision"]) == ("failed", "exit_nonzero", "approved")
    [learned] = doc["svs"]["failure_patterns"]
    pattern = project.patterns.get(learned["pattern_id"])
    assert pattern.status == "pending" and pattern.source_run_id == run_id and pattern.workspace == "exp"
    assert pattern.signature.startswith("ZeroDivisionError: float division by zero @ scale=1.0/len(items)")
    assert [p.id for p in run_svs_findings(project, run_id).failure_patterns] == [pattern.id]

    finalize(env, run_id)
    project.patterns.approve(pattern.id, "empty input reaches normalise(); check it before running")
    second = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    wait_terminal(project, second.pipeline_run_id)
    blocked = project.runs.get(second.stage_runs[0].stage_run_id)
    assert (blocked["state"], blocked["cause"]) == ("failed", "review_blocked")
    assert pattern.id in blocked["error"] and "modules/prep.py:6" in blocked["error"]


# --------------------------------------------------------------------------- dashboard
def test_dashboard_shows_each_finding_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from goldfish.runs.dashboard import dashboard

    env = env_with(tmp_path, monkeypatch)
    env.write([file_stage("typo"), npy_stage("emb")], {"typo": MISSPELLED, "emb": CONSTANT})
    project = env.project
    blocked = project.runs.run("w1", stages=["typo"], reason=REASON, results_spec=SPEC)  # stopped before launch
    started = project.runs.run("w1", stages=["emb"], reason=REASON, results_spec=SPEC)
    ids = {**stage_ids(blocked), **stage_ids(started)}
    wait_terminal(project, started.pipeline_run_id)
    now = time.time()  # both calls at one instant: ages ('0s', '1s') must not differ between them
    first = dashboard(project, now=now)
    seen = {(a.run_id, a.phase, a.check) for a in first.alerts.svs_findings}
    assert (ids["typo"], "review", "unknown_signal") in seen
    assert (ids["emb"], "post_run", "constant_output") in seen
    assert [f.run_id for f in first.alerts.failed_recent] == [ids["typo"]]
    assert first.alerts.failed_recent[0].cause == "review_blocked"
    assert first.pending_finalization["exp"].run_ids == [ids["emb"]]  # completed: awaits finalize_run
    assert [(m.slot, m.workspace) for m in first.mounted] == [("w1", "exp")]
    assert first.active == [] and "new SVS finding" in first.message
    second = dashboard(project, now=now)
    assert second.alerts.svs_findings == [] and second.alerts.failed_recent == first.alerts.failed_recent


def test_anthropic_review_through_the_runner_sees_the_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.svs_helpers import fake_anthropic

    with fake_anthropic() as fake:
        env = env_with(tmp_path, monkeypatch, agent_provider="anthropic", anthropic_base_url=fake.url,
                       anthropic_api_key="sk-test")
        clean = SAFE_BUT_FLAGGED.replace("if False:\n    print(never_defined_anywhere)", "")
        env.write([file_stage("flagged")], {"flagged": clean})
        project = env.project
        fake.reply_tool("submit_review", {"verdict": "approved", "findings": [], "summary": "fine"})
        first = project.runs.run("w1", reason=REASON, results_spec=SPEC)
        wait_terminal(project, first.pipeline_run_id)
        first_id = first.stage_runs[0].stage_run_id
        assert project.runs.get(first_id)["state"] == "completed"
        finalize(env, first_id)
        (env.slot / "modules" / "flagged.py").write_text(SAFE_BUT_FLAGGED.replace("0.7", "0.8"))
        fake.reply_tool("submit_review", {"verdict": "blocked", "summary": "metric is hard-coded", "findings": [
            {"severity": "error", "confidence": "high", "file": "modules/flagged.py", "line": 4,
             "message": "acc is a constant, not measured", "fix": "compute it on the validation split"}]})
        second = project.runs.run("w1", reason=REASON, results_spec=SPEC)
        wait_terminal(project, second.pipeline_run_id)
    doc = project.runs.get(second.stage_runs[0].stage_run_id)
    assert (doc["state"], doc["cause"]) == ("failed", "review_blocked")
    assert doc["svs"]["review"]["provider"] == "anthropic (claude-sonnet-4-6)"
    assert "acc is a constant" in doc["error"]
    prompt = fake.requests[-1]["body"]["messages"][0]["content"]
    assert f"diff against {first_id}" in prompt and '+log_metric("acc", 0.8)' in prompt
    rules_section = prompt.split("<rules_findings>", 1)[1].split("</rules_findings>", 1)[0]
    assert "undefined_name" in rules_section  # the rules ran first and Claude saw their findings


def test_post_run_review_sees_the_run_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every SVS phase sees config_override and inputs_override: the post-run AI review too."""
    from tests.svs_helpers import fake_anthropic

    with fake_anthropic() as fake:
        env = env_with(tmp_path, monkeypatch, agent_provider="anthropic", anthropic_base_url=fake.url,
                       anthropic_api_key="sk-test", ai_during_run_enabled=False)
        clean = SAFE_BUT_FLAGGED.replace("if False:\n    print(never_defined_anywhere)", "")
        env.write([file_stage("flagged")], {"flagged": clean})
        project = env.project
        fake.reply_tool("submit_review", {"verdict": "approved", "findings": [], "summary": "fine"})
        fake.reply_tool("submit_post_run_review", {"findings": [], "ml_outcome_hint": "partial", "summary": "ok"})
        started = project.runs.run("w1", reason=REASON, results_spec=SPEC, config_override={"lr": 0.05})
        wait_terminal(project, started.pipeline_run_id)
    post = [r["body"]["messages"][0]["content"] for r in fake.requests
            if "<run_command>" in r["body"]["messages"][0]["content"] and "finished" in r["body"]["messages"][0]["content"]]
    assert post, [r["body"]["messages"][0]["content"][:200] for r in fake.requests]
    command = post[-1].split("<run_command>", 1)[1].split("</run_command>", 1)[0]
    assert "config_override" in command and '"lr": 0.05' in command and "stages=['flagged']" in command
