"""Dashboard speed on a big project, beside baselines measured in the same run.

    python benchmarks/tui_bench.py [--records 10000] [--active 20] [--reps 15]

The project: one workspace with N records and their runs (a tenth awaiting finalization), and M
active runs with metric series and heartbeats. Figures (median ms):

* start-up to first paint: ``App.run_test`` entered → the dashboard's frame painted (its panels
  empty: the store is read only after the first frame, in a worker), beside a bare Textual app
  with one empty DataTable (the framework's own floor); and to the panels filled.
* dashboard refresh: the store read into a view (``load_dashboard``, in a worker thread in the
  app) plus applying it (keyed ``sync``: only changed cells), beside rebuilding the same tables
  (clear + add every row) from the same view.
* the same after another process changed one run: the store re-parses the workspace's
  partition, the records view is rebuilt, then the read and sync as above.
* history refresh: one page (200, ``list_history``'s largest) of the N records, sorted by creation
  and by metric, read through ``project.records.list_history`` (``load_history``) plus ``sync``
  with one changed cell, beside ``rebuild`` of the same page's table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from goldfish.init import init_project
from goldfish.project import Project
from tests.tui_snapshot_data import NOW, run_doc, ts


def build(root: Path, records: int, active: int) -> Project:
    init_project(root / "big", "big")
    project = Project.open(root / "big", source="test")
    with project.store.transaction() as tx:
        tx.table("workspaces").add({"goal": "benchmark"}, doc_id="bench")
        tx.table("mounts").add({"workspace": "bench", "dirty": False, "changed_count": 0}, doc_id="w1")
        runs, recs, index = tx.table("runs", "ws/bench"), tx.table("records", "ws/bench"), tx.table("run_index")
        for i in range(records):
            rid, rec = f"stage-{i:08x}", f"01KF{i:022d}"
            done = i >= active
            doc = run_doc(rid, f"stage{i % 7}", "completed" if done else "running", ws="bench",
                          prun=f"prun-{i:08x}", record=rec, version=f"v{i // 100 + 1}",
                          finished="11:00:00" if done else None, infra="completed" if done else None,
                          results="finalized" if done and i % 10 else ("auto" if done else "missing"),
                          auto=0.5 + (i % 100) / 250, metrics={"val_acc": {"last": 0.7, "count": 10, "trend": "up"}})
            runs.add(doc, doc_id=rid)
            index.add({"workspace": "bench", "kind": "stage"}, doc_id=rid)
            recs.add({"type": "run", "workspace": "bench", "stage_run_id": rid, "pipeline_run_id": f"prun-{i:08x}",
                      "stage": doc["stage"], "version": doc["version"], "experiment_group": None,
                      "created_at": ts("10:00:00"), "tags": []}, doc_id=rec)
            if not done:
                tx.table("pipeline_runs", "ws/bench").add(
                    {"workspace": "bench", "stages": [doc["stage"]], "state": "running",
                     "stage_runs": {doc["stage"]: rid}, "created_at": ts("10:00:00")}, doc_id=f"prun-{i:08x}")
                tx.table("active_pipelines").add({"workspace": "bench", "created_at": ts("10:00:00")},
                                                 doc_id=f"prun-{i:08x}")
        for i in range(200):
            tx.append_event("audit", {"ts": ts("11:00:00"), "op": "thought", "source": "mcp", "workspace": "bench",
                                      "reason": f"thought {i}", "details": {}})
    from goldfish.runs import metric_series

    for i in range(active):
        run_dir = project.runs_dir / f"stage-{i:08x}"
        rt = run_dir / "outputs" / ".goldfish"
        rt.mkdir(parents=True)
        with open(rt / "metrics.jsonl", "w") as f:
            for step in range(500):
                f.write(json.dumps({"type": "metric", "name": "val_acc", "value": step / 500, "step": step,
                                    "timestamp": NOW}) + "\n")
        metric_series.ingest(run_dir)
        (rt / "heartbeat").write_text(json.dumps({"timestamp": NOW - 2, "pid": 1}))
    return project


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def startup(project: Project, reps: int) -> tuple[float, float, float]:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from tui.app import GoldfishApp
    from tui.screens.dashboard import DashboardScreen

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    ours, filled, bare = [], [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        app = GoldfishApp(project, now=lambda: NOW, live=False)
        async with app.run_test(size=(180, 50)) as pilot:
            await app.settle()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, DashboardScreen) and screen.view is not None and screen.painted_at
            ours.append(screen.painted_at - t0)
            filled.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        async with Bare().run_test(size=(180, 50)) as pilot:
            await pilot.pause()
            bare.append(time.perf_counter() - t0)
    return median_ms(ours), median_ms(filled), median_ms(bare)


async def refreshes(project: Project, reps: int) -> dict[str, float]:
    from tui.app import GoldfishApp
    from tui.data import load_dashboard
    from tui.data_history import load_history
    from tui.screens.dashboard import DashboardScreen, dashboard_rows
    from tui.screens.history import history_rows
    from tui.viewmodels import HistoryQuery
    from tui.widgets.keyed_table import CellCache, KeyedTable

    out: dict[str, list[float]] = {k: [] for k in ("load", "sync", "rebuild", "hload", "hload_metric", "hsync",
                                                    "hrebuild", "wparse", "wload", "wsync")}
    app = GoldfishApp(project, now=lambda: NOW, live=False)
    async with app.run_test(size=(180, 50)) as pilot:
        await app.settle()
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        history = KeyedTable(id="bench-history")
        from tui.screens.history import COLUMNS

        history.set_columns(COLUMNS)
        await screen.mount(history)
        query = HistoryQuery(workspace="bench")
        by_metric = HistoryQuery(workspace="bench", sort_by="metric")
        page = load_history(project, query)
        cache = CellCache()
        history.sync(history_rows(page.rows, [], cache))
        await pilot.pause()
        for rep in range(reps):
            clock = NOW + rep  # ages change every refresh, as with the 2 s tick
            t0 = time.perf_counter()
            view = load_dashboard(project, clock)
            t1 = time.perf_counter()
            screen.apply(view)
            await pilot.pause()
            t2 = time.perf_counter()
            for name, rows in dashboard_rows(view).items():
                screen.table(name).rebuild(rows)
            await pilot.pause()
            t3 = time.perf_counter()
            out["load"].append(t1 - t0)
            out["sync"].append(t2 - t1)
            out["rebuild"].append(t3 - t2)
            # History: the read, then one changed cell synced vs the whole table rebuilt.
            t0 = time.perf_counter()
            load_history(project, by_metric)
            out["hload_metric"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            page = load_history(project, query)
            t1 = time.perf_counter()
            rows = history_rows(page.rows, [], cache)
            key = next(iter(rows))
            rows[key] = (*rows[key][:-1], f"edited {rep}")
            history.sync(rows)
            await pilot.pause()
            t2 = time.perf_counter()
            history.rebuild(rows)
            await pilot.pause()
            t3 = time.perf_counter()
            out["hload"].append(t1 - t0)
            out["hsync"].append(t2 - t1)
            out["hrebuild"].append(t3 - t2)
        # Live: another process (a runner) updates one run; the dashboard's next read re-parses that
        # workspace's partition file first, then reads and syncs as above.
        writer = Project.open(project.root, source="test")
        for rep in range(max(3, reps // 3)):
            with writer.store.transaction() as tx:
                tx.table("runs", "ws/bench").patch("stage-00000000", {"metrics_summary": {
                    "val_acc": {"last": rep / 10, "count": rep + 1, "trend": "up"}}})
            t0 = time.perf_counter()
            project.store.table("runs", "ws/bench").get_doc("stage-00000000")
            t1 = time.perf_counter()
            view = load_dashboard(project, NOW + rep)
            t2 = time.perf_counter()
            screen.apply(view)
            await pilot.pause()
            t3 = time.perf_counter()
            out["wparse"].append(t1 - t0)
            out["wload"].append(t2 - t1)
            out["wsync"].append(t3 - t2)
        assert app.errors == [], app.errors
    return {k: median_ms(v) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=10_000)
    p.add_argument("--active", type=int, default=20)
    p.add_argument("--reps", type=int, default=15)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        project = build(Path(tmp), args.records, args.active)
        print(f"project: {args.records} records, {args.active} active runs (built in {time.perf_counter() - t0:.1f}s)")
        ours, filled, bare = asyncio.run(startup(project, max(5, args.reps // 3)))
        r: dict[str, Any] = asyncio.run(refreshes(project, args.reps))
    print(f"start-up to first paint   {ours:8.1f} ms   bare Textual app + DataTable {bare:8.1f} ms"
          f"   ratio {ours / bare:5.2f}")
    print(f"start-up to panels filled {filled:8.1f} ms   (first paint, then the store read in a worker and applied)")
    total = r["load"] + r["sync"]
    print(f"dashboard refresh         {total:8.1f} ms   (read {r['load']:.1f} + keyed sync {r['sync']:.1f})"
          f"   rebuild tables {r['rebuild']:8.1f} ms")
    wtotal = r["wparse"] + r["wload"] + r["wsync"]
    print(f"after another process's write {wtotal:8.1f} ms   (re-parse partition {r['wparse']:.1f} + read"
          f" {r['wload']:.1f} + keyed sync {r['wsync']:.1f})")
    htotal = r["hload"] + r["hsync"]
    print(f"history refresh (page of 200 of {args.records}) {htotal:6.1f} ms   (list_history {r['hload']:.1f}"
          f" + keyed sync {r['hsync']:.1f})   rebuild table {r['hrebuild']:6.1f} ms"
          f"   sync/rebuild {r['hsync'] / r['hrebuild']:.3f}")
    print(f"history read sorted by metric {r['hload_metric']:6.1f} ms")


if __name__ == "__main__":
    main()
