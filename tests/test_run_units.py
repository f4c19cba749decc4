"""Units of the run engine: state machine table, metric series ingestion, LTTB, log cursors, launcher."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from goldfish.runs import metric_series
from goldfish.runs.backends.base import LaunchSpec
from goldfish.runs.backends.local import LocalBackend
from goldfish.procs import pid_alive
from goldfish.errors import Conflict
from goldfish.runs.gate import blocks_gate
from goldfish.runs.state import LEGAL, TERMINAL, check_legal, infra_outcome, pipeline_state_of


def test_state_table() -> None:
    assert set(LEGAL) == {"pending", "preparing", "launching", "running", "post_run"}
    for frm in LEGAL:
        assert "canceled" in LEGAL[frm], f"{frm} cannot be canceled"
    assert not TERMINAL & set(LEGAL)
    with pytest.raises(Conflict):
        check_legal("completed", "running", None)
    with pytest.raises(Conflict):
        check_legal("running", "failed", "timeout")  # a timeout is a termination, not a failure
    assert infra_outcome("terminated", "preempted") == "preempted"
    assert infra_outcome("terminated", "orphaned") == "crashed"
    assert infra_outcome("failed", "exit_nonzero") == "crashed"
    assert infra_outcome("failed", "preflight") == "blocked"
    assert infra_outcome("running", None) is None
    assert pipeline_state_of(["pending", "pending"]) == "pending"
    assert pipeline_state_of(["completed", "running"]) == "running"
    assert pipeline_state_of(["completed", "completed"]) == "completed"
    assert pipeline_state_of(["completed", "canceled", "skipped"]) == "canceled"
    assert pipeline_state_of(["canceled", "failed"]) == "failed"
    for outcome, blocks in (("completed", True), ("crashed", True), ("preempted", True), ("canceled", False),
                            ("blocked", False), ("skipped", False), (None, False)):
        assert blocks_gate({"infra_outcome": outcome, "results_status": "auto"}) is blocks
    assert not blocks_gate({"infra_outcome": "completed", "results_status": "finalized"})


def _write(run_dir: Path, lines: list[str], partial: str = "") -> None:
    path = metric_series.metrics_file(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines) + partial)


def test_metric_ingestion_is_incremental_and_idempotent(tmp_path: Path) -> None:
    m = lambda name, v, step: json.dumps({"type": "metric", "name": name, "value": v, "step": step,  # noqa: E731
                                          "timestamp": "2026-01-01T00:00:00.000000Z"})
    _write(tmp_path, [m("loss", 3.0, 0), m("loss", 2.0, 1), "not json", m("loss", True, 2)], partial='{"type": "me')
    index, changed = metric_series.ingest(tmp_path)
    assert changed and index.metrics["loss"].count == 2 and index.lost == {"malformed": 1, "invalid_value": 1}
    assert metric_series.ingest(tmp_path)[1] is False  # the partial line waits
    with open(metric_series.metrics_file(tmp_path), "a") as f:
        f.write('tric", "name": "loss", "value": 1.0, "step": 2, "timestamp": 1767225600.0}\n')
    _write(tmp_path, [json.dumps({"type": "lost", "count": 3, "reasons": {"nan": 3}}),
                      json.dumps({"type": "artifact", "name": "model", "path": "m.pt", "timestamp": 1.0})])
    index, _ = metric_series.ingest(tmp_path)
    summary = index.summary()["loss"]
    assert (summary["count"], summary["last"], summary["min"], summary["max"]) == (3, 1.0, 1.0, 3.0)
    assert summary["trend"] == "down" and summary["last_step"] == 2
    assert index.lost["sdk:nan"] == 3 and index.artifacts[0]["name"] == "model"
    # A crash after appending a series but before the index: the next ingest repairs it.
    series = metric_series.series_dir(tmp_path) / index.metrics["loss"].file
    with open(series, "ab") as f:
        f.write(b"x" * 24)
    metric_series._REPAIRED.clear()  # a new process (e.g. a new runner) ingests next
    metric_series.ingest(tmp_path)
    data = metric_series.read_series(tmp_path, "loss")
    assert data is not None and list(data["value"]) == [3.0, 2.0, 1.0] and series.stat().st_size == 72


def test_lttb_keeps_endpoints_and_is_deterministic() -> None:
    x = np.arange(1000, dtype=float)
    y = np.sin(x / 30) + (x == 500) * 5.0
    keep = metric_series.lttb(x, y, 40)
    assert len(keep) == 40 and keep[0] == 0 and keep[-1] == 999 and 500 in keep
    assert list(keep) == list(metric_series.lttb(x, y, 40))
    assert list(np.diff(keep) > 0) == [True] * 39
    assert list(metric_series.lttb(x[:10], y[:10], 40)) == list(range(10))


def test_log_cursor_never_drifts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.run_helpers import REASON, SPEC, make_env

    env = make_env(tmp_path, monkeypatch)
    env.write([{"name": "talk", "outputs": {}}],
              {"talk": "import time\nfor i in range(400):\n    print(f'line {i} ' + 'é' * (i % 7), flush=True)\n"
                       "    if i % 50 == 0: time.sleep(0.05)\n"})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    run_id = started.stage_runs[0].stage_run_id
    from goldfish.runs.logs import read_logs

    got: list[str] = []
    cursor = 0
    deadline = time.monotonic() + 20
    while True:
        part = read_logs(project, run_id, cursor=cursor, follow=True)
        if part.logs:
            got.extend(part.logs.splitlines())
        cursor = part.cursor
        if part.done and not part.has_more and not read_logs(project, run_id, cursor=cursor).logs:
            break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stage_lines = [line for line in got if line.startswith("line ")]
    assert stage_lines == [f"line {i} " + "é" * (i % 7) for i in range(400)]
    with pytest.raises(Exception, match="outside the log"):
        read_logs(project, run_id, cursor=cursor + 1)


def test_launcher_records_signal_deaths_and_waits_for_its_record(tmp_path: Path) -> None:
    backend = LocalBackend()
    spec = LaunchSpec(run_id="stage-00000001", run_dir=tmp_path, cwd=tmp_path, env=dict(os.environ),
                      argv=[sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    handle = backend.launch(spec)
    deadline = time.monotonic() + 10
    while (status := backend.status(handle)).alive:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert status.exit_code == 128 + signal.SIGKILL
    while pid_alive(handle["pid"], handle["proc_start"]):  # the launcher exits right after writing the code
        backend.status(handle)  # reaps it
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # A launcher whose launch was never recorded runs nothing.
    (tmp_path / "launch.json").write_text(json.dumps({"pid": 1}))
    spec_file = tmp_path / "launch_spec.json"
    doc = json.loads(spec_file.read_text())
    doc["argv"] = [sys.executable, "-c", f"open({str(tmp_path / 'ran')!r}, 'w')"]
    spec_file.write_text(json.dumps(doc))
    import subprocess

    from goldfish.runs.backends.local import LAUNCHER

    subprocess.run([sys.executable, str(LAUNCHER), str(spec_file)], check=True, timeout=60)
    assert not (tmp_path / "ran").exists()
