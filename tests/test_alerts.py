"""Alerts a person can act on (goldfish.runs.alerts): what is one, the window, acknowledging from
the TUI and what --fail-on-alerts counts. Runs are fixture rows driven through the real state
machine (so the transitions log is what the runner writes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Input

from goldfish.errors import InvalidInput
from goldfish.project import Project
from goldfish.runs.alerts import acknowledge, current
from goldfish.runs.state import transition
from tests.records_fixture import Rows, final, new_project
from tui.app import GoldfishApp
from tui.headless import run_headless
from tui.modals.prompt import PromptModal
from tui.screens.dashboard import DashboardScreen

PATH = {"failed": ["preparing", "launching", "running"], "blocked": ["preparing"]}
REASON = "Known typo in the loader; fixed in the next version."


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project(tmp_path)


@pytest.fixture
def rows(project: Project) -> Rows:
    r = Rows(project)
    r.workspace("lstm")
    r.mount("lstm", "w1")
    return r


def drive(project: Project, run_id: str, kind: str) -> None:
    """pending → … → failed through runs.state.transition, as the runner does."""
    with project.store.transaction() as tx:
        state = "pending"
        for to in PATH[kind]:
            transition(tx, run_id, to, expected=state, source="runner", workspace="lstm")
            state = to
        cause = "exit_nonzero" if kind == "failed" else "review_blocked"
        transition(tx, run_id, "failed", expected=state, cause=cause, error=f"{kind} on purpose",
                   source="runner", workspace="lstm")


def keys(project: Project, now: float | None = None) -> list[str]:
    return [a.key for a in current(project, now).alerts]


def test_failed_and_blocked_runs_are_alerts_within_the_window(project: Project, rows: Rows) -> None:
    _, crashed = rows.pipeline_run("lstm", ["train"])
    _, blocked = rows.pipeline_run("lstm", ["train"])
    drive(project, crashed["train"], "failed")
    drive(project, blocked["train"], "blocked")
    found = {a.key: a for a in current(project).alerts}
    assert set(found) == {f"failed:{crashed['train']}", f"blocked:{blocked['train']}"}
    assert found[f"failed:{crashed['train']}"].severity == "error"
    assert found[f"blocked:{blocked['train']}"].severity == "warning"
    assert keys(project, time.time() + 23 * 3600) != []
    assert keys(project, time.time() + 25 * 3600) == []  # older than jobs.alert_window_hours (24)


def test_acknowledging_is_audited_and_bad_input_changes_nothing(project: Project, rows: Rows) -> None:
    _, crashed = rows.pipeline_run("lstm", ["train"])
    drive(project, crashed["train"], "failed")
    key = f"failed:{crashed['train']}"
    before = project.store.table("alert_acks").count_raw()
    with pytest.raises(InvalidInput, match="too short"):
        acknowledge(project, [key], "ok")
    with pytest.raises(InvalidInput, match="Not a current alert") as err:
        acknowledge(project, ["failed:stage-00000000"], REASON)
    assert key in (err.value.fix or "") and project.store.table("alert_acks").count_raw() == before
    done = acknowledge(project, [key], REASON)
    assert done.keys == [key] and keys(project) == []
    assert current(project).acknowledged == 1
    [row] = [e for e in project.store.tail_events("audit", 3) if e["op"] == "acknowledge_alert"]
    assert row["reason"] == REASON and row["details"] == {"keys": [key]} and row["source"] == "test"


def test_regressions_only_from_results_finalized_after_the_best(project: Project, rows: Rows) -> None:
    before_best = rows.run("lstm", value=0.5)
    project.records.finalize_run(before_best, final(0.5, "miss"))
    best = rows.run("lstm", value=0.8)
    project.records.finalize_run(best, final(0.8, "success"))
    project.records.tag_record(best, "best-v1")
    prun, ids = rows.pipeline_run("lstm", ["prep", "train"])
    rows.finish("lstm", ids["prep"])
    rows.finish("lstm", ids["train"], value=0.795)
    project.records.finalize_run(prun, final(0.795, "success"))  # within tolerance; prep is supporting
    crash = rows.run("lstm", state="failed", cause="exit_nonzero", value=None)
    project.records.finalize_run(crash, final(None, "miss", notes="Crashed in the first epoch, no value."))
    assert not [k for k in keys(project) if k.startswith("regression:")]
    worse = rows.run("lstm", value=0.6)
    project.records.finalize_run(worse, final(0.6, "partial"))
    assert [k for k in keys(project) if k.startswith("regression:")] == [f"regression:{worse}"]


def test_fail_on_alerts_counts_only_unacknowledged_alerts_in_the_window(project: Project, rows: Rows) -> None:
    _, crashed = rows.pipeline_run("lstm", ["train"])
    drive(project, crashed["train"], "failed")
    assert run_headless(project, screenshot=None, text=False, fail_on_alerts=True) == 1
    later = time.time() + 25 * 3600
    assert run_headless(project, screenshot=None, text=False, fail_on_alerts=True, now=lambda: later) == 0
    acknowledge(project, [f"failed:{crashed['train']}"], REASON)
    assert run_headless(project, screenshot=None, text=False, fail_on_alerts=True) == 0


async def test_the_tui_acknowledges_an_alert_with_a_reason(project: Project, rows: Rows) -> None:
    _, blocked = rows.pipeline_run("lstm", ["train"])
    drive(project, blocked["train"], "blocked")
    key = f"blocked:{blocked['train']}"
    app = GoldfishApp(Project.open(project.root, source="tui"), live=False)
    async with app.run_test(size=(160, 44)) as pilot:
        await app.settle()
        dash = app.screen
        assert isinstance(dash, DashboardScreen) and dash.table("alerts").keys == [key]
        dash.table("alerts").focus()
        assert dash.table("alerts").select_key(key)
        await pilot.press("a")
        await app.settle()
        modal = app.screen
        assert isinstance(modal, PromptModal)
        modal.query_one(Input).value = "short"
        await pilot.pause()
        assert modal.query_one("#ok").disabled  # type: ignore[attr-defined]  # the service's reason rule, live
        modal.query_one(Input).value = REASON
        await pilot.pause()
        await pilot.click("#ok")
        await app.settle()
        assert app.screen is dash and dash.table("alerts").keys == [] and app.errors == []
    [row] = [e for e in project.store.tail_events("audit", 3) if e["op"] == "acknowledge_alert"]
    assert row["source"] == "tui" and row["reason"] == REASON
