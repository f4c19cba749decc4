"""End to end on the local backend: real git, real runner and stage processes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from goldfish.errors import Blocked
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, file_stage, make_env, wait_state, wait_terminal


def _times(project, run_id: str) -> tuple[float, float]:
    doc = json.loads((project.runs_dir / run_id / "outputs" / ".goldfish" / "times.json").read_text())
    return doc["start"], doc["end"]


def test_diamond_runs_independent_stages_in_parallel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.configure(jobs={"max_parallel_stages": 2})
    env.write([file_stage("prep"), file_stage("left", inputs={"x": "prep"}), file_stage("right", inputs={"x": "prep"})],
              {n: WRITE_OUTPUTS for n in ("prep", "left", "right")},
              configs={"left": {"sleep": 1.0}, "right": {"sleep": 1.0}})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC, experiment_group="diamond")
    # Provenance exists before anything executes.
    assert started.version == "v1" and all(s.state == "pending" for s in started.stage_runs)
    ids = {s.stage: s.stage_run_id for s in started.stage_runs}
    for s in started.stage_runs:
        record = project.store.table("records", "ws/exp").get_doc(s.record_id)
        assert record["stage_run_id"] == s.stage_run_id and record["experiment_group"] == "diamond"
        assert project.runs.get(s.stage_run_id)["results_spec"]["primary_metric"] == "acc"
    done = wait_terminal(project, started.pipeline_run_id)
    assert done.status == "completed", done
    (l0, l1), (r0, r1), (_p0, p1) = (_times(project, ids[s]) for s in ("left", "right", "prep"))
    assert l0 < r1 and r0 < l1, "left and right did not overlap"
    assert p1 <= min(l0, r0), "a dependent started before its upstream finished"
    left = project.runs.get(ids["left"])
    assert left["inputs"]["x"]["run_id"] == ids["prep"] and left["inputs"]["x"]["kind"] == "stage"
    assert left["depends_on"] == ["prep"]
    assert left["metrics_summary"]["acc"]["count"] == 5 and left["metrics_summary"]["acc"]["trend"] == "up"
    # One result per pipeline run: the last stage that logs acc (right) carries it; left only supports it.
    assert done.result_stage == "right" and left["role"] == "supporting" and left["results_auto"] is None
    right = project.runs.get(ids["right"])
    assert right["results_auto"]["value"] == pytest.approx(0.9) and right["results_status"] == "auto"
    assert right["results_auto"]["ml_outcome_hint"] == "success"
    assert [h["to"] for h in left["history"]] == ["preparing", "launching", "running", "post_run", "completed"]
    out = Path(project.runs.get(ids["prep"])["outputs"]["out"]["location"])
    assert not out.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), "completed outputs stay writable"
    events, _ = project.store.read_events("transitions")
    assert {e["run_id"] for e in events} >= set(ids.values()) | {started.pipeline_run_id}
    assert not project.store.table("active_pipelines").ids()


def test_editing_the_slot_mid_run_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    code = WRITE_OUTPUTS.replace('"config": cfg.get("value")', '"config": cfg.get("value"), "code": "ORIGINAL"')
    env.write([file_stage("a"), file_stage("b", inputs={"x": "a"})], {"a": code, "b": code},
              configs={"a": {"sleep": 1.5, "value": 1}, "b": {"value": 1}})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    ids = {s.stage: s.stage_run_id for s in started.stage_runs}
    wait_state(project, ids["a"], {"running"})
    env.write([file_stage("a"), file_stage("b", inputs={"x": "a"})],
              {"a": code.replace("ORIGINAL", "EDITED"), "b": "raise SystemExit(3)\n"},
              configs={"a": {"value": 2}, "b": {"value": 2}})
    done = wait_terminal(project, started.pipeline_run_id)
    assert done.status == "completed", done
    for stage in ("a", "b"):
        written = json.loads(Path(project.runs.get(ids[stage])["outputs"]["out"]["location"]).read_text())
        assert written == {"stage": stage, "config": 1, "code": "ORIGINAL"}
        assert project.runs.get(ids[stage])["sha"] == started.sha


def test_failures_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.configure(jobs={"max_parallel_stages": 5}, svs={"default_enforcement": "blocking"})
    env.write(
        [file_stage("crash"), file_stage("lazy"), file_stage("slow"), file_stage("silent"),
         file_stage("after", inputs={"x": "crash"}), file_stage("contract")],
        {
            "contract": WRITE_OUTPUTS + (
                "(rt / 'svs_findings.json').write_text(json.dumps({'version': 1, 'findings': [{'source': 'contract',"
                " 'check': 'shape', 'severity': 'error', 'signal': 'out', 'message': 'out: shape (3,) != (4,)',"
                " 'value': None, 'threshold': None}]}))\n"
                "(rt / 'svs_stats.json').write_text(json.dumps({'version': 1, 'stats': {'out': {'mean': 1.0}}}))\n"),
            "crash": "import sys\nprint('about to fail')\nraise ValueError('bad batch size')\n",
            "lazy": "print('forgot my outputs')\n",
            "slow": "import time\ntime.sleep(30)\n",
            "silent": "import time\ntime.sleep(30)\n",
            "after": WRITE_OUTPUTS,
        },
        configs={"slow": {"compute": {"max_runtime_seconds": 1}},
                 "silent": {"compute": {"heartbeat_timeout_seconds": 1}}},
    )
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    ids = {s.stage: s.stage_run_id for s in started.stage_runs}
    done = wait_terminal(project, started.pipeline_run_id)
    assert done.status == "failed"
    crash, lazy, slow, silent, after = (project.runs.get(ids[s]) for s in ("crash", "lazy", "slow", "silent", "after"))
    assert (crash["state"], crash["cause"], crash["exit_code"]) == ("failed", "exit_nonzero", 1)
    assert "bad batch size" in crash["error"] and crash["infra_outcome"] == "crashed"
    assert (lazy["state"], lazy["cause"]) == ("failed", "missing_output")
    assert "'out'" in lazy["error"] and "outputs/out" in lazy["error"]
    assert (slow["state"], slow["cause"]) == ("terminated", "max_runtime_exceeded")
    assert "max_runtime_seconds = 1s" in slow["error"]
    assert (silent["state"], silent["cause"]) == ("terminated", "no_heartbeat")
    assert (after["state"], after["cause"]) == ("skipped", "upstream_failed") and ids["crash"] in after["error"]
    assert after["infra_outcome"] == "skipped" and not (project.runs_dir / ids["after"] / "app").exists()
    contract = project.runs.get(ids["contract"])
    assert (contract["state"], contract["cause"]) == ("failed", "contract") and "shape (3,)" in contract["error"]
    assert contract["svs"]["post"]["stats"] == {"out": {"mean": 1.0}} and contract["svs"]["findings_count"] == 1
    log = (project.runs_dir / ids["slow"] / "logs" / "stdout.log").read_text()
    assert "stopping the stage (max_runtime_exceeded)" in log


def test_gate_blocks_until_finalized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("a")], {"a": WRITE_OUTPUTS})
    project = env.project
    first = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    wait_terminal(project, first.pipeline_run_id)
    run_id = first.stage_runs[0].stage_run_id
    with pytest.raises(Blocked) as caught:
        project.runs.run("w1", reason=REASON, results_spec=SPEC)
    assert run_id in str(caught.value) and "finalize_run" in str(caught.value)
    dry = project.runs.run("w1", dry_run=True)
    assert dry.gate.blocked and dry.gate.unfinalized == [run_id] and not dry.valid
    with project.store.transaction() as tx:  # what finalize_run will do
        tx.table("runs", "ws/exp").patch(run_id, {"results_status": "finalized"})
    # A blocked (preflight) run and a canceled one leave the gate open.
    (env.slot / "modules" / "a.py").unlink()
    second = project.runs.run("w1", reason=REASON, results_spec=SPEC, stages=["a"])
    done = wait_terminal(project, second.pipeline_run_id)
    blocked = project.runs.get(done.stage_runs[0].stage_run_id)
    assert (blocked["state"], blocked["cause"], blocked["infra_outcome"]) == ("failed", "preflight", "blocked")
    assert "modules/a.py" in blocked["error"]
    assert project.store.table("records", "ws/exp").get_doc(blocked["record_id"]) is not None
    (env.slot / "modules" / "a.py").write_text("import time\ntime.sleep(30)\n")
    third = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    third_id = third.stage_runs[0].stage_run_id
    wait_state(project, third_id, {"running"})
    canceled = project.runs.cancel(third_id, "wrong hyperparameters, stopping")
    assert canceled.success and canceled.state == "canceled"
    fourth = project.runs.run("w1", reason=REASON, results_spec=SPEC, config_override={"sleep": 0})
    assert fourth.version == "v3" and fourth.reused_version is True
    project.runs.cancel(fourth.pipeline_run_id, "cleanup at the end of test")
