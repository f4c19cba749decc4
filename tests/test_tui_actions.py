"""Actions from the dashboard end to end: finalize (seen at once by the MCP server), tag, and pattern
curation, each through the service the MCP tool calls, with refusals shown in the modal that asked."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from textual.widgets import Button, Input

from goldfish.records.models import FinalizeResult
from tests.run_helpers import REASON, SPEC, wait_state, wait_terminal
from tests.tui_helpers import TuiFixture, module_fixture, third_workspace
from tui.actions import finalize_report
from tui.app import GoldfishApp
from tui.modals.finalize_form import FinalizeDone, FinalizeForm
from tui.modals.prompt import PromptModal
from tui.modals.tag import TagModal
from tui.screens.dashboard import DashboardScreen
from tui.screens.history import HistoryScreen
from tui.screens.patterns import PatternsScreen

SIZE = (200, 60)
REPO = Path(__file__).resolve().parent.parent
NOTES = "Reached the goal on the validation split."


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TuiFixture]:
    yield from module_fixture(tmp_path_factory)


def app_for(fx: TuiFixture) -> GoldfishApp:
    return GoldfishApp(fx.open("tui"), live=False)


def final(value: float, outcome: str = "success", metric: str = "acc") -> dict[str, object]:
    return {"primary_metric": metric, "direction": "maximize", "value": value, "dataset_split": "val",
            "ml_outcome": outcome, "notes": NOTES}


async def open_finalize_form(app: GoldfishApp, pilot: object, table: str, run_id: str) -> FinalizeForm:
    await app.settle()
    dash = app.screen
    assert isinstance(dash, DashboardScreen)
    dash.table(table).focus()
    assert dash.table(table).select_key(run_id), (table, run_id, dash.table(table).keys)
    await pilot.press("f")  # type: ignore[attr-defined]
    await app.settle()
    form = app.screen
    assert isinstance(form, FinalizeForm)
    return form


async def test_finalize_refuses_an_active_run_in_the_form(fx: TuiFixture) -> None:
    sleeper = fx.ids["sleeper"]
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_finalize_form(app, pilot, "active", sleeper)
        assert {e["field"] for e in form.errors} == {"value", "ml_outcome", "notes"}  # no result yet to prefill
        form.query_one("#value", Input).value = "0.8"
        form.query_one("#ml_outcome").value = "partial"  # type: ignore[attr-defined]
        form.query_one("#notes", Input).value = NOTES
        await pilot.pause()
        assert form.errors == []
        await pilot.click("#ok")
        await app.settle()
        assert app.screen is form  # still open, with the service's reason and fix
        assert form.refusal is not None and "still active" in form.refusal and "Fix:" in form.refusal
        assert "still active" in str(form.query_one("#errors").render())
        assert not form.query_one("#ok", Button).disabled and app.errors == [] and app.actions_done == []
    assert fx.open("test").runs.get(sleeper).get("results_status") != "finalized"


def _serve(root: Path) -> StdioServerParameters:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return StdioServerParameters(command=sys.executable, args=["-m", "goldfish", "serve"], cwd=str(root),
                                 env={**os.environ, "PYTHONPATH": path})


async def test_finalize_in_the_tui_then_the_mcp_server_shows_it(fx: TuiFixture) -> None:
    """The agent finalized and tagged an earlier run; the person finalizes the next one in the form
    (a metric the spec does not declare is refused first, in the form); the report shows the
    comparison and the warning, and the MCP server's list_history / inspect_run show it at once."""
    third_workspace(fx)
    agent = fx.open("mcp")
    first = agent.runs.run("w3", reason=REASON, results_spec=SPEC, stages=["quick"])
    wait_terminal(agent, first.pipeline_run_id)
    first_id = first.stage_runs[0].stage_run_id
    agent.records.finalize_run(first_id, final(0.85, "partial"))
    agent.records.tag_record(first_id, "best")
    second = agent.runs.run("w3", reason=REASON, results_spec=SPEC, stages=["quick"])
    wait_terminal(agent, second.pipeline_run_id)
    run_id = second.stage_runs[0].stage_run_id

    async with Client(_serve(fx.root)) as client:
        before = await client.call_tool("inspect_run", {"run_id": run_id, "include": ["metadata"]})
        assert not before.is_error and before.structured_content["metadata"]["results_status"] != "finalized"
        app = app_for(fx)
        async with app.run_test(size=SIZE) as pilot:
            form = await open_finalize_form(app, pilot, "queue", run_id)
            assert form.results()["primary_metric"] == "acc" and form.results()["value"] == pytest.approx(0.9)
            form.query_one("#primary_metric", Input).value = "loss"
            form.query_one("#notes", Input).value = NOTES
            form.query_one("#ml_outcome").value = "partial"  # type: ignore[attr-defined]
            await pilot.pause()
            assert form.errors == []  # valid results; only the service knows the run's spec says acc
            await pilot.click("#ok")
            await app.settle()
            await _until(pilot, lambda: form.refusal is not None)  # the service answers in a worker
            assert app.screen is form and form.refusal is not None
            assert "results_spec" in form.refusal and "'acc'" in form.refusal and "Fix:" in form.refusal
            form.query_one("#primary_metric", Input).value = "acc"
            await pilot.pause()
            assert form.refusal is None and not form.query_one("#ok", Button).disabled
            form.query_one("#ok", Button).press()  # not a click: a toast of the refusal may cover the button
            await app.settle()
            await _until(pilot, lambda: isinstance(app.screen, FinalizeDone))  # a loaded machine is slow
            done = app.screen
            assert isinstance(done, FinalizeDone)
            result: FinalizeResult = done.result
            assert result.stage_run_id == run_id and result.comparison is not None
            assert result.comparison.vs_previous is not None and result.comparison.vs_previous.stage_run_id == first_id
            assert result.comparison.vs_best is not None and result.comparison.vs_best.tag == "best"
            shown = str(done.query_one("#report").render())
            assert f"vs previous {first_id}: acc 0.85, Δ +0.05 (better)" in shown
            assert "vs best @best (best_tag): acc 0.85, Δ +0.05 (better)" in shown
            assert any("suggest 'success'" in w for w in result.warnings) and "suggest 'success'" in shown
            assert "\n".join(finalize_report(result)) == shown
            assert any(a.startswith(f"finalize: Finalized {run_id} (quick) as partial: 0.9") for a in app.actions_done)
            await pilot.press("escape")
            assert isinstance(app.screen, DashboardScreen)
            await app.settle()
            assert run_id not in app.screen.table("queue").keys
            assert app.errors == []
        # The MCP server (another process, open all along) shows it with no wait.
        history = await client.call_tool("list_history", {"workspace": "third", "limit": 5})
        assert not history.is_error
        record = next(r for r in history.structured_content["records"] if r.get("stage_run_id") == run_id)
        assert record["results_status"] == "finalized" and record["ml_outcome"] == "partial"
        assert record["primary_metric"] == {"name": "acc", "value": 0.9, "source": "final"}
        inspected = await client.call_tool("inspect_run", {"run_id": run_id, "include": ["metadata"]})
        meta = inspected.structured_content["metadata"]
        assert meta["results_status"] == "finalized" and meta["ml_outcome"] == "partial"
    doc = fx.open("test").runs.get(run_id)
    assert doc["finalized_by"] == "tui" and doc["results_final"]["notes"] == NOTES


