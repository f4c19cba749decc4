"""list_history, inspect_record, get_experiment_context and get_debug_info over fixture rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goldfish.errors import InvalidInput, NotFound
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


def ids(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.stage_run_id or r.record_id for r in result.records]


def test_history_fields_and_sparse_keys(project: Project, rows: Rows) -> None:
    a = rows.run("lstm", value=0.64)
    b = rows.run("lstm", value=0.7, experiment_group="sweep-lr")
    project.records.finalize_run(b, final(0.72, "success"))
    project.records.tag_record(b, "best")
    cp = rows.checkpoint("lstm", "v1", "Checkpoint before the sweep")
    res = project.records.list_history("lstm")
    assert res.workspace == "lstm" and res.total == 3 and res.has_more is False
    assert res.records[0].record_id == cp
    dumped = [r.model_dump() for r in res.records]
    checkpoint, tagged, plain = dumped
    assert checkpoint == {"record_id": cp, "type": "checkpoint", "version": "v1",
                          "created_at": checkpoint["created_at"], "age": checkpoint["age"],
                          "reason": "Checkpoint before the sweep"}
    assert tagged["stage_run_id"] == b and tagged["tags"] == ["best"] and tagged["experiment_group"] == "sweep-lr"
    assert tagged["primary_metric"] == {"name": "acc", "value": 0.72, "source": "final"}
    assert tagged["results_status"] == "finalized" and tagged["ml_outcome"] == "success"
    assert tagged["infra_outcome"] == "completed" and tagged["state"] == "completed"
    assert tagged["reason"].startswith("Train the baseline classifier | H:")
    assert plain["stage_run_id"] == a and "tags" not in plain and "experiment_group" not in plain
    assert plain["primary_metric"] == {"name": "acc", "value": 0.64, "source": "auto"}
    assert plain["age"].endswith("ago") and plain["stage"] == "train"


def test_history_filters(project: Project, rows: Rows) -> None:
    rows.version("lstm")
    rows.version("lstm", pruned=True)
    a = rows.run("lstm", value=0.61)
    b = rows.run("lstm", stage="eval", value=0.8, experiment_group="g1")
    c = rows.run("lstm", value=0.75, version="v2")
    d = rows.run("lstm", value=0.9, version="v3")  # pruned version
    e = rows.run("lstm", state="failed", cause="exit_nonzero", value=None)
    project.records.finalize_run(c, final(0.76, "success"))
    project.records.tag_record(a, "first-try")
    cp = rows.checkpoint("lstm", "v2")
    h = project.records.list_history
    assert set(ids(h("lstm"))) == {a, b, c, e, cp}
    assert set(ids(h("lstm", include_pruned=True))) == {a, b, c, d, e, cp}
    assert ids(h("lstm", record_type="checkpoint")) == [cp]
    assert set(ids(h("lstm", record_type="run"))) == {a, b, c, e}
    assert ids(h("lstm", stage="eval")) == [b]
    assert ids(h("lstm", experiment_group="g1")) == [b]
    assert ids(h("lstm", tagged=True)) == [a]
    assert ids(h("lstm", tagged="first-try")) == [a]
    assert ids(h("lstm", tagged="nope")) == []
    assert set(ids(h("lstm", tagged=False))) == {b, c, e, cp}
    assert ids(h("lstm", finalized_only=True)) == [c]
    assert set(ids(h("lstm", metric="acc", min_value=0.7))) == {b, c}
    assert ids(h("lstm", metric="loss")) == []
    assert ids(h("lstm", min_value=0.78, include_pruned=True)) == [d, b]


def test_history_sort_by_metric_puts_missing_values_last(project: Project, rows: Rows) -> None:
    low = rows.run("lstm", value=0.5)
    none = rows.run("lstm", state="failed", cause="exit_nonzero", value=None)
    high = rows.run("lstm", value=0.9)
    mid = rows.run("lstm", value=0.7)
    h = project.records.list_history
    assert ids(h("lstm", sort_by="metric")) == [high, mid, low, none]
    assert ids(h("lstm", sort_by="metric", desc=False)) == [low, mid, high, none]
    assert ids(h("lstm", desc=False)) == [low, none, high, mid]


def test_history_pagination(project: Project, rows: Rows) -> None:
    made = [rows.run("lstm", value=i / 10) for i in range(7)]
    newest_first = list(reversed(made))
    page1 = project.records.list_history("lstm", limit=3)
    page3 = project.records.list_history("lstm", limit=3, offset=6)
    assert ids(page1) == newest_first[:3] and page1.total == 7 and page1.has_more
    assert ids(page3) == newest_first[6:] and not page3.has_more
    assert project.records.list_history("lstm", offset=50).records == []


@pytest.mark.parametrize("kwargs, words", [
    ({"limit": 0}, ["limit"]), ({"limit": 201}, ["limit"]), ({"offset": -1}, ["offset"]),
    ({"sort_by": "value"}, ["sort_by"]), ({"record_type": "job"}, ["record_type"]),
    ({"min_value": "high"}, ["min_value"]), ({"limit": True, "sort_by": "x"}, ["limit", "sort_by"]),
])
def test_history_bad_arguments(project: Project, rows: Rows, kwargs: dict, words: list[str]) -> None:
    with pytest.raises(InvalidInput) as err:
        project.records.list_history("lstm", **kwargs)
    assert all(w in err.value.message for w in words)


@pytest.fixture
def many(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, list[dict]]:
    project = new_project(tmp_path_factory.mktemp("many"))
    rows = Rows(project)
    rows.workspace("ws")
    made = []
    values = [0.5, None, 0.7, 0.7, 0.61, 0.9, None, 0.3, 0.66, 0.8, 0.55, 0.72]
    for i, value in enumerate(values):
        stage = "train" if i % 3 else "eval"
        state, cause = ("failed", "exit_nonzero") if value is None else ("completed", None)
        rid = rows.run("ws", stage=stage, state=state, cause=cause, value=value)
        if i % 4 == 0:
            project.records.tag_record(rid, f"t{i}")
        made.append({"id": rid, "stage": stage, "value": value, "tagged": i % 4 == 0, "order": i})
    return project, made


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sort_by=st.sampled_from(["created", "metric"]), desc=st.booleans(), stage=st.sampled_from([None, "train", "eval"]),
    tagged=st.sampled_from([None, True, False]), limit=st.integers(1, 5), min_value=st.sampled_from([None, 0.6]),
)
def test_history_pages_match_a_full_sort(many: tuple[Project, list[dict]], sort_by: str, desc: bool,
                                         stage: str | None, tagged: bool | None, limit: int,
                                         min_value: float | None) -> None:
    """Paging through list_history gives exactly the filtered, sorted list (property)."""
    project, made = many
    expected = [m for m in made if (stage is None or m["stage"] == stage)
                and (tagged is None or m["tagged"] == tagged)
                and (min_value is None or (m["value"] is not None and m["value"] >= min_value))]
    if sort_by == "created":
        expected.sort(key=lambda m: m["order"], reverse=desc)
    else:
        with_value = sorted((m for m in expected if m["value"] is not None),
                            key=lambda m: (m["value"], m["order"]), reverse=desc)
        expected = with_value + sorted((m for m in expected if m["value"] is None),
                                       key=lambda m: m["order"], reverse=desc)
    got: list[str] = []
    offset = 0
    while True:
        page = project.records.list_history("ws", stage=stage, tagged=tagged, min_value=min_value, sort_by=sort_by,
                                            desc=desc, limit=limit, offset=offset)
        assert page.total == len(expected)
        got += ids(page)
        offset += limit
        if not page.has_more:
            break
    assert got == [m["id"] for m in expected]


# ----------------------------------------------------------------------------- inspect_record


def test_inspect_record_refs_and_sections(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.7, config={"lr": 0.1})
    project.records.finalize_run(rid, final(0.7, "success"))
    project.records.tag_record(rid, "best")
    record_id = rows.get("lstm", rid)["record_id"]
    by_run = project.records.inspect_record(rid)
    by_record = project.records.inspect_record(record_id)
    by_tag = project.records.inspect_record("@best", workspace="lstm")
    assert by_run == by_record
    assert by_tag.record_id == record_id
    assert by_run.results is not None and by_run.results.results_final is not None
    assert by_run.results.results_status == "finalized" and by_run.tags == ["best"]
    assert by_run.comparison is not None  # set at finalization
    assert by_run.spec is None and by_run.config is None and by_run.lineage is None
    full = project.records.inspect_record(rid, include=["spec", "config", "lineage"])
    assert full.spec == rows.get("lstm", rid)["results_spec"] and full.config == {"lr": 0.1}
    assert full.lineage == {"upstream": [], "downstream": []}
    assert full.results is None and full.tags is None


def test_inspect_record_errors(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm")
    with pytest.raises(InvalidInput, match="workspace"):
        project.records.inspect_record("@best")
    with pytest.raises(NotFound, match="no tag"):
        project.records.inspect_record("@best", workspace="lstm")
    with pytest.raises(InvalidInput, match="Did you mean \"results\""):
        project.records.inspect_record(rid, include=["result"])
    with pytest.raises(InvalidInput, match="pipeline run"):
        project.records.inspect_record(rows.get("lstm", rid)["pipeline_run_id"])
    with pytest.raises(NotFound):
        project.records.inspect_record("01HXYZ0000000000000000000Z")
    rows.workspace("other")
    with pytest.raises(InvalidInput, match="belongs to workspace lstm"):
        project.records.inspect_record(rid, workspace="other")


def test_inspect_record_without_index_entry(project: Project, rows: Rows) -> None:
    """Records written without a record_index entry are still found (one scan per workspace)."""
    _, made = rows.pipeline_run("lstm", ["train"], index_records=False)
    record_id = rows.get("lstm", made["train"])["record_id"]
    assert project.records.inspect_record(record_id).stage_run_id == made["train"]


def test_inspect_active_run_says_what_next(project: Project, rows: Rows) -> None:
    _, made = rows.pipeline_run("lstm", ["train"])
    detail = project.records.inspect_record(made["train"])
    assert detail.next_step is not None and "inspect_run" in detail.next_step
    rows.finish("lstm", made["train"])
    assert "finalize_run" in (project.records.inspect_record(made["train"]).next_step or "")


# ----------------------------------------------------------------------------- experiment context


def test_experiment_context(project: Project, rows: Rows) -> None:
    best = rows.run("lstm", value=0.8)
    project.records.finalize_run(best, final(0.8, "success"))
    project.records.tag_record(best, "best")
    # worse by 0.05: beyond its own tolerance 0.01 → alert
    worse = rows.run("lstm", value=0.75, spec={**SPEC, "tolerance": 0.01})
    project.records.finalize_run(worse, final(0.75))
    # worse by 0.05 but its spec tolerates 0.1 → no alert (the reference always used 0.01)
    tolerated = rows.run("lstm", value=0.75, spec={**SPEC, "tolerance": 0.1})
    project.records.finalize_run(tolerated, final(0.75))
    # another metric is never compared with the best
    loss_spec = {**SPEC, "primary_metric": "loss", "direction": "minimize", "min_value": 2.0, "goal_value": 1.0}
    loss = rows.run("lstm", value=5.0, spec=loss_spec)
    project.records.finalize_run(loss, final(5.0, "miss", primary_metric="loss", direction="minimize"))
    waiting = rows.run("lstm", value=0.7)
    ctx = project.records.get_experiment_context("lstm")
    assert ctx.current_best is not None
    assert (ctx.current_best.stage_run_id, ctx.current_best.tag, ctx.current_best.value) == (best, "best", 0.8)
    assert [w.stage_run_id for w in ctx.awaiting_finalization] == [waiting]
    assert [t.stage_run_id for t in ctx.recent_trend] == [loss, tolerated, worse, best]
    assert [t.tolerance for t in ctx.recent_trend] == [0.01, 0.1, 0.01, 0.01]
    assert [a.stage_run_id for a in ctx.regression_alerts] == [worse]
    alert = ctx.regression_alerts[0]
    assert alert.delta == pytest.approx(-0.05) and alert.tolerance == 0.01 and "@best" in alert.message
    assert "best @best" in ctx.message and "1 awaiting" in ctx.message


def test_experiment_context_trend_is_last_ten(project: Project, rows: Rows) -> None:
    made = []
    for i in range(12):
        rid = rows.run("lstm", value=0.6 + i / 100)
        project.records.finalize_run(rid, final(0.6 + i / 100))
        made.append(rid)
    ctx = project.records.get_experiment_context("lstm")
    assert [t.stage_run_id for t in ctx.recent_trend] == list(reversed(made))[:10]
    assert ctx.current_best is None and ctx.regression_alerts == []
    assert "tag_record" in ctx.message


# ----------------------------------------------------------------------------- debug info


def test_debug_info(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm")
    project.records.tag_record(rid, "best-v1")
    info = project.records.get_debug_info("@best-v1", workspace="lstm")
    run_dir = project.runs_dir / rid
    assert info.stage_run_id == rid and info.run_dir == str(run_dir)
    assert info.log_path == str(run_dir / "logs" / "stdout.log")
    assert info.metrics_path == str(run_dir / "outputs" / ".goldfish" / "metrics.jsonl")
    assert info.git_tag == "lstm-v1" and info.version == "v1" and info.backend == "local"
    assert info.objects["checkpoints"] == str(project.objects_dir / "checkpoints" / rid)
    assert info.exists["run_dir"] is False
    cp = rows.checkpoint("lstm", "v1")
    with pytest.raises(InvalidInput, match="only for run records"):
        project.records.get_debug_info(cp)


def test_state_summary(project: Project, rows: Rows) -> None:
    assert project.records.state_summary("lstm") is None
    best = rows.run("lstm", value=0.8)
    project.records.finalize_run(best, final(0.8, "success"))
    project.records.tag_record(best, "best-v1")
    rows.run("lstm", value=0.6)
    summary = project.records.state_summary("lstm")
    assert summary == {"records": 2, "awaiting_finalization": 1, "best_tag": "best-v1",
                       "best": "@best-v1 (acc: 0.8)", "recent_trend": ["acc=0.8 (success)"], "regression_alerts": 0}


def test_reads_follow_writes_of_another_process(project: Project, rows: Rows) -> None:
    """The cached view is keyed on the stored tables, so a write by another Project (its own Store,
    reading the files) is seen at once, and so is a write by this one."""
    rid = rows.run("lstm", value=0.6)
    other = Project.open(project.root, source="cli")
    assert other.records.list_history("lstm").records[0].results_status == "auto"
    assert other.records.list_unfinalized_runs("lstm").count == 1
    project.records.finalize_run(rid, final(0.6))
    project.records.tag_record(rid, "first")
    seen = other.records.list_history("lstm").records[0]
    assert seen.results_status == "finalized" and seen.tags == ["first"]
    assert other.records.list_unfinalized_runs("lstm").count == 0
    second = rows.run("lstm", value=0.7)
    assert [r.stage_run_id for r in project.records.list_history("lstm").records] == [second, rid]
