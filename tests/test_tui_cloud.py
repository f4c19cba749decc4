"""The dashboard's cloud views: the Attempts tab of a run on VMs (every capacity-search try) and the
warm pool panel, each shown only in projects that have them."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldfish.runs import warm_pool
from tests.run_helpers import make_env
from tests.source_helpers import put_run
from tui.app import GoldfishApp
from tui.screens.dashboard import DashboardScreen
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.keyed_table import KeyedTable

SIZE = (200, 60)
ATTEMPTS = [
    {"attempt": 1, "outcome": "preempted", "instance": "gf-0000cafe-a1", "detail": "the spot VM was preempted",
     "capacity": [
         {"n": 1, "zone": "us-central1-a", "machine_type": "a3-highgpu-1g", "provisioning_model": "SPOT",
          "outcome": "stockout", "error": "ZONE_RESOURCE_POOL_EXHAUSTED: no capacity"},
         {"n": 2, "zone": "us-central1-b", "machine_type": "a3-highgpu-1g", "provisioning_model": "SPOT",
          "outcome": "launched", "error": None}]},
    {"attempt": 2, "outcome": "exited", "instance": "gf-0000cafe-a2", "capacity": [
        {"n": 1, "zone": "us-central1-b", "machine_type": "a3-highgpu-1g", "provisioning_model": "SPOT",
         "outcome": "launched", "error": None}]},
]


async def test_attempts_tab_and_warm_pool_panel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    project = env.project
    put_run(project, "stage-0000cafe", workspace="exp", backend="gce", attempts=ATTEMPTS, attempt=2,
            history=[], backend_handle={"instance": "gf-0000cafe-a2", "zone": "us-central1-b"})
    put_run(project, "stage-0000beef", workspace="exp")
    app = GoldfishApp(env.open("tui"), live=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        dash = app.screen
        assert isinstance(dash, DashboardScreen) and not dash.query("#pool")  # no pool: no panel
        app.push_screen(RunDetailScreen("stage-0000cafe"))
        await app.settle()
        await pilot.pause()
        table = app.screen.query_one("#attempts", KeyedTable)
        assert table.keys == ["1.1", "1.2", "2.1"]
        app.push_screen(RunDetailScreen("stage-0000beef"))
        await app.settle()
        assert not app.screen.query("#attempts")  # a local run has no Attempts tab
    with project.store.transaction() as tx:
        tx.table(warm_pool.TABLE).add({"instance": "gfw-0000aaaa", "state": "idle_ready", "zone": "us-central1-a",
                                       "machine_type": "n2-standard-4", "gpu_count": 0, "lease": None,
                                       "state_since": "2026-01-01T00:00:00.000000Z"}, doc_id="gfw-0000aaaa")
    app = GoldfishApp(env.open("tui"), live=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.settle()
        await pilot.pause()
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        assert dash.table("pool").keys == ["gfw-0000aaaa"]
        assert "disabled, 1 worker(s) left" in str(dash.query_one("#pool-title").render())
        assert app.errors == []