async def test_tag_from_history_and_a_taken_tag_refused_in_the_modal(fx: TuiFixture) -> None:
    project = fx.open("test")
    train_record = project.runs.get(fx.ids["train"])["record_id"]
    blocked_record = project.runs.get(fx.ids["blocked"])["record_id"]
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        app.push_screen(HistoryScreen("exp"))
        await app.settle()
        hist = app.screen
        assert isinstance(hist, HistoryScreen)
        hist.table.focus()
        assert hist.table.select_key(train_record)
        await pilot.press("t")
        modal = app.screen
        assert isinstance(modal, TagModal)
        box = modal.query_one(Input)
        box.value = "v3"  # a version number as a tag: refused before submitting, as the service would
        await pilot.pause()
        assert modal.query_one("#ok", Button).disabled and "version number" in str(modal.query_one("#error").render())
        box.value = "wide-lstm"
        await pilot.pause()
        await pilot.click("#ok")
        await app.settle()
        assert app.screen is hist
        assert any(a.startswith(f"tag: Tagged {train_record} as 'wide-lstm'") for a in app.actions_done)
        assert hist.page is not None
        assert next(r for r in hist.page.rows if r.record_id == train_record).tags == ("wide-lstm",)
        # The same tag on another record: tag_record refuses; the modal stays open with why and the fix.
        hist.query_one("#filter", Input).value = "supporting"  # blocked supports train's run: list it too
        await app.settle()
        assert hist.table.select_key(blocked_record)
        await pilot.press("t")
        modal = app.screen
        assert isinstance(modal, TagModal)
        modal.query_one(Input).value = "wide-lstm"
        await pilot.pause()
        await pilot.click("#ok")
        await app.settle()
        assert app.screen is modal and modal.refusal is not None
        assert f"already labels record {train_record}" in modal.refusal and "Fix:" in modal.refusal
        await pilot.press("escape")
        assert app.screen is hist and app.errors == []
    detail = project.records.inspect_record(train_record, include=["tags"])
    assert detail.tags == ["wide-lstm"]
    assert project.records.inspect_record(blocked_record, include=["tags"]).tags == []
    audit = project.store.tail_events("audit", 5, lambda ev: ev.get("op") == "tag_record" and ev["workspace"] == "exp")
    assert len(audit) == 1 and audit[0]["source"] == "tui" and audit[0]["details"]["tag"] == "wide-lstm"


