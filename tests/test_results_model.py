"""One result per pipeline run: history rows, trends and regressions (fixture rows), and the
schema-3 migration of a store written at schema 2 by the earlier code (tests/fixtures/store_schema2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from goldfish.project import Project
from goldfish.records.index import verify
from goldfish.store import STORE_SCHEMA_VERSION
from tests.records_fixture import Rows, final, new_project

FIXTURE = Path(__file__).parent / "fixtures" / "store_schema2"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project(tmp_path)


@pytest.fixture
def rows(project: Project) -> Rows:
    r = Rows(project)
    r.workspace("lstm")
    return r


def three_stage_run(rows: Rows, value: float | None = 0.66) -> tuple[str, dict[str, str]]:
    prun, ids = rows.pipeline_run("lstm", ["prep", "train", "eval"])
    rows.finish("lstm", ids["prep"])
    rows.finish("lstm", ids["train"])
    rows.finish("lstm", ids["eval"], value=value)
    return prun, ids


def test_history_has_one_row_per_pipeline_run_with_its_supporting_stages(project: Project, rows: Rows) -> None:
    prun, ids = three_stage_run(rows)
    project.records.finalize_run(ids["eval"], final(0.66))
    history = project.records.list_history("lstm")
    assert history.total == 1
    row = history.records[0]
    assert row.stage_run_id == ids["eval"] and row.pipeline_run_id == prun
    assert row.primary_metric is not None and row.primary_metric.value == 0.66
    assert [(s.stage, s.stage_run_id, s.results_status) for s in row.supporting or []] == [
        ("prep", ids["prep"], "finalized"), ("train", ids["train"], "finalized")]
    every = project.records.list_history("lstm", include_supporting=True)
    assert every.total == 3
    support = [r for r in every.records if r.role == "supporting"]
    assert len(support) == 2 and all(r.primary_metric is None for r in support)
    assert {r.result_record_id for r in support} == {row.record_id}
    detail = project.records.inspect_record(ids["prep"])
    assert detail.role == "supporting" and detail.result_record_id == row.record_id
    assert detail.primary_metric is None and detail.results is not None and detail.results.results_final is None


def test_trend_holds_only_result_values(project: Project, rows: Rows) -> None:
    _, ids = three_stage_run(rows, value=0.66)
    project.records.finalize_run(ids["eval"], final(0.66))
    crashed = rows.run("lstm", stage="eval", state="failed", cause="exit_nonzero", value=None)
    project.records.finalize_run(crashed, final(None, "miss", notes="It crashed before evaluating anything."))
    context = project.records.get_experiment_context("lstm")
    assert [p.stage_run_id for p in context.recent_trend] == [ids["eval"]]
    assert [p.value for p in context.recent_trend] == [0.66]


def test_regressions_are_later_results_worse_than_the_best(project: Project, rows: Rows) -> None:
    early = rows.run("lstm", value=0.55)
    project.records.finalize_run(early, final(0.55, "miss"))  # known before the best was chosen
    best = rows.run("lstm", value=0.72)
    project.records.finalize_run(best, final(0.72, "success"))
    project.records.tag_record(best, "best-v1")
    assert project.records.get_experiment_context("lstm").regression_alerts == []
    crashed = rows.run("lstm", state="failed", cause="exit_nonzero", value=None)
    project.records.finalize_run(crashed, final(None, "miss", notes="Diverged at step 10; no evaluation."))
    crashed_at_zero = rows.run("lstm", state="failed", cause="exit_nonzero", value=0.0)
    project.records.finalize_run(crashed_at_zero, final(0.0, "miss", notes="Crash recorded as zero, as before."))
    prun, ids = rows.pipeline_run("lstm", ["prep", "train"])
    rows.finish("lstm", ids["prep"])
    rows.finish("lstm", ids["train"], value=0.73)
    project.records.finalize_run(prun, final(0.73, "success"))  # better; its prep stage is no result
    assert project.records.get_experiment_context("lstm").regression_alerts == []
    worse = rows.run("lstm", value=0.61)
    project.records.finalize_run(worse, final(0.61, "partial"))
    alerts = project.records.get_experiment_context("lstm").regression_alerts
    assert [a.stage_run_id for a in alerts] == [worse]
    # Re-judging the early run now makes it a result finalized after the best: it counts.
    project.records.finalize_run(early, final(0.55, "miss", notes="Looked again at the early run today."))
    assert {a.stage_run_id for a in project.records.get_experiment_context("lstm").regression_alerts} == {
        worse, early}


def test_gate_counts_each_pipeline_run_once(project: Project, rows: Rows) -> None:
    _, ids = three_stage_run(rows)
    queue = project.records.list_unfinalized_runs("lstm")
    assert [r.stage_run_id for r in queue.runs] == [ids["eval"]]
    assert queue.runs[0].supporting == [ids["prep"], ids["train"]]
    _, blocked = rows.pipeline_run("lstm", ["prep", "train"])
    rows.finish("lstm", blocked["prep"])
    rows.finish("lstm", blocked["train"], state="failed", cause="review_blocked")
    assert [r.stage_run_id for r in project.records.list_unfinalized_runs("lstm").runs] == [ids["eval"]]


# ----------------------------------------------------------------------------- migration


def migrated_project(tmp_path: Path) -> Project:
    project = new_project(tmp_path)
    store_dir = project.store_dir
    shutil.rmtree(store_dir)
    shutil.copytree(FIXTURE, store_dir, ignore=shutil.ignore_patterns("README.md"))
    opened = Project.open(project.root)
    assert opened.store is not None  # the store (and its migration) opens on first use
    return opened


def test_schema_2_store_migrates_to_one_result_per_pipeline_run(tmp_path: Path) -> None:
    before = orjson.loads((FIXTURE / "STORE_VERSION.json").read_bytes())
    assert before["schema"] == 2
    project = migrated_project(tmp_path)
    stamp = orjson.loads((project.store_dir / "STORE_VERSION.json").read_bytes())
    assert stamp["schema"] == STORE_SCHEMA_VERSION == 4
    assert stamp["sharding"] == {**before["sharding"], "run_index": 4096, "record_index": 4096}
    assert verify(project.store, "digits_mlp") == []  # schema 4: the history index, built from the rows
    runs = {r["id"]: r for r in project.store.table("runs", "ws/digits_mlp").iter_raw()}
    pruns = {p["id"]: p for p in project.store.table("pipeline_runs", "ws/digits_mlp").iter_raw()}
    demo = next(p for p in pruns.values() if p["result_stage"] == "evaluate")
    assert demo["result_run_id"] == demo["stage_runs"]["evaluate"]
    for stage in ("preprocess", "train"):  # the copied value moved to results_history
        run = runs[demo["stage_runs"][stage]]
        assert run["role"] == "supporting" and run["results_final"] is None
        assert run["results_status"] == "finalized" and run["supporting"] == demo["id"]
        assert run["results_history"][-1]["results"]["value"] == pytest.approx(0.961, abs=1e-3)
    crash = next(p for p in pruns.values() if p["id"] != demo["id"])
    assert crash["result_stage"] == "train"  # the last stage that logged val/accuracy before the crash

    history = project.records.list_history("digits_mlp")
    assert [r.stage for r in history.records] == ["train", "evaluate"]
    assert all(r.role is None for r in history.records)
    assert [s.stage for s in history.records[1].supporting or []] == ["preprocess", "train"]
    context = project.records.get_experiment_context("digits_mlp")
    assert context.current_best is not None and context.current_best.tag == "best-v1"
    # The copies and the zero of preprocess are gone from the trend; the crash finalized at 0 stays a
    # result (the person's judgement is kept) but is no regression.
    assert [(p.stage, p.value) for p in context.recent_trend] == [
        ("train", 0.0), ("evaluate", pytest.approx(0.961, abs=1e-3))]
    assert context.regression_alerts == [] and context.awaiting_finalization == []
    typo = project.store.table("runs", "ws/digits_mlp_typo").docs()
    assert [r["role"] for r in typo] == ["result"]


def test_migration_runs_once_and_leaves_a_current_store_alone(tmp_path: Path) -> None:
    project = migrated_project(tmp_path)
    files = {p: p.read_bytes() for p in project.store_dir.rglob("*.json")}
    again = Project.open(project.root)
    assert again.records.list_history("digits_mlp").total == 2
    assert {p: p.read_bytes() for p in project.store_dir.rglob("*.json")} == files
