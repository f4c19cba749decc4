"""SVG snapshots of every screen, on a deterministic project and a fixed clock.

Update after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and
look at the report before committing the new SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from goldfish.project import Project
from tests.tui_snapshot_data import NOW, build
from tui.app import GoldfishApp
from tui.format import parse_ts

SIZE = (160, 44)
DEMO_STORE = Path(__file__).parent / "fixtures" / "demo_store"
Steps = Callable[[Any], Awaitable[None]]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return build(tmp_path_factory.mktemp("snap"))


def app(project: Project) -> GoldfishApp:
    return GoldfishApp(project, now=lambda: NOW, live=False)


def steps(*keys: str, table: str | None = None, key: str | None = None, tab: str | None = None) -> Steps:
    async def run(pilot: Any) -> None:
        a = pilot.app
        await a.settle()
        if table is not None:
            t = a.screen.query_one(f"#{table}")
            t.focus()
            if key is not None:
                t.select_key(key)
        for k in keys:
            await pilot.press(k)
            await a.settle()
        if tab is not None:
            a.screen.query_one("#tabs").active = tab
        await a.settle()
        await pilot.pause()

    return run


def test_dashboard(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE, run_before=steps())


def test_idle_demo_dashboard(tmp_path: Path, snap_compare: Any) -> None:
    """The demo project once the tour is over: nothing runs, nothing awaits finalization, the blocked
    branch is acknowledged, and the results panel says where the research stands."""
    import shutil

    from goldfish.init import init_project
    from goldfish.records.refs import part

    init_project(tmp_path / "demo", "demo")
    demo = Project.open(tmp_path / "demo", source="tui")
    shutil.rmtree(demo.store_dir)
    shutil.copytree(DEMO_STORE, demo.store_dir, ignore=shutil.ignore_patterns("README.md"))
    demo = Project.open(tmp_path / "demo", source="tui")
    finished = max(str(r.get("finished_at") or "") for r in demo.store.table("runs", part("digits_mlp")).iter_raw())
    clock = parse_ts(finished) + 3600  # an hour after the tour, on a fixed clock
    view = GoldfishApp(demo, now=lambda: clock, live=False)
    assert snap_compare(view, terminal_size=SIZE, run_before=steps())


def test_run_detail_log(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE, run_before=steps("enter", table="active"))


def test_run_detail_metrics(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE,
                        run_before=steps("enter", table="active", tab="tab-metrics"))


def test_run_detail_outputs(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE,
                        run_before=steps("enter", table="queue", key="stage-0000a002", tab="tab-outputs"))


def test_run_detail_review(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE,
                        run_before=steps("enter", table="alerts", key="failed:stage-0000a003", tab="tab-timeline"))


def test_history(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE, run_before=steps("h", table="slots"))


def test_compare(project: Project, snap_compare: Any) -> None:
    async def run(pilot: Any) -> None:
        await steps("h", table="slots")(pilot)
        hist = pilot.app.screen
        for rid in ("01KF0000000000000000000005", "01KF0000000000000000000002"):
            hist.table.select_key(rid)
            await pilot.press("space")
        await pilot.press("m")
        await pilot.app.settle()
        await pilot.pause()

    assert snap_compare(app(project), terminal_size=SIZE, run_before=run)


def test_sources(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE, run_before=steps("s"))


def test_patterns(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE, run_before=steps("p"))


def test_finalize_form(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE,
                        run_before=steps("f", table="queue", key="stage-0000a002"))


def test_approve_pattern_modal(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE, run_before=steps("p", "a"))


def test_finalize_report(tmp_path: Path, snap_compare: Any) -> None:
    """The report after a real finalize_run: comparison with the earlier finalized run and a warning."""
    fresh = build(tmp_path)

    async def run(pilot: Any) -> None:
        await steps("f", table="queue", key="stage-0000a002")(pilot)
        form = pilot.app.screen
        form.query_one("#value").value = "0.81"  # logged 0.7904: a different value, not a rounding
        form.query_one("#notes").value = "Wider LSTM: above min_value, still below the goal."
        await pilot.pause()
        form.query_one("#ok").press()
        await pilot.app.settle()
        await pilot.pause()

    assert snap_compare(app(fresh), terminal_size=SIZE, run_before=run)


def test_cancel_modal(project: Project, snap_compare: Any) -> None:
    assert snap_compare(app(project), terminal_size=SIZE, run_before=steps("c", table="active"))


def test_snapshot_rows_have_the_run_engine_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The synthetic rows carry every key a real run doc has (so snapshots show what real runs show)."""
    from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, file_stage, make_env, wait_terminal

    (tmp_path / "real").mkdir()
    env = make_env(tmp_path / "real", monkeypatch)
    env.write([file_stage("train")], {"train": WRITE_OUTPUTS})
    real_project = env.open()
    started = real_project.runs.run("w1", reason=REASON, results_spec=SPEC)
    wait_terminal(real_project, started.pipeline_run_id)
    real = real_project.runs.get(started.stage_runs[0].stage_run_id)
    synthetic = build(tmp_path / "synthetic").store.table("runs", "ws/sentiment").get_doc("stage-0000a002")
    assert synthetic is not None
    assert set(real) - set(synthetic) == set()
    real_record = real_project.store.table("records", "ws/exp").get_doc(real["record_id"])
    synthetic_record = next(iter(build(tmp_path / "s2").store.table("records", "ws/sentiment").docs()))
    assert real_record is not None and set(real_record) == set(synthetic_record)