async def test_approve_reject_and_archive_patterns_with_a_reason(fx: TuiFixture) -> None:
    project = fx.open("test")
    wait_state(project, fx.ids["crash"], {"failed"})
    learned = project.patterns.for_run(fx.ids["crash"])
    assert learned and learned[0].status == "pending"  # learned from the crash's log by the runner
    noise = project.patterns.learn_from_failure(
        run_id=fx.ids["crash"], workspace="other", stage="crash",
        log_text='Traceback (most recent call last):\n  File "x.py", line 3, in <module>\n'
                 'ConnectionResetError: [Errno 104] Connection reset by peer\n')
    assert noise is not None and noise.id != learned[0].id
    real = learned[0].id
    approve_reason = "Real code failure: the stage raises at the same line every time"
    reject_reason = "One-off network error, not a problem of the code"
    archive_reason = "The code it guarded against was removed from the stage"
    app = app_for(fx)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        await pilot.press("p")
        await app.settle()
        screen = app.screen
        assert isinstance(screen, PatternsScreen)
        assert {p.pattern_id for p in screen.patterns} == {real, noise.id} and screen.total == 2
        table = screen.query_one("#patterns")
        table.focus()
        for pid, key, reason, status in ((real, "a", approve_reason, "approved"),
                                         (noise.id, "x", reject_reason, "rejected"),
                                         (real, "z", archive_reason, "archived")):
            assert table.select_key(pid)  # type: ignore[attr-defined]
            await pilot.press(key)
            modal = app.screen
            assert isinstance(modal, PromptModal)
            modal.query_one(Input).value = "too short"
            await pilot.pause()
            assert modal.query_one("#ok", Button).disabled  # a reason is required, 15+ characters
            modal.query_one(Input).value = reason
            await pilot.pause()
            await pilot.click("#ok")
            await app.settle()
            assert app.screen is screen, app.errors
            assert next(p for p in screen.patterns if p.pattern_id == pid).status == status
        assert app.errors == []
        await pilot.press("f")  # status filter: pending (none left)
        await app.settle()
        assert screen.status == "pending" and screen.patterns == () and screen.total == 0
    for pid, history in ((real, [("approved", approve_reason), ("archived", archive_reason)]),
                         (noise.id, [("rejected", reject_reason)])):
        curated = [(h["action"], h["reason"]) for h in project.patterns.get(pid).history
                   if h["action"] in ("approved", "rejected", "archived")]
        assert curated == history
        assert all(h["source"] == "tui" for h in project.patterns.get(pid).history if h.get("reason"))
    ops = {ev["op"]: ev for ev in project.store.tail_events("audit", 10, lambda ev: ev["op"].startswith("pattern_"))}
    assert set(ops) == {"pattern_approved", "pattern_rejected", "pattern_archived"}
    assert ops["pattern_rejected"]["reason"] == reject_reason and ops["pattern_rejected"]["source"] == "tui"


def test_headless_text_and_fail_on_alerts_on_a_project_with_real_runs(fx: TuiFixture) -> None:
    """`goldfish tui --headless` on the real runs: every section, the crash as an alert, exit code 1
    with --fail-on-alerts (errors and warnings count)."""
    import subprocess

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "goldfish", "tui", "--project", str(fx.root), "--headless",
                               *args], capture_output=True, text=True, timeout=120, cwd=REPO)

    done = cli("--text")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for needle in ("Slots", "Active runs", "Awaiting finalization", "Alerts", "SVS findings", "Audit and thoughts",
                   fx.ids["sleeper"], fx.ids["crash"], "exit_nonzero", "review_blocked", "loss_plateau"):
        assert needle in out, needle
    assert "goldfish tui:" not in out  # no load failed
    failing = cli("--fail-on-alerts")
    assert failing.returncode == 1, (failing.stdout, failing.stderr)


async def _until(pilot: object, condition: object, timeout: float = 30.0) -> None:
    """Let the app run until ``condition()`` holds or ``timeout`` passes (the caller asserts after)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        await pilot.pause(0.05)  # type: ignore[attr-defined]
