"""The dashboard paints its frame before anything reads the store; the panels fill from a worker.

Real Textual pilots on a real project; the store's read methods are wrapped to note the moment
(``perf_counter``) of every read, which is compared with the moment the screen recorded its first
paint — an order of events, not a duration.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from goldfish.init import init_project
from goldfish.project import Project
from tests.tui_snapshot_data import NOW, build
from tui.app import GoldfishApp
from tui.screens.dashboard import DashboardScreen

READS = ("table", "tail_events", "partitions", "read_events")


def _record_reads(project: Project, monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, str, str]]:
    reads: list[tuple[float, str, str]] = []
    store = project.store
    for name in READS:
        original = getattr(store, name)

        def wrapped(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            reads.append((time.perf_counter(), _name, threading.current_thread().name))
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, wrapped)
    return reads


async def test_frame_is_painted_before_any_store_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = build(tmp_path)
    reads = _record_reads(project, monkeypatch)
    app = GoldfishApp(project, now=lambda: NOW, live=False)
    async with app.run_test(size=(160, 44)) as pilot:
        await app.settle()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DashboardScreen) and screen.view is not None and screen.painted_at is not None
        assert screen.view.active  # the panels were filled (the fixture has active runs)
        assert reads, "the dashboard read nothing"
        assert min(t for t, _, _ in reads) >= screen.painted_at, [r for r in reads if r[0] < screen.painted_at]
        main = threading.main_thread().name
        assert all(thread != main for _, _, thread in reads), "a store read ran on the UI thread"
        assert app.errors == []


async def test_goldfish_tui_reconciles_after_the_first_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = init_project(tmp_path / "proj", "proj")
    project = Project.open(result.project_root, source="tui")
    reads = _record_reads(project, monkeypatch)
    app = GoldfishApp(project, now=lambda: NOW, live=False, reconcile=True)
    async with app.run_test(size=(160, 44)) as pilot:
        await app.settle()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DashboardScreen) and screen.painted_at is not None
        assert app.reconciled == []  # it ran (nothing to reconcile in a new project)
        assert any(name == "table" for _, name, _ in reads)  # reconcile read active_pipelines
        assert min(t for t, _, _ in reads) >= screen.painted_at
        assert app.errors == []
