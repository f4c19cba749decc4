"""Cancel from every non-terminal state, hooks, and recovery after processes die."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from goldfish.runs.lease import LeaseFile
from goldfish.runs.reconciler import reconcile
from goldfish.runs.state import transition
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, file_stage, make_env, wait_state, wait_terminal

SLEEPER = "import time\nfrom pathlib import Path\nimport os\nfor _ in range(300):\n    time.sleep(0.1)\n"


def _lease_pid(project, prun_id: str) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lease = LeaseFile(project.runs_dir / prun_id).read()
        if lease is not None and lease.pid:
            return lease.pid
        time.sleep(0.05)
    raise AssertionError("runner never took its lease")


def test_cancel_in_every_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch, hooks=True)
    env.configure(pre_run_review={"enabled": True}, jobs={"max_parallel_stages": 4})
    env.write(
        [file_stage("slow"), file_stage("waiting", inputs={"x": "slow"}), file_stage("prep"),
         file_stage("post"), file_stage("run")],
        {"slow": SLEEPER, "waiting": WRITE_OUTPUTS, "prep": WRITE_OUTPUTS, "post": WRITE_OUTPUTS, "run": SLEEPER},
        configs={"prep": {"hold": "preparing"}, "post": {"hold": "post_run"}},
    )
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    ids = {s.stage: s.stage_run_id for s in started.stage_runs}
    held = {"waiting": "pending", "prep": "preparing", "post": "post_run", "run": "running"}
    for stage, state in held.items():
        wait_state(project, ids[stage], {state})
    for stage, state in held.items():
        result = project.runs.cancel(ids[stage], f"test cancels while {state} now")
        assert result.success and result.previous_state == state
        doc = wait_state(project, ids[stage], {"canceled"}, timeout=10)
        assert doc["cause"] == "manual" and "while" in doc["error"] and doc["infra_outcome"] == "canceled"
    assert not (project.runs_dir / ids["waiting"] / "launch.json").exists()
    assert not (project.runs_dir / ids["prep"] / "launch.json").exists()
    again = project.runs.cancel(ids["run"], "second cancel is harmless")
    assert not again.success and "already canceled" in again.message
    review = project.runs.get(ids["post"])["svs"]["review"]
    # the built-in SVS reviewer (rules) and the test hook both approved; the first approval names the provider
    assert review["decision"] == "approved" and review["provider"] in ("rules", "test")
    project.runs.cancel(started.pipeline_run_id, "stop the slow upstream too")
    done = wait_terminal(project, started.pipeline_run_id)
    assert done.status == "canceled"


def test_cancel_in_launching_never_launches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch, hooks=True)
    env.configure(pre_run_review={"enabled": True})
    env.write([file_stage("a")], {"a": WRITE_OUTPUTS}, configs={"a": {"hold": "preparing"}})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    run_id = started.stage_runs[0].stage_run_id
    wait_state(project, run_id, {"preparing"})
    time.sleep(0.3)  # inside the review hook
    os.kill(_lease_pid(project, started.pipeline_run_id), signal.SIGKILL)
    # The runner died just after moving the run to launching (simulated: nothing was launched).
    with project.store.transaction() as tx:
        transition(tx, run_id, "launching", expected="preparing", source="test")
    result = project.runs.cancel(run_id, "canceled while launching after a crash")
    assert result.success
    doc = wait_state(project, run_id, {"canceled"})
    assert doc["history"][-1]["from"] == "launching" and doc["history"][-1]["source"] == "runner"
    assert not (project.runs_dir / run_id / "launch.json").exists()


def test_monitor_stop_and_blocking_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch, hooks=True)
    # The grace must outlast how long the obeying stage takes to notice and exit on a loaded machine
    # (and stay below the 30 s the ignoring one sleeps).
    env.configure(pre_run_review={"enabled": True}, svs={"ai_during_run_stop_grace_seconds": 10},
                  jobs={"max_parallel_stages": 3})
    ignores = SLEEPER
    obeys = "import time\nfrom goldfish.io import should_stop, save_output\nfrom pathlib import Path\n" \
            "from goldfish.io import get_output_path\nwhile not should_stop():\n    time.sleep(0.05)\n" \
            "get_output_path('out').write_text('stopped early')\n"
    env.write([file_stage("ignores"), file_stage("obeys"), file_stage("blocked")],
              {"ignores": ignores, "obeys": obeys, "blocked": WRITE_OUTPUTS},
              configs={"ignores": {"monitor_stop": 0.3}, "obeys": {"monitor_stop": 0.3},
                       "blocked": {"block_review": True}})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    ids = {s.stage: s.stage_run_id for s in started.stage_runs}
    wait_terminal(project, started.pipeline_run_id, timeout=120)
    ignored, obeyed, blocked = (project.runs.get(ids[s]) for s in ("ignores", "obeys", "blocked"))
    assert (ignored["state"], ignored["cause"]) == ("terminated", "ai_stopped")
    assert "loss diverged" in ignored["error"] and ignored["svs"]["during"][0]["check"] == "test"
    assert obeyed["state"] == "completed", obeyed["error"]
    assert (blocked["state"], blocked["cause"], blocked["infra_outcome"]) == ("failed", "review_blocked", "blocked")
    assert "test reviewer blocks this" in blocked["error"]


def test_runner_killed_mid_stage_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    code = WRITE_OUTPUTS
    env.write([file_stage("a"), file_stage("b", inputs={"x": "a"}), file_stage("gone")],
              {"a": code, "b": code, "gone": SLEEPER}, configs={"a": {"sleep": 1.5}})
    env.configure(jobs={"max_parallel_stages": 3})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    ids = {s.stage: s.stage_run_id for s in started.stage_runs}
    wait_state(project, ids["a"], {"running"})
    gone = wait_state(project, ids["gone"], {"running"})
    os.kill(_lease_pid(project, started.pipeline_run_id), signal.SIGKILL)
    os.killpg(gone["backend_handle"]["pgid"], signal.SIGKILL)  # dies too, leaving no exit code
    time.sleep(0.3)
    assert project.runs.get(ids["a"])["state"] == "running"
    assert reconcile(project) == [started.pipeline_run_id]
    assert reconcile(project) == []  # the new lease is live: no second runner
    done = wait_terminal(project, started.pipeline_run_id)
    a, b, lost = (project.runs.get(ids[s]) for s in ("a", "b", "gone"))
    assert a["state"] == "completed" and b["state"] == "completed"
    assert (lost["state"], lost["cause"], lost["infra_outcome"]) == ("terminated", "orphaned", "crashed")
    assert done.status == "failed"
    assert a["history"][-1]["source"] == "runner"


def test_killing_the_caller_does_not_stop_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("a")], {"a": WRITE_OUTPUTS}, configs={"a": {"sleep": 1.0}})
    script = (
        "import sys, time\nfrom goldfish.project import Project\n"
        f"p = Project.open({str(env.root)!r}, source='mcp')\n"
        f"r = p.runs.run('w1', reason={REASON!r}, results_spec={SPEC!r})\n"
        "print(r.pipeline_run_id, flush=True)\ntime.sleep(60)\n"
    )
    caller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert caller.stdout is not None
    prun_id = caller.stdout.readline().strip()
    caller.kill()
    caller.wait()
    project = env.project
    deadline = time.monotonic() + 20
    while project.runs.status(prun_id).status != "completed":  # no reconcile: the runner is on its own
        assert time.monotonic() < deadline, project.runs.status(prun_id)
        time.sleep(0.1)
    assert project.runs.get(project.runs.status(prun_id).stage_runs[0].stage_run_id)["history"][0]["source"] == "runner"
