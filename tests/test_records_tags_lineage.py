"""tag_record, save_results_spec and lineage over fixture rows in a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldfish.errors import Conflict, InvalidInput, NotFound
from goldfish.project import Project
from tests.records_fixture import SPEC, Rows, final, new_project, source_input, stage_input


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project(tmp_path)


@pytest.fixture
def rows(project: Project) -> Rows:
    r = Rows(project)
    r.workspace("lstm", versions=3)
    return r


def table(project: Project, name: str, ws: str = "lstm") -> dict[str, dict]:
    return {d["id"]: d for d in project.store.table(name, f"ws/{ws}").docs()}


# ----------------------------------------------------------------------------- tags


def test_tag_run_tags_record_and_version(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", version="v2")
    res = project.records.tag_record(rid, "best-v1")
    record_id = rows.get("lstm", rid)["record_id"]
    assert (res.record_id, res.tag, res.version, res.record_type) == (record_id, "best-v1", "v2", "run")
    assert "finalize_run" in res.message  # a best tag counts once finalized
    assert table(project, "tags")["best-v1"]["record_id"] == record_id
    assert table(project, "tags")["best-v1"]["version"] == "v2"
    assert table(project, "records")[record_id]["tags"] == ["best-v1"]
    assert table(project, "versions")["v2"]["tags"] == ["best-v1"]
    again = project.records.tag_record(record_id, "best-v1")  # idempotent
    assert "already" in again.message
    assert table(project, "records")[record_id]["tags"] == ["best-v1"]
    events, _ = project.store.read_events("audit")
    assert [e["details"]["tag"] for e in events if e["op"] == "tag_record"] == ["best-v1"]


def test_tag_checkpoint_tags_its_version(project: Project, rows: Rows) -> None:
    cp = rows.checkpoint("lstm", "v3")
    res = project.records.tag_record(cp, "checkpoint-1")
    assert res.record_type == "checkpoint" and res.version == "v3" and res.stage_run_id is None
    assert table(project, "versions")["v3"]["tags"] == ["checkpoint-1"]
    assert project.records.list_history("lstm", record_type="checkpoint", tagged="checkpoint-1").total == 1


def test_tags_are_unique_across_record_and_version_tags(project: Project, rows: Rows) -> None:
    rows.version_tag("lstm", "v1", "release")
    a, b = rows.run("lstm"), rows.run("lstm")
    project.records.tag_record(a, "good")
    before = rows.partition_bytes("lstm")
    with pytest.raises(Conflict, match="version v1") as err:
        project.records.tag_record(b, "release")
    assert "untag" in (err.value.fix or "")
    with pytest.raises(Conflict, match="already labels record"):
        project.records.tag_record(b, "good")
    assert rows.partition_bytes("lstm") == before


@pytest.mark.parametrize("tag", ["", "has space", "-lead", "trail-", "x" * 65, "v3", "ü", "a/b"])
def test_bad_tag_names_change_nothing(project: Project, rows: Rows, tag: str) -> None:
    rid = rows.run("lstm")
    before = rows.partition_bytes("lstm")
    with pytest.raises(InvalidInput) as err:
        project.records.tag_record(rid, tag)
    assert err.value.fix
    assert rows.partition_bytes("lstm") == before


def test_tag_refused_on_pruned_version(project: Project, rows: Rows) -> None:
    pruned = rows.version("lstm", pruned=True)
    rid = rows.run("lstm", version=pruned)
    with pytest.raises(Conflict, match="pruned") as err:
        project.records.tag_record(rid, "keep")
    assert "unprune" in (err.value.fix or "")


def test_tag_unknown_ref(project: Project, rows: Rows) -> None:
    with pytest.raises(NotFound):
        project.records.tag_record("stage-0badc0de", "x")


# ----------------------------------------------------------------------------- saved specs


def test_save_results_spec(project: Project, rows: Rows) -> None:
    res = project.records.save_results_spec("lstm", "train", SPEC)
    assert res.replaced is False and res.results_spec["primary_metric"] == "acc"
    assert project.records.saved_specs("lstm")["train"]["goal_value"] == 0.7
    again = project.records.save_results_spec("lstm", "train", {**SPEC, "goal_value": 0.8})
    assert again.replaced is True
    assert project.records.saved_specs("lstm")["train"]["goal_value"] == 0.8
    events, _ = project.store.read_events("audit")
    assert [e["details"]["replaced"] for e in events if e["op"] == "save_results_spec"] == [False, True]


def test_save_results_spec_lists_every_problem(project: Project, rows: Rows) -> None:
    before = rows.partition_bytes("lstm")
    with pytest.raises(InvalidInput) as err:
        project.records.save_results_spec("lstm", "train", {"primary_metric": "", "direction": "up",
                                                            "tolerance": -1, "extra": 1})
    text = str(err.value)
    for key in ("primary_metric", "direction", "tolerance", "extra", "min_value", "goal_value", "context"):
        assert key in text
    with pytest.raises(InvalidInput, match="stage name"):
        project.records.save_results_spec("lstm", "bad stage", SPEC)
    with pytest.raises(NotFound):
        project.records.save_results_spec("nope", "train", SPEC)
    assert rows.partition_bytes("lstm") == before


def test_save_results_spec_checks_the_mounted_pipeline(project: Project, rows: Rows) -> None:
    rows.mount("lstm", "w1")
    slot = project.slot_path("w1")
    (slot / "modules").mkdir(parents=True)
    (slot / "configs").mkdir()
    (slot / "pipeline.yaml").write_text(
        "name: p\nstages:\n  - name: train\n    outputs:\n      model: {type: file, schema: null}\n")
    with pytest.raises(NotFound, match='Did you mean "train"'):
        project.records.save_results_spec("w1", "trian", SPEC)
    assert project.records.save_results_spec("w1", "train", SPEC).workspace == "lstm"


# ----------------------------------------------------------------------------- lineage


def test_lineage_upstream_and_downstream(project: Project, rows: Rows) -> None:
    _, made = rows.pipeline_run("lstm", ["prep", "train", "eval"])
    prep, train, ev = made["prep"], made["train"], made["eval"]
    rows.set_inputs("lstm", prep, {"raw": source_input("sales_v1")})
    rows.set_inputs("lstm", train, {"features": stage_input(prep, "features"), "labels": stage_input(prep, "labels")})
    rows.set_inputs("lstm", ev, {"model": stage_input(train, "model"), "features": stage_input(prep, "features")})
    rows.set_inputs("lstm", ev, {"model": stage_input(train, "model"), "features": stage_input(prep, "features")})

    down = project.records.get_lineage(prep)
    assert [c.run_id for c in down.consumers or []] == [train, ev]
    first = (down.consumers or [])[0]
    assert first.signal_consumed == ["features", "labels"] and first.stage == "train"
    assert first.reason and first.reason.startswith("Train the baseline") and first.state == "pending"
    assert [c.run_id for c in project.records.get_lineage(ev).consumers or []] == []

    up = project.records.get_lineage(ev, direction="upstream")
    producers = {p.run_id: p for p in up.producers or []}
    assert set(producers) == {train, prep}
    assert producers[train].signal_produced == ["model"] and producers[train].stage == "train"
    assert producers[prep].inputs == ["features"]
    src = project.records.get_lineage(prep, "upstream").producers or []
    assert [(p.kind, p.source, p.run_id) for p in src] == [("source", "sales_v1", None)]
    assert [o.workspace for o in up.workspace_origin] == ["lstm"]


def test_cross_workspace_lineage_and_fork_origin(project: Project, rows: Rows) -> None:
    producer = rows.run("lstm")
    rows.workspace("lstm_v2", parent="lstm", parent_version="v3")
    rows.workspace("lstm_v3", parent="lstm_v2", parent_version="v1")
    _, made = rows.pipeline_run("lstm_v3", ["train"])
    rows.set_inputs("lstm_v3", made["train"], {"features": stage_input(producer, "features", kind="override_run")})
    down = project.records.get_lineage(producer)
    assert [(c.run_id, c.workspace) for c in down.consumers or []] == [(made["train"], "lstm_v3")]
    up = project.records.get_lineage(made["train"], "upstream")
    [p] = up.producers or []
    assert (p.run_id, p.workspace, p.kind) == (producer, "lstm", "override_run")
    assert [(o.workspace, o.parent_workspace, o.parent_version) for o in up.workspace_origin] == [
        ("lstm_v3", "lstm_v2", "v1"), ("lstm_v2", "lstm", "v3"), ("lstm", None, None)]
    prov = project.records.provenance(made["train"])
    assert prov["inputs"][0]["run_id"] == producer and prov["git_tag"] == "lstm_v3-v1"
    assert prov["workspace_origin"][1]["parent_workspace"] == "lstm"
    assert prov["results_spec"]["primary_metric"] == "acc" and prov["reason"]["description"]


def test_lineage_bad_input(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm")
    with pytest.raises(InvalidInput, match="direction"):
        project.records.get_lineage(rid, direction="sideways")
    with pytest.raises(InvalidInput, match="Invalid run id"):
        project.records.get_lineage("train")
    with pytest.raises(NotFound):
        project.records.get_lineage("stage-0badc0de")
    prun = rows.get("lstm", rid)["pipeline_run_id"]
    with pytest.raises(InvalidInput, match="pipeline run"):
        project.records.get_lineage(prun)


def test_finalize_then_tag_feeds_history(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.7)
    project.records.finalize_run(rid, final(0.7, "success"))
    project.records.tag_record(rid, "best")
    [rec] = project.records.list_history("lstm", tagged="best").records
    assert rec.primary_metric is not None and rec.primary_metric.source == "final"
