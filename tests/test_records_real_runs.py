"""Experiment memory over real runs: the real run() writing rows, the detached runner executing
real stage processes on the local backend, then finalize, gate, lineage, history, saved specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldfish.errors import Blocked, InvalidInput
from goldfish.project import Project
from goldfish.runs.inspect import inspect_run
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, file_stage, make_env, snapshot, wait_state, wait_terminal

CRASH = "raise SystemExit(3)\n"
SLEEP = "import time\ntime.sleep(30)\n"


def recorded(project: Project) -> tuple[set[str], ...]:
    """What a run() records: ids of runs, records, pipeline runs, versions (the runner of a finished
    run may still be tidying its own files, so whole-store digests are not used here)."""
    return tuple(set(project.store.table(t, "ws/exp").ids()) for t in ("runs", "records", "pipeline_runs",
                                                                        "versions"))


def final(value: float, outcome: str = "partial", notes: str = "Judged from the logged accuracy curve.") -> dict:
    return {"primary_metric": "acc", "direction": "maximize", "value": value, "dataset_split": "val",
            "ml_outcome": outcome, "notes": notes}


def test_gate_with_real_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("good"), file_stage("crash"), file_stage("slow"), file_stage("missing")],
              {"good": WRITE_OUTPUTS, "crash": CRASH, "slow": SLEEP})
    project = env.project
    records = project.records

    def run(stage: str, **kwargs: object) -> str:
        started = project.runs.run("w1", stages=[stage], reason=REASON, results_spec=SPEC, **kwargs)  # type: ignore[arg-type]
        return started.stage_runs[0].stage_run_id

    # blocked (preflight: modules/missing.py does not exist) and canceled runs never block
    blocked = run("missing")
    wait_terminal(project, project.runs.get(blocked)["pipeline_run_id"])
    assert project.runs.get(blocked)["infra_outcome"] == "blocked"
    slow = run("slow")
    wait_state(project, slow, {"running"})
    project.runs.cancel(slow, "wrong hyperparameters, stopping it")
    assert project.runs.get(slow)["infra_outcome"] == "canceled"
    assert records.list_unfinalized_runs("w1").count == 0

    # completed, crashed and preempted runs each block until finalized
    for stage, outcome in (("slow", "preempted"), ("crash", "crashed"), ("good", "completed")):
        env.configure(local={"simulate_preemption_after_seconds": 1 if outcome == "preempted" else None})
        rid = run(stage)
        wait_terminal(project, project.runs.get(rid)["pipeline_run_id"])
        assert project.runs.get(rid)["infra_outcome"] == outcome
        queue = records.list_unfinalized_runs("w1")
        assert [r.stage_run_id for r in queue.runs] == [rid]
        before = recorded(project)
        with pytest.raises(Blocked) as caught:
            run("good")
        assert rid in str(caught.value) and "finalize_run" in str(caught.value)
        assert recorded(project) == before
        entry = queue.runs[0]
        if outcome == "completed":
            assert entry.results_auto is not None and entry.results_auto["value"] == pytest.approx(0.9)
            assert '"value": 0.9' in entry.finalize_call
        res = records.finalize_run(rid, final(0.9 if outcome == "completed" else 0.0,
                                              "success" if outcome == "completed" else "miss"))
        assert res.unfinalized_remaining == []
    run("good", config_override={"sleep": 0})  # the gate is open again


def test_lineage_provenance_history_and_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("prep"), file_stage("train", inputs={"x": "prep"}),
               file_stage("eval", inputs={"model": "train", "data": "prep"})],
              {s: WRITE_OUTPUTS for s in ("prep", "train", "eval")}, configs={"train": {"value": 1, "lr": 0.1}})
    project = env.project
    first = project.runs.run("w1", reason=REASON, results_spec=SPEC, experiment_group="lineage")
    ids = {s.stage: s.stage_run_id for s in first.stage_runs}
    wait_terminal(project, first.pipeline_run_id)

    down = project.records.get_lineage(ids["prep"])
    assert [(c.run_id, c.signal_consumed) for c in down.consumers or []] == [(ids["train"], ["out"]),
                                                                          (ids["eval"], ["out"])]
    up = project.records.get_lineage(ids["eval"], "upstream")
    assert {(p.run_id, p.stage, tuple(p.inputs)) for p in up.producers or []} == {
        (ids["train"], "train", ("model",)), (ids["prep"], "prep", ("data",))}

    prov = inspect_run(project, ids["train"], include=["provenance"]).provenance or {}
    assert prov["version"] == first.version and prov["sha"] == first.sha and prov["git_tag"] == f"exp-{first.version}"
    assert prov["pipeline_run_id"] == first.pipeline_run_id and prov["results_spec"]["primary_metric"] == "acc"
    assert [i["run_id"] for i in prov["inputs"]] == [ids["prep"]] and prov["backend"] == "local"
    assert prov["config"]["lr"] == 0.1

    res = project.records.finalize_run(first.pipeline_run_id, final(0.9, "success"))
    # One result per pipeline run: eval (the last stage that logs acc) carries it; prep and train support it.
    assert first.result_stage == "eval" and [r.stage for r in res.runs] == ["eval"]
    assert {s.stage for s in res.supporting} == {"prep", "train"} and res.unfinalized_remaining == []
    project.records.tag_record(ids["eval"], "best")

    # train and eval again, eval with a threshold: prep resolves to the earlier prep run.
    second = project.runs.run("w1", stages=["train", "eval"], reason=REASON, results_spec=SPEC,
                              config_override={"train": {"lr": 0.2}, "eval": {"threshold": 0.5}})
    eval2 = {s.stage: s.stage_run_id for s in second.stage_runs}["eval"]
    train2 = {s.stage: s.stage_run_id for s in second.stage_runs}["train"]
    wait_terminal(project, second.pipeline_run_id)
    assert [c.run_id for c in project.records.get_lineage(ids["prep"]).consumers or []] == [
        ids["train"], ids["eval"], train2, eval2]
    done = project.records.finalize_run(second.pipeline_run_id, final(0.88))
    comp = done.comparison
    assert comp is not None and comp.vs_previous is not None and comp.vs_best is not None
    assert comp.vs_previous.stage_run_id == ids["eval"] and comp.vs_previous.delta == pytest.approx(-0.02)
    assert comp.vs_best.tag == "best" and comp.vs_best.delta == pytest.approx(-0.02)
    assert comp.config_diff == {"threshold": [None, 0.5]}

    history = project.records.list_history("w1")
    assert [r.stage_run_id for r in history.records] == [eval2, ids["eval"]]
    assert history.records[1].tags == ["best"] and history.records[1].experiment_group == "lineage"
    assert [s.stage for s in history.records[0].supporting or []] == ["train"]
    assert history.records[0].reason == REASON
    record_id = project.runs.get(eval2)["record_id"]
    assert project.store.table("record_index").get_doc(record_id)["workspace"] == "exp"
    assert project.records.inspect_record(record_id).stage_run_id == eval2
    ctx = project.records.get_experiment_context("w1")
    assert ctx.current_best is not None and ctx.current_best.stage_run_id == ids["eval"]
    assert [a.stage_run_id for a in ctx.regression_alerts] == [eval2]  # 0.02 worse, tolerance 0.01
    # finalize_run and tag_record regenerate STATE.md
    state = project.state_md.read_global() or ""
    assert "- exp: 2 records, 0 awaiting finalization; best @best (acc: 0.9)" in state
    assert "1 regression alert(s)" in state


def test_saved_results_spec_is_used_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("a"), file_stage("b")], {"a": WRITE_OUTPUTS, "b": WRITE_OUTPUTS})
    project = env.project
    saved = {**SPEC, "goal_value": 0.8, "context": "Saved ahead of the run for stage a."}
    project.records.save_results_spec("w1", "a", saved)
    project.records.save_results_spec("w1", "b", {**saved, "goal_value": 0.85})
    before = snapshot(env)
    with pytest.raises(InvalidInput, match="different saved results_specs"):
        project.runs.run("w1", reason=REASON)
    assert snapshot(env) == before
    started = project.runs.run("w1", stages=["a"], reason=REASON)
    rid = started.stage_runs[0].stage_run_id
    assert project.runs.get(rid)["results_spec"]["goal_value"] == 0.8
    assert set(project.records.saved_specs("exp")) == {"b"}
    wait_terminal(project, started.pipeline_run_id)
    project.records.finalize_run(rid, final(0.9, "success"))
    with pytest.raises(InvalidInput) as caught:
        project.runs.run("w1", stages=["a"], reason=REASON)
    assert "results_spec" in str(caught.value) and "save_results_spec" in str(caught.value)
