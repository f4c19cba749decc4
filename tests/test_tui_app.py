"""Pilot tests of the dashboard against a real project with runs in every state."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from textual.widgets import Button, Input, Log, Static

from tests.run_helpers import wait_state
from tests.tui_helpers import TuiFixture, module_fixture, third_workspace, until
from tui.app import GoldfishApp
from tui.modals.confirm_cancel import ConfirmCancel
from tui.modals.finalize_form import FinalizeForm
from tui.screens.compare import CompareScreen
from tui.screens.dashboard import DashboardScreen
from tui.screens.history import HistoryScreen
from tui.screens.patterns import PatternsScreen
from tui.screens.run_detail import RunDetailScreen
from tui.screens.sources import SourcesScreen
from tui.viewmodels import HistoryQuery
from tui.widgets.keyed_table import KeyedTable

SIZE = (200, 60)


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TuiFixture]:
    yield from module_fixture(tmp_path_factory)


def app_for(fx: TuiFixture, **kw: object) -> GoldfishApp:
    return GoldfishApp(fx.open("tui"), live=False, **kw)  # type: ignore[arg-type]


async def test_dashboard_shows_runs_in_every_state(fx: TuiFixture) -> None:
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        screen = app.screen
        assert isinstance(screen, DashboardScreen) and screen.view is not None
        ids = fx.ids
        assert screen.table("active").keys == [ids["sleeper"]]
        assert set(screen.table("queue").keys) == {ids["train"], ids["crash"]}
        alerts = screen.table("alerts").keys
        assert f"failed:{ids['crash']}" in alerts and f"blocked:{ids['blocked']}" in alerts
        assert f"failed:{ids['victim']}" not in alerts  # canceled is not a failure
        assert any(f.check == "loss_plateau" and f.run_id == ids["sleeper"] for f in screen.view.findings)
        assert [s.workspace for s in screen.view.slots] == ["exp", "other", None]
        assert {e.op for e in screen.view.audit} >= {"run", "cancel"}
        sleeper = screen.view.active[0]
        assert sleeper.metric_name == "acc" and sleeper.metric_value is not None and len(sleeper.spark) >= 3
        assert app.errors == []
        # A second refresh with nothing changed in the queue touches no queue row.
        screen.reload()
        await app.settle()
        assert not screen.table("queue").last_sync.added and not screen.table("queue").last_sync.removed
        await pilot.press("q")


async def test_run_detail_log_metrics_timeline_and_back(fx: TuiFixture) -> None:
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        dash.table("active").focus()
        await pilot.press("enter")
        await app.settle()
        detail = app.screen
        assert isinstance(detail, RunDetailScreen) and detail.run_id == fx.ids["sleeper"]
        assert detail.view is not None and detail.view.state == "running"
        log = detail.query_one("#log", Log)
        assert any(line.startswith("step ") for line in log.lines)
        first_cursor = detail.cursor
        assert first_cursor
        # The log is read incrementally: the next read starts at the cursor and only appends.
        lines_before = detail.log_lines
        await until(pilot, lambda: detail.log_lines > lines_before)
        assert detail.cursor > first_cursor
        assert [t.to_state for t in detail.view.transitions] == ["preparing", "launching", "running"]
        assert detail.query_one("#metrics", KeyedTable).keys == ["acc"]
        assert detail.view.metrics[0].name == "acc" and detail.view.review == "approved"
        for tab in ("tab-metrics", "tab-timeline", "tab-outputs", "tab-lineage", "tab-review"):
            detail.query_one("#tabs").active = tab  # type: ignore[attr-defined]
            await pilot.pause()
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        # From the queue: the crashed run shows its error and the failure transition.
        dash.table("queue").focus()
        dash.table("queue").select_key(fx.ids["crash"])
        await pilot.press("enter")
        await app.settle()
        crash = app.screen
        assert isinstance(crash, RunDetailScreen) and crash.view is not None
        assert crash.view.state == "failed" and "CUDA out of memory" in (crash.view.error or "")
        assert crash.view.transitions[-1].cause == "exit_nonzero"
        assert any("epoch 2" in line for line in crash.query_one("#log", Log).lines)
        assert app.errors == []


async def test_history_sort_filter_page_and_compare(fx: TuiFixture) -> None:
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        dash.table("slots").focus()
        await pilot.press("h")
        await app.settle()
        hist = app.screen
        assert isinstance(hist, HistoryScreen) and hist.page is not None
        assert hist.query_state.workspace == "exp" and hist.page.total == 1  # one result per pipeline run
        assert [(r.stage, r.supporting) for r in hist.page.rows] == [("train", 3)]  # shown as "train +3"
        hist.query_one("#filter", Input).value = "supporting"
        await app.settle()
        assert hist.query_state.include_supporting and hist.page.total == 4
        assert {r.stage for r in hist.page.rows} == {"train", "sleeper", "blocked", "victim"}
        await pilot.press("o")  # sort by metric
        await app.settle()
        assert hist.query_state.sort_by == "metric"
        assert hist.page.rows[0].stage == "train"  # the best acc first; runs without a value last
        await pilot.press("slash")
        hist.query_one("#filter", Input).value = "supporting stage=victim"
        await app.settle()
        assert [r.stage for r in hist.page.rows] == ["victim"] and hist.query_state.stage == "victim"
        # A filter list_history would not understand is named, with every problem; the last good one stays.
        box = hist.query_one("#filter", Input)
        box.value = "stgae=train min=high"
        await app.settle()
        error = str(hist.query_one("#filter-error", Static).render())
        assert "'stgae'" in error and "stage" in error and "min must be a number" in error
        assert hist.query_state.stage == "victim" and [r.stage for r in hist.page.rows] == ["victim"]
        await pilot.press("escape")  # leaves the filter input
        box.value = ""
        await app.settle()
        assert hist.page.total == 1
        assert hist.query_state == HistoryQuery(workspace="exp", sort_by="metric")  # every filter back to default
        await pilot.press("F")  # finalized only: edits the filter line, which list_history applies
        await app.settle()
        assert box.value == "finalized" and hist.query_state.finalized_only and hist.page.total == 0
        await pilot.press("F")
        await app.settle()
        assert box.value == "" and hist.page.total == 1
        box.value = "supporting"  # compare two stages of the same pipeline run
        await app.settle()
        assert hist.page.total == 4
        table = hist.table
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("space")
        table.move_cursor(row=1)
        await pilot.press("space")
        assert len(hist.marked) == 2
        await pilot.press("m")
        await app.settle()
        cmp = app.screen
        assert isinstance(cmp, CompareScreen) and cmp.view is not None
        assert cmp.view.code_summary.startswith("Same version v1")
        assert dict((f, (a, b)) for f, a, b in cmp.view.outcomes)["state"][0] in ("completed", "running", "failed",
                                                                                  "canceled")
        await pilot.press("escape")
        await pilot.press("w")  # next workspace
        await app.settle()
        assert hist.query_state.workspace == "other" and hist.page.total == 1
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        assert app.errors == []


async def test_sources_and_patterns_screens_open(fx: TuiFixture) -> None:
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        await pilot.press("s")
        await app.settle()
        sources = app.screen
        assert isinstance(sources, SourcesScreen)
        assert sources.query_one("#sources", KeyedTable).keys == ["features"]
        assert sources.sources[0].format == "npy" and sources.sources[0].extra["lineage"] == "external"
        await pilot.press("escape")
        await pilot.press("p")
        await app.settle()
        assert isinstance(app.screen, PatternsScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        assert app.errors == []


async def test_finalize_form_validates_live_and_lists_every_error(fx: TuiFixture) -> None:
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        dash.table("queue").focus()
        dash.table("queue").select_key(fx.ids["train"])
        await pilot.press("f")
        await app.settle()
        form = app.screen
        assert isinstance(form, FinalizeForm)
        # Defaults from the results_spec and the automatic result: only the notes are missing.
        assert [e["field"] for e in form.errors] == ["notes"]
        assert form.results()["value"] == pytest.approx(0.9) and form.results()["ml_outcome"] == "success"
        form.query_one("#value", Input).value = "not a number"
        form.query_one("#step", Input).value = "-3"
        await pilot.pause()
        assert {e["field"] for e in form.errors} == {"notes", "value", "step"}
        assert form.query_one("#ok", Button).disabled
        form.query_one("#value", Input).value = "0.9"
        form.query_one("#step", Input).value = "4"
        form.query_one("#notes", Input).value = "Reached the goal on the validation split."
        await pilot.pause()
        assert form.errors == [] and not form.query_one("#ok", Button).disabled
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_save_version_from_the_dashboard_goes_through_the_workspaces_service(fx: TuiFixture) -> None:
    from tui.modals.prompt import PromptModal

    (fx.root / "workspaces" / "w1" / "notes.md").write_text("notes the person added\n")
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        dash.table("slots").focus()
        dash.table("slots").select_key("w1")
        await pilot.press("v")
        modal = app.screen
        assert isinstance(modal, PromptModal)
        await pilot.press(*"short")
        assert modal.query_one("#ok", Button).disabled
        modal.query_one(Input).value = "Notes from the person watching the run"
        await pilot.pause()
        await pilot.click("#ok")
        await app.settle(timeout=30)
        assert any(a.startswith("save_version: Saved exp v2") for a in app.actions_done), (app.actions_done,
                                                                                         app.errors)
        assert dash.view is not None and dash.view.slots[0].version == "v2"
    audit = fx.open("test").store.tail_events("audit", 5, lambda ev: ev.get("op") == "save_version")
    assert audit[0]["source"] == "tui" and audit[0]["reason"] == "Notes from the person watching the run"


async def test_a_failing_load_is_reported_not_fatal(fx: TuiFixture) -> None:
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        app.push_screen(RunDetailScreen("stage-00000000"))
        await app.settle()
        assert any("stage-00000000 not found" in e for e in app.errors)
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen) and app.is_running


async def test_cancel_from_the_dashboard_goes_through_the_runs_service(fx: TuiFixture) -> None:
    from goldfish.runs.inspect import inspect_run
    from tests.run_helpers import REASON, SPEC

    third_workspace(fx)
    project = fx.open("test")
    started = project.runs.run("w3", reason=REASON, results_spec=SPEC, stages=["nap"])
    run_id = started.stage_runs[0].stage_run_id
    wait_state(project, run_id, {"running"})
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        table = dash.table("active")
        table.focus()
        assert table.select_key(run_id)
        await pilot.press("c")
        modal = app.screen
        assert isinstance(modal, ConfirmCancel)
        await pilot.press(*"too short")
        assert modal.query_one("#ok", Button).disabled  # the reason the service would refuse
        modal.query_one(Input).value = "Person at the dashboard: wrong learning rate"
        await pilot.pause()
        await pilot.click("#ok")
        await app.settle(timeout=30)
        assert any(a.startswith("cancel:") for a in app.actions_done), app.errors
    # What the MCP tool inspect_run reports, at once.
    meta = inspect_run(fx.open("mcp"), run_id).metadata
    assert meta is not None and meta.state == "canceled"
    doc = project.runs.get(run_id)
    assert doc["cancel_source"] == "tui" and "wrong learning rate" in doc["cancel_reason"]
    audit = project.store.tail_events("audit", 5, lambda ev: ev.get("op") == "cancel")
    assert audit[0]["source"] == "tui" and audit[0]["details"]["run_id"] == run_id


LIVE_SCRIPT = """
import sys
from goldfish.project import Project
from tests.run_helpers import SPEC
project = Project.open(sys.argv[1], source="mcp")
started = project.runs.run("w3", reason="Another process: a quick run to watch live", results_spec=SPEC,
                           stages=["quick"])
