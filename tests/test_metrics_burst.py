"""Metrics logged in a burst right before a stage exits are all ingested; skipped lines are counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from goldfish.runs import metric_series
from goldfish.runs.inspect import metric_history
from tests.run_helpers import REASON, make_env, wait_terminal

POINTS = 5_000_000
BURST = f'''
from goldfish.metrics import finish, log_metric
from goldfish.io import get_output_path
for i in range({POINTS}):
    log_metric("loss", 1.0 / (i + 1), step=i)
finish()
get_output_path("out").write_text("ok")
'''
LOSS_SPEC = {
    "primary_metric": "loss", "direction": "minimize", "min_value": 0.01, "goal_value": 1e-6,
    "dataset_split": "val", "tolerance": 0.0, "context": "Burst test: the last logged loss must be the result.",
}


@pytest.mark.slow
@pytest.mark.timeout(900)  # 5M points written by the SDK and ingested, on a loaded 2-core machine
def test_five_million_points_in_a_burst_are_all_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([{"name": "burst", "outputs": {"out": {"type": "file", "schema": None}}}], {"burst": BURST})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=LOSS_SPEC)
    run_id = started.stage_runs[0].stage_run_id
    done = wait_terminal(project, started.pipeline_run_id, timeout=800)
    run = project.runs.get(run_id)
    try:
        assert done.status == "completed", run.get("error")
        history = metric_history(project, run_id, ["loss"], 50, None)
        loss = history.metrics[0]
        assert loss.total_points == POINTS
        assert loss.steps[-1] == POINTS - 1 and loss.values[-1] == 1.0 / POINTS
        auto = run["results_auto"]
        assert auto["value"] == 1.0 / POINTS and auto["ml_outcome_hint"] == "success"
        assert run["metrics_summary"]["loss"]["count"] == POINTS and run["metrics_lost"] == {}
    finally:  # ~0.7 GB of metrics: do not keep it in pytest's retained temp dirs
        shutil.rmtree(project.runs_dir / run_id / "series", ignore_errors=True)
        metric_series.metrics_file(project.runs_dir / run_id).unlink(missing_ok=True)


def test_skipped_lines_are_counted_and_shown(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    source = metric_series.metrics_file(run_dir)
    source.parent.mkdir(parents=True)
    good = {"type": "metric", "name": "acc", "value": 0.5, "step": 0, "timestamp": "2026-01-01T00:00:00.000001Z"}
    lines = [json.dumps(good), "{not json", json.dumps({**good, "value": "high", "step": 1}),
             json.dumps({**good, "step": 1 << 64}), json.dumps({**good, "value": 0.75, "step": 2})]
    source.write_text("\n".join(lines) + "\n" + '{"type":"metric","name":"acc","val')  # the stage died mid-line
    index, changed = metric_series.ingest(run_dir)
    assert changed and index.metrics["acc"].count == 2
    index = metric_series.ingest_all(run_dir)  # what settle does once the stage has ended
    assert index.metrics["acc"].count == 2 and index.metrics["acc"].last == 0.75
    assert index.lost == {"malformed": 1, "invalid_value": 1, "invalid_step": 1, "partial_line": 1}
    assert metric_series.ingest_all(run_dir).lost == index.lost  # idempotent
