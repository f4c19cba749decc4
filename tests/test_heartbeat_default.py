"""Heartbeat supervision by default: after a first heartbeat, ten minutes of silence stops a stage;
a stage that never heartbeats is left to its max runtime."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from goldfish.runs.stage_driver import DEFAULT_HEARTBEAT_TIMEOUT_SECONDS, StageDriver
from tests.run_helpers import REASON, SPEC, file_stage, make_env, wait_state, wait_terminal

HANGS = """\
import time
from goldfish.io import heartbeat
heartbeat("loaded the data")
time.sleep(120)  # hangs: no more heartbeats
"""


def test_a_stage_that_heartbeats_then_hangs_is_stopped_at_the_default(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)  # no compute.heartbeat_timeout_seconds anywhere
    env.write([file_stage("hang")], {"hang": HANGS})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    run_id = started.stage_runs[0].stage_run_id
    wait_state(project, run_id, {"running"})
    beat = project.runs_dir / run_id / "outputs" / ".goldfish" / "heartbeat"
    deadline = time.monotonic() + 20
    while not beat.exists():
        assert time.monotonic() < deadline, "the stage never wrote its heartbeat"
        time.sleep(0.05)
    assert project.runs.get(run_id)["heartbeat_timeout_seconds"] is None
    # Ten minutes and a second of silence, as the runner sees it: the last heartbeat is that old.
    silent_since = time.time() - DEFAULT_HEARTBEAT_TIMEOUT_SECONDS - 1
    beat.write_text(json.dumps({"timestamp": silent_since, "message": "loaded the data", "pid": 0}))
    done = wait_terminal(project, started.pipeline_run_id, timeout=30)
    doc = project.runs.get(run_id)
    assert done.status == "failed" and (doc["state"], doc["cause"]) == ("terminated", "no_heartbeat")
    assert "default heartbeat timeout of 600s" in doc["error"] and doc["infra_outcome"] == "crashed"


def _driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StageDriver:
    env = make_env(tmp_path, monkeypatch)
    project = env.project
    driver = StageDriver(SimpleNamespace(project=project, workspace="exp"), "stage-0000beef")  # type: ignore[arg-type]
    driver.runtime_dir.mkdir(parents=True)
    return driver


def test_a_stage_that_never_heartbeats_runs_its_fifteen_minutes(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    driver = _driver(tmp_path, monkeypatch)
    started = 1_000_000.0
    doc = {"heartbeat_timeout_seconds": None, "max_runtime_seconds": 3600, "max_runtime_source": "defaults"}
    assert driver.stop_reason(doc, started + 15 * 60, started) is None  # never heartbeated: not killed
    assert driver.stop_reason(doc, started + 3601, started)[1] == "timeout"  # type: ignore[index]  # its bound
    (driver.runtime_dir / "heartbeat").write_text(json.dumps({"timestamp": started + 10}))
    assert driver.stop_reason(doc, started + 10 + DEFAULT_HEARTBEAT_TIMEOUT_SECONDS, started) is None
    reason = driver.stop_reason(doc, started + 11 + DEFAULT_HEARTBEAT_TIMEOUT_SECONDS, started)
    assert reason is not None and reason[:2] == ("terminated", "no_heartbeat")
    # An explicit timeout also covers a stage that never heartbeats (counted from its start).
    (driver.runtime_dir / "heartbeat").unlink()
    explicit = {**doc, "heartbeat_timeout_seconds": 300}
    assert driver.stop_reason(explicit, started + 301, started)[1] == "no_heartbeat"  # type: ignore[index]
