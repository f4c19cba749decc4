"""Audit rows, thoughts, get_audit_log and the STATE.md files."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldfish.errors import InvalidInput, NotFound
from goldfish.project import Project
from tests.test_workspaces import refused
from tests.ws_helpers import REASON, make_project, write


@pytest.fixture
def exp(tmp_path: Path) -> Project:
    project = make_project(
        tmp_path, config={"invariants: []": "invariants: [test split is fixed]", "max_recent_actions: 15": "max_recent_actions: 4"}
    )
    project.workspaces.create("exp", "beat the baseline accuracy", REASON)
    project.workspaces.mount("exp", "w1", REASON)
    write(project.slot_path("w1"), {"train.py": "x = 1\n"})
    project.workspaces.save_version("w1", "first version saved")
    return project


def test_audit_rows_have_every_field(exp: Project) -> None:
    events, _ = exp.store.read_events("audit")
    assert [e["op"] for e in events] == ["create_workspace", "mount", "save_version"]
    mount = events[1]
    assert {k: mount[k] for k in ("op", "source", "workspace", "slot", "reason")} == {
        "op": "mount", "source": "test", "workspace": "exp", "slot": "w1", "reason": REASON,
    }
    assert mount["ts"].endswith("Z") and mount["details"]["sha"]


def test_thoughts(exp: Project) -> None:
    res = exp.journal.log_thought("lr 0.1 diverges; try 0.01 next time", workspace="w1")
    assert res.logged and res.workspace == "exp" and res.run_id is None
    exp.journal.log_thought("a project-wide thought, no workspace")
    exp.journal.log_thought("second thought about the experiment", workspace="exp")
    got = exp.journal.thoughts("w1", limit=1)
    assert [t.thought for t in got.thoughts] == ["second thought about the experiment"]
    assert got.total == 2 and got.has_more
    assert "Thought (exp): lr 0.1 diverges; try 0.01 next time" in (exp.state_md.read_global() or "")
    with exp.store.transaction() as tx:
        tx.table("run_index").add({"workspace": "exp"}, doc_id="stage-0a0b0c0d")
    by_run = exp.journal.log_thought("the run looked healthy throughout", run_id="stage-0a0b0c0d")
    assert by_run.workspace == "exp" and by_run.run_id == "stage-0a0b0c0d"
    assert exp.journal.thoughts("exp").thoughts[0].run_id == "stage-0a0b0c0d"


def test_thought_errors_change_nothing(exp: Project) -> None:
    j = exp.journal
    exp.workspaces.create("other", "another workspace", REASON)
    with exp.store.transaction() as tx:
        tx.table("run_index").add({"workspace": "exp"}, doc_id="stage-0a0b0c0d")
    refused(exp, lambda: j.log_thought("too short"), InvalidInput, "too short")
    refused(exp, lambda: j.log_thought("a thought long enough", run_id="job-1"), InvalidInput, "stage run id")
    refused(exp, lambda: j.log_thought("a thought long enough", run_id="stage-ffffffff"), NotFound, "not found")
    refused(exp, lambda: j.log_thought("a thought long enough", workspace="other", run_id="stage-0a0b0c0d"),
            InvalidInput, "belongs to workspace 'exp'")
    refused(exp, lambda: j.log_thought("a thought long enough", workspace="nope"), NotFound, "does not exist")
    refused(exp, lambda: j.thoughts("w3"), NotFound, "empty")
    refused(exp, lambda: j.thoughts("exp", limit=0), InvalidInput, "limit")


def test_audit_log_pages_and_filters(exp: Project) -> None:
    exp.workspaces.create("other", "another workspace", REASON)
    log = exp.journal.audit_log(limit=2)
    assert [e.op for e in log.entries] == ["create_workspace", "save_version"] and log.total == 4 and log.has_more
    page2 = exp.journal.audit_log(limit=2, offset=2)
    assert [e.op for e in page2.entries] == ["mount", "create_workspace"] and not page2.has_more
    assert exp.journal.audit_log(workspace="w1").total == 3
    exp.workspaces.delete("other", REASON)
    assert [e.op for e in exp.journal.audit_log(workspace="other").entries] == ["delete_workspace", "create_workspace"]
    refused(exp, lambda: exp.journal.audit_log(limit=501), InvalidInput, "limit")
    refused(exp, lambda: exp.journal.audit_log(offset=-1), InvalidInput, "offset")
    refused(exp, lambda: exp.journal.audit_log(workspace="nope"), NotFound, "does not exist")


def test_global_state_md_sections(exp: Project) -> None:
    text = exp.state_md.read_global() or ""
    order = ["# proj", "## Active Goal", "## Workspaces", "## Configuration Invariants (DO NOT CHANGE)",
             "## Data Sources", "## Recent Actions"]
    positions = [text.index(h) for h in order]
    assert positions == sorted(positions)
    assert "- exp: beat the baseline accuracy" in text
    assert "- w1: exp (CLEAN) (last: v1," in text and "- w2: (empty)" in text
    assert "- test split is fixed" in text
    actions = text.split("## Recent Actions\n")[1].strip().splitlines()
    assert len(actions) == 3 and "save_version exp/w1: first version saved" in actions[0]
    for i in range(3):
        exp.journal.log_thought(f"thought number {i} about things")
    actions = (exp.state_md.read_global() or "").split("## Recent Actions\n")[1].strip().splitlines()
    assert len(actions) == 4  # state_md.max_recent_actions
    write(exp.slot_path("w1"), {"train.py": "x = 2\n"})
    exp.dirty.refresh("w1")
    exp.state_md.regenerate()
    assert "- w1: exp (DIRTY)" in (exp.state_md.read_global() or "")


def test_slot_state_md_and_run_sections(exp: Project) -> None:
    text = exp.state_md.read_slot("w1") or ""
    for heading in ("# Workspace: exp", "## Goal", "## Status", "## Lineage", "## Version History",
                    "## Recent Actions", "## Invariants (DO NOT CHANGE)"):
        assert heading in text
    assert "- v1 (save_version," in text and "Current version: v1 (1 visible)" in text
    # Runs and records (written by their own services) show up once present.
    with exp.store.transaction() as tx:
        tx.table("runs", "ws/exp").add({"stage": "train", "state": "completed", "created_at": "2026-01-01T00:00:00Z",
                                        "reason": {"description": "structured"}, "reason_summary": "first training run",
                                        "infra_outcome": "completed", "results_status": "auto"}, doc_id="stage-0a0b0c0d")
        tx.table("records", "ws/exp").add({"type": "run", "stage_run_id": "stage-0a0b0c0d"}, doc_id="01HXYZ0000000000000000000A")
        tx.table("tags", "ws/exp").add({"version": "v1", "record_id": "01HXYZ0000000000000000000A",
                                        "created_at": "2026-01-01T00:00:00Z"}, doc_id="best-v1")
    exp.state_md.regenerate()
    text = exp.state_md.read_global() or ""
    # The checkpoint record of save_version and the run record; a best tag counts once its run is
    # finalized (get_experiment_context's current_best).
    assert "## Experiment Summary\n- exp: 2 records, 1 awaiting finalization\n" in text
    assert "## Recent Runs\n- ✓ exp/train (completed) - 2026-01-01T00:00:00Z: first training run" in text
    with exp.store.transaction() as tx:
        tx.table("runs", "ws/exp").patch("stage-0a0b0c0d", {
            "results_status": "finalized", "ml_outcome": "success", "record_id": "01HXYZ0000000000000000000A",
            "results_final": {"primary_metric": "acc", "direction": "maximize", "value": 0.8}})
    exp.state_md.regenerate()
    text = exp.state_md.read_global() or ""
    assert ("## Experiment Summary\n- exp: 2 records, 0 awaiting finalization; best @best-v1 (acc: 0.8); "
            "recent: acc=0.8 (success)\n") in text
    assert exp.state_md.experiment_context("exp") == {
        "records": 2, "awaiting_finalization": 0, "best_tag": "best-v1", "best": "@best-v1 (acc: 0.8)",
        "recent_trend": ["acc=0.8 (success)"], "regression_alerts": 0}
