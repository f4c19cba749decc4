"""finalize_run, comparisons and the finalization queue, over fixture rows in a real store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from goldfish.errors import Conflict, InvalidInput, NotFound
from goldfish.project import Project
from tests.records_fixture import SPEC, Rows, final, new_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project(tmp_path)


@pytest.fixture
def rows(project: Project) -> Rows:
    r = Rows(project)
    r.workspace("lstm")
    return r


def audit_ops(project: Project) -> list[dict]:
    events, _ = project.store.read_events("audit")
    return [e for e in events if e["op"] == "finalize_run"]


def test_finalize_by_stage_run_id(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.71)
    assert [r.stage_run_id for r in project.records.list_unfinalized_runs("lstm").runs] == [rid]
    res = project.records.finalize_run(rid, final(0.71, "success"))
    doc = rows.get("lstm", rid)
    assert doc["results_status"] == "finalized"
    assert doc["ml_outcome"] == "success"
    assert doc["results_final"]["value"] == 0.71
    assert doc["finalized_by"] == "test" and doc["finalized_at"]
    assert res.stage_run_id == rid and res.record_id == doc["record_id"]
    assert res.refinalized is False and res.previous is None
    assert res.unfinalized_remaining == []
    assert "clear" in res.message
    assert project.records.list_unfinalized_runs("lstm").count == 0
    [event] = audit_ops(project)
    assert event["details"]["stage_runs"] == [rid] and event["source"] == "test"


def test_finalize_by_record_id(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.64)
    record_id = rows.get("lstm", rid)["record_id"]
    res = project.records.finalize_run(record_id, final(0.64, "partial"))
    assert res.stage_run_id == rid
    assert rows.get("lstm", rid)["results_status"] == "finalized"
    # lower-case ULIDs are the same record
    again = project.records.finalize_run(record_id.lower(), final(0.64, "partial"))
    assert again.refinalized is True


def test_finalize_by_pipeline_run_id_finalizes_the_result_and_settles_supporting_stages(
        project: Project, rows: Rows) -> None:
    prun, ids = rows.pipeline_run("lstm", ["prep", "train", "eval"])
    rows.finish("lstm", ids["prep"], state="completed")
    rows.finish("lstm", ids["train"], state="failed", cause="exit_nonzero", value=None)
    rows.finish("lstm", ids["eval"], state="skipped", cause="upstream_failed", upstream_outcome="crashed")
    # The result stage (eval) was skipped because train crashed: the pipeline run holds the gate once.
    assert [r.stage_run_id for r in project.records.list_unfinalized_runs("lstm").runs] == [ids["eval"]]
    res = project.records.finalize_run(prun, final(None, "miss", notes="Training crashed with a shape error."))
    assert res.pipeline_run_id == prun
    assert [r.stage_run_id for r in res.runs] == [ids["eval"]] and res.runs[0].value is None
    assert res.record_id == rows.get("lstm", ids["eval"])["record_id"]
    assert sorted(s.stage_run_id for s in res.supporting) == sorted([ids["prep"], ids["train"]])
    assert all(s.supporting == prun for s in res.supporting)
    for stage in ("prep", "train"):
        doc = rows.get("lstm", ids[stage])
        assert doc["results_status"] == "finalized" and doc["results_final"] is None
        assert doc["supporting"] == prun and doc["result_run_id"] == ids["eval"]
    assert rows.get("lstm", ids["eval"])["results_final"]["value"] is None
    assert res.unfinalized_remaining == [] and "no value" in res.message


def test_a_supporting_stage_is_finalized_through_its_result(project: Project, rows: Rows) -> None:
    _, ids = rows.pipeline_run("lstm", ["prep", "train"])
    rows.finish("lstm", ids["prep"], state="completed")
    rows.finish("lstm", ids["train"], state="completed", value=0.66)
    before = rows.partition_bytes("lstm")
    with pytest.raises(InvalidInput, match="supporting stage") as err:
        project.records.finalize_run(ids["prep"], final(0.66))
    assert ids["train"] in (err.value.fix or "") and rows.partition_bytes("lstm") == before
    res = project.records.finalize_run(ids["train"], final(0.66))
    assert [s.stage_run_id for s in res.supporting] == [ids["prep"]]
    assert rows.get("lstm", ids["prep"])["results_status"] == "finalized"


def test_null_value_only_for_a_run_that_produced_none(project: Project, rows: Rows) -> None:
    done = rows.run("lstm", value=0.66)
    before = rows.partition_bytes("lstm")
    with pytest.raises(InvalidInput, match="null") as err:
        project.records.finalize_run(done, final(None, "unknown"))
    assert "0.66" in err.value.message and rows.partition_bytes("lstm") == before
    never_logged = rows.run("lstm", value=None)  # completed, but never logged the metric
    project.records.finalize_run(never_logged, final(None, "unknown"))
    preempted = rows.run("lstm", state="terminated", cause="preempted", value=None)
    assert project.records.finalize_run(preempted, final(None, "miss")).runs[0].value is None


def test_pipeline_run_with_nothing_to_judge_is_refused(project: Project, rows: Rows) -> None:
    prun, ids = rows.pipeline_run("lstm", ["train"])
    rows.finish("lstm", ids["train"], state="canceled", cause="manual")
    before = rows.partition_bytes("lstm")
    with pytest.raises(Conflict, match="canceled, blocked or skipped") as err:
        project.records.finalize_run(prun, final(0.5))
    assert "by its id" in (err.value.fix or "")
    assert rows.partition_bytes("lstm") == before


@pytest.mark.parametrize("state", ["pending", "preparing", "launching", "running", "post_run"])
def test_finalize_refused_while_active(project: Project, rows: Rows, state: str) -> None:
    _, ids = rows.pipeline_run("lstm", ["train"])
    rid = ids["train"]
    with project.store.transaction() as tx:
        tx.table("runs", "ws/lstm").patch(rid, {"state": state})
    before = rows.partition_bytes("lstm")
    with pytest.raises(Conflict) as err:
        project.records.finalize_run(rid, final(0.7))
    assert rid in err.value.message and state in err.value.message
    assert f"inspect_run('{rid}')" in (err.value.fix or "") and "cancel(" in (err.value.fix or "")
    assert rows.partition_bytes("lstm") == before
    assert audit_ops(project) == []


def test_refinalize_keeps_history(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.66)
    project.records.finalize_run(rid, final(0.66, "partial"))
    first = rows.get("lstm", rid)
    res = project.records.finalize_run(rid, final(0.69, "success", notes="Re-evaluated on the full val set."))
    doc = rows.get("lstm", rid)
    assert res.refinalized is True
    assert res.previous is not None and res.previous.results["value"] == 0.66
    assert res.previous.ml_outcome == "partial" and res.previous.finalized_at == first["finalized_at"]
    assert len(doc["results_history"]) == 1
    assert doc["results_history"][0]["results"]["value"] == 0.66
    assert doc["results_final"]["value"] == 0.69 and doc["ml_outcome"] == "success"
    assert "results_history" in res.message
    project.records.finalize_run(rid, final(0.7, "success"))
    assert [h["results"]["value"] for h in rows.get("lstm", rid)["results_history"]] == [0.66, 0.69]


def test_bad_results_list_every_problem_and_change_nothing(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm")
    before = rows.partition_bytes("lstm")
    with pytest.raises(InvalidInput) as err:
        project.records.finalize_run(rid, {"primary_metric": "acc", "direction": "up", "value": True,
                                           "dataset_split": "val", "ml_outcome": "great", "notes": "short",
                                           "tolerance": 0.1})
    text = str(err.value)
    for key in ("direction", "value", "ml_outcome", "notes", "tolerance"):
        assert key in text
    assert rows.partition_bytes("lstm") == before


def test_results_must_match_the_spec(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm")
    before = rows.partition_bytes("lstm")
    with pytest.raises(InvalidInput) as err:
        project.records.finalize_run(rid, final(0.3, primary_metric="loss", direction="minimize"))
    msg = err.value.message
    assert "'loss'" in msg and "'acc'" in msg and "'minimize'" in msg and "'maximize'" in msg
    assert "primary_metric='acc'" in (err.value.fix or "")
    assert rows.partition_bytes("lstm") == before


def test_unknown_refs(project: Project, rows: Rows) -> None:
    with pytest.raises(NotFound, match="stage-00000000"):
        project.records.finalize_run("stage-00000000", final(0.7))
    with pytest.raises(InvalidInput, match="Invalid ref"):
        project.records.finalize_run("nonsense", final(0.7))
    cp = rows.checkpoint("lstm", "v1")
    with pytest.raises(InvalidInput, match="checkpoint"):
        project.records.finalize_run(cp, final(0.7))


def test_outcome_and_value_warnings(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.55)
    res = project.records.finalize_run(rid, final(0.56, "success", dataset_split="test"))
    assert res.outcome_hint == "miss"
    joined = " ".join(res.warnings)
    assert "suggest 'miss'" in joined and "'test'" in joined and "0.55" in joined


# ----------------------------------------------------------------------------- comparison


def test_vs_previous_and_config_diff(project: Project, rows: Rows) -> None:
    long = "x" * 80
    first = rows.run("lstm", value=0.62, config={"lr": 0.001, "model": {"hidden": 64, "layers": 2}, "note": long})
    project.records.finalize_run(first, final(0.62))
    crashed = rows.run("lstm", stage="eval", state="failed", cause="exit_nonzero", value=None)
    project.records.finalize_run(crashed, final(None, "miss"))  # no value: nothing to compare with
    second = rows.run("lstm", value=0.66, config={"lr": 0.01, "model": {"hidden": 64, "layers": 3}, "note": long + "y",
                                                  "dropout": 0.1})
    res = project.records.finalize_run(second, final(0.66))
    comp = res.comparison
    assert comp is not None and comp.vs_previous is not None
    assert comp.vs_previous.stage_run_id == first
    assert comp.vs_previous.value == 0.62
    assert comp.vs_previous.delta == pytest.approx(0.04)
    diff = comp.config_diff
    assert diff["lr"] == [0.001, 0.01]
    assert diff["model.layers"] == [2, 3]
    assert diff["dropout"] == [None, 0.1]
    assert "model.hidden" not in diff
    assert all(len(v) <= 50 for v in diff["note"])
    assert set(diff) == {"lr", "model.layers", "dropout", "note"}
    stored = rows.get("lstm", second)["comparison"]
    assert stored["vs_previous"]["stage_run_id"] == first


def test_minimize_delta_positive_means_better(project: Project, rows: Rows) -> None:
    spec = {**SPEC, "primary_metric": "loss", "direction": "minimize", "min_value": 1.0, "goal_value": 0.5}
    a = rows.run("lstm", value=0.9, spec=spec)
    loss = {"primary_metric": "loss", "direction": "minimize"}
    project.records.finalize_run(a, final(0.9, **loss))
    b = rows.run("lstm", value=0.7, spec=spec)
    res = project.records.finalize_run(b, final(0.7, **loss))
    assert res.comparison is not None and res.comparison.vs_previous is not None
    assert res.comparison.vs_previous.delta == pytest.approx(0.2)


def test_vs_best_via_best_tag(project: Project, rows: Rows) -> None:
    best = rows.run("lstm", value=0.7)
    project.records.finalize_run(best, final(0.7, "success"))
    project.records.tag_record(best, "best-v1")
    unjudged = rows.run("lstm", value=0.9)
    project.records.tag_record(unjudged, "best-v2")  # newer but not finalized: not the current best
    project.records.finalize_run(rows.run("lstm", value=0.2, stage="other"), final(0.2, "miss"))
    latest = rows.run("lstm", value=0.65)
    res = project.records.finalize_run(latest, final(0.65))
    vs = res.comparison.vs_best if res.comparison else None
    assert vs is not None and vs.via == "best_tag" and vs.tag == "best-v1" and vs.stage_run_id == best
    assert vs.value == 0.7 and vs.delta == pytest.approx(-0.05)


@pytest.mark.parametrize("how", ["tag", "record", "stage"])
def test_vs_best_via_baseline_run(project: Project, rows: Rows, how: str) -> None:
    base = rows.run("lstm", value=0.6)
    project.records.finalize_run(base, final(0.6))
    project.records.tag_record(base, "baseline")
    better = rows.run("lstm", value=0.8)
    project.records.finalize_run(better, final(0.8, "success"))
    project.records.tag_record(better, "best")  # baseline_run wins over the best tag
    ref = {"tag": "@baseline", "record": rows.get("lstm", base)["record_id"], "stage": base}[how]
    rid = rows.run("lstm", value=0.65, spec={**SPEC, "baseline_run": ref})
    res = project.records.finalize_run(rid, final(0.65))
    vs = res.comparison.vs_best if res.comparison else None
    assert vs is not None and vs.via == "baseline_run" and vs.stage_run_id == base
    assert vs.delta == pytest.approx(0.05)
    assert vs.tag == ("baseline" if how == "tag" else None)


def test_missing_baseline_is_a_warning(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.65, spec={**SPEC, "baseline_run": "@gone"})
    res = project.records.finalize_run(rid, final(0.65))
    assert res.comparison is not None and res.comparison.vs_best is None
    assert any("@gone" in w for w in res.warnings)


# ----------------------------------------------------------------------------- gate


def test_gate_list_contents(project: Project, rows: Rows) -> None:
    completed = rows.run("lstm", value=0.66)
    crashed = rows.run("lstm", state="failed", cause="exit_nonzero", value=None)
    preempted = rows.run("lstm", state="terminated", cause="preempted", value=0.5)
    timeout = rows.run("lstm", state="terminated", cause="timeout", value=0.4)
    rows.run("lstm", state="canceled", cause="manual")
    rows.run("lstm", state="failed", cause="preflight")
    rows.run("lstm", state="failed", cause="review_blocked")
    rows.run("lstm", state="skipped", cause="upstream_failed")
    _, active = rows.pipeline_run("lstm", ["train"])
    queue = project.records.list_unfinalized_runs("lstm")
    assert [r.stage_run_id for r in queue.runs] == [completed, crashed, preempted, timeout]
    assert active["train"] not in {r.stage_run_id for r in queue.runs}
    assert [r.infra_outcome for r in queue.runs] == ["completed", "crashed", "preempted", "crashed"]
    first = queue.runs[0]
    assert first.record_id == rows.get("lstm", completed)["record_id"]
    assert first.results_auto is not None and first.results_auto["value"] == 0.66
    assert first.age.endswith("ago") and first.state == "completed" and first.stage == "train"
    assert queue.count == 4 and completed in queue.message
    # The finalize_call is the call to make: fill in the notes and it works.
    for entry in queue.runs:
        call = entry.finalize_call.replace("<what happened and why this outcome (at least 15 characters)>",
                                           "Reviewed the curves and the logs.")
        m = re.fullmatch(r'finalize_run\("(stage-[0-9a-f]{8})", (\{.*\})\)', call)
        assert m is not None and m.group(1) == entry.stage_run_id
        body = json.loads(m.group(2))
        if not isinstance(body["value"], float):  # the crash logged nothing: null, never an invented number
            assert body["value"] is None and body["ml_outcome"] == "miss"
        project.records.finalize_run(m.group(1), body)
    assert project.records.list_unfinalized_runs("lstm").count == 0


def test_gate_by_slot_and_unknown_workspace(project: Project, rows: Rows) -> None:
    rows.mount("lstm", "w1")
    rid = rows.run("lstm")
    assert [r.stage_run_id for r in project.records.list_unfinalized_runs("w1").runs] == [rid]
    with pytest.raises(NotFound, match="Did you mean"):
        project.records.list_unfinalized_runs("lstn")
    with pytest.raises(NotFound, match="empty"):
        project.records.list_unfinalized_runs("w2")
    with pytest.raises(InvalidInput):
        project.records.list_unfinalized_runs("bad name!")