run_id = started.stage_runs[0].stage_run_id
print(run_id, flush=True)
project.runs.wait(started.pipeline_run_id, 60)
sys.stdin.readline()  # the test has seen the run await finalization on screen
project.records.finalize_run(run_id, {"primary_metric": "acc", "direction": "maximize", "value": 0.9,
                                      "dataset_split": "val", "ml_outcome": "success",
                                      "notes": "Finalized by another process while the TUI watched."})
"""


async def test_changes_by_another_process_appear_without_a_tick(fx: TuiFixture) -> None:
    """The dashboard is open (watchers on, the slow tick off) while another process runs a pipeline and
    finalizes it: each change (started, awaiting finalization, finalized) shows soon after it reaches the
    store, with no worker error. The tick is an hour, so only the store watchers can have shown them; how
    fast they do is measured by benchmarks/tui_bench.py, not asserted here (a loaded machine is slow)."""
    import subprocess
    import sys

    third_workspace(fx)
    reader = fx.open("test")
    app = GoldfishApp(fx.open("tui"), live=True, tick_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        proc = subprocess.Popen([sys.executable, "-c", LIVE_SCRIPT, str(fx.root)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdin is not None
        run_id = proc.stdout.readline().strip()
        assert run_id.startswith("stage-"), run_id

        def stored() -> dict:  # type: ignore[type-arg]
            return reader.store.table("runs", "ws/third").get_doc(run_id) or {}

        def active() -> bool:
            return stored().get("state") in ("pending", "preparing", "launching", "running", "post_run")

        def finalized_on_screen() -> bool:
            view = dash.view
            return (view is not None and run_id not in dash.table("queue").keys
                    and any(e.op == "finalize_run" and e.workspace == "third" for e in view.audit))

        milestones = [
            ("active", active, lambda: run_id in dash.table("active").keys),
            ("awaiting finalization", lambda: stored().get("state") == "completed"
             and stored().get("results_status") != "finalized",
             lambda: run_id in dash.table("queue").keys and run_id not in dash.table("active").keys),
            ("finalized", lambda: stored().get("results_status") == "finalized", finalized_on_screen),
        ]
        lags = {}
        deadline = time.monotonic() + 60
        for name, in_store, on_screen in milestones:
            if name == "finalized":
                proc.stdin.write("go\n")  # let the other process finalize now that the queue showed the run
                proc.stdin.flush()
            seen_store = seen_screen = None
            while seen_store is None or seen_screen is None:
                now = time.monotonic()
                assert now < deadline, f"{name}: store {seen_store}, screen {seen_screen}"
                if seen_store is None and in_store():
                    seen_store = now
                if seen_screen is None and on_screen():
                    seen_screen = now
                await pilot.pause(0.02)
            lags[name] = seen_screen - seen_store
        proc.stdin.close()
        proc.wait(60)
        assert proc.returncode == 0
        print(f"live lags (s): {lags}")
        assert all(lag < 30.0 for lag in lags.values()), lags  # far below the 3600 s tick
        assert app.store_events >= len(milestones) and app.errors == []
