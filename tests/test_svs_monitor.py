"""During-run monitor on real run directories: files written by the real stage SDK in subprocesses,
incremental reads, rules, auto-stop, persisted state, and the AI monitor against a fake Messages API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from goldfish.config.svs import SvsConfig
from goldfish.svs import monitor_rules as mr
from goldfish.svs.monitor import STATE_FILE, MonitorSpec, RunMonitor
from tests.sdk_helpers import REPO, StageEnv, ok
from tests.svs_helpers import fake_anthropic

AI_WAIT = 120.0  # wait for a background AI call with a deadline: importing its client is slow on a loaded box


def cfg(**kw: Any) -> SvsConfig:
    return SvsConfig.model_validate({"test_mode": True, "ai_during_run_interval_seconds": 1, **kw})


def spec(**kw: Any) -> MonitorSpec:
    base = {"stage": "train", "run_id": "stage-0a1b2c3d", "started_at": 1000.0, "stall_seconds": 100_000}
    return MonitorSpec.model_validate({**base, **kw})


def write_metrics(run_dir: Path, values: list[float], name: str = "train/loss", start: int = 0) -> None:
    rt = run_dir / "outputs" / ".goldfish"
    rt.mkdir(parents=True, exist_ok=True)
    with open(rt / "metrics.jsonl", "a") as f:
        for i, v in enumerate(values, start=start):
            f.write(json.dumps({"type": "metric", "name": name, "value": v, "step": i,
                                "timestamp": "2026-01-01T00:00:00.000000Z"}) + "\n")


def checks(findings: list[Any]) -> list[str]:
    return [f.check for f in findings]


# --------------------------------------------------------------------------- NaN through the real SDK
NAN_STAGE = """\
from goldfish.metrics import log_metric, finish
for step in range(12):
    log_metric("train/loss", 1.0 / (step + 1), step=step)
log_metric("train/loss", float("nan"), step=12)
finish()
"""


def test_nan_loss_from_the_sdk_is_an_error_finding_once(tmp_path: Path) -> None:
    env = StageEnv(tmp_path / "run")
    ok(env.run(NAN_STAGE))
    monitor = RunMonitor(env.root, cfg(), spec())
    tick = monitor.tick(now=1001.0)
    nan = [f for f in tick.findings if f.check == "non_finite_metric"]
    assert len(nan) == 1 and nan[0].severity == "error" and nan[0].signal == "train/loss"
    assert tick.stop_request is None and not (env.rt / "stop_requested").exists()  # auto-stop is off
    assert monitor.tick(now=1100.0).findings == []  # shown once


def test_auto_stop_stops_a_running_stage_on_nan(tmp_path: Path) -> None:
    """A live stage logs a NaN loss; the monitor requests a stop; the stage sees should_stop() and exits."""
    env = StageEnv(tmp_path / "run")
    code = textwrap.dedent("""\
        import time
        from goldfish.io import should_stop, get_stop_reason, runtime_log, flush_metrics
        from goldfish.metrics import log_metric
        for step in range(600):
            log_metric("train/loss", float("nan") if step >= 20 else 1.0 / (step + 1), step=step)
            flush_metrics()
            if should_stop():
                runtime_log("stopping: " + get_stop_reason())
                raise SystemExit(3)
            time.sleep(0.01)
        raise SystemExit(0)
    """)
    script = env.root / "stage.py"
    env.root.mkdir(parents=True, exist_ok=True)
    script.write_text(code)
    base = {k: v for k, v in os.environ.items() if not k.startswith("GOLDFISH_")}
    proc = subprocess.Popen([sys.executable, str(script)], env={**base, **env.env(), "PYTHONPATH": str(REPO)},
                            cwd=env.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    monitor = RunMonitor(env.root, cfg(ai_during_run_auto_stop=True), spec(started_at=time.time()))
    stop = None
    deadline = time.time() + 30
    while proc.poll() is None and time.time() < deadline:
        tick = monitor.tick()
        stop = stop or tick.stop_request
        time.sleep(0.05)
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 3, output  # it stopped itself well before step 600
    assert stop is not None and "non_finite_metric" in stop
    assert (env.rt / "stop_requested").read_text() == stop
    assert "stopping: SVS monitor stopped the run" in (env.rt / "logs.txt").read_text()


# --------------------------------------------------------------------------- metric rules
def test_loss_spike_and_divergence(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_metrics(run, [1.0 - 0.01 * i for i in range(20)])
    monitor = RunMonitor(run, cfg(ai_during_run_auto_stop=True), spec())
    assert monitor.tick(now=1001.0).findings == []
    write_metrics(run, [50.0], start=20)
    tick = monitor.tick(now=1010.0)
    assert checks(tick.findings) == ["loss_spike"] and tick.findings[0].severity == "warning"
    assert tick.stop_request is None
    write_metrics(run, [60.0, 70.0, 80.0, 90.0], start=21)
    tick = monitor.tick(now=1020.0)
    assert checks(tick.findings) == ["loss_diverged"]
    assert tick.findings[0].severity == "error" and tick.findings[0].value == 90.0
    assert tick.stop_request and "loss_diverged" in tick.stop_request
    assert (run / "outputs" / ".goldfish" / "stop_requested").is_file()


def test_recovering_spike_is_not_divergence(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_metrics(run, [1.0] * 15 + [50.0] + [0.9] * 10)
    tick = RunMonitor(run, cfg(), spec()).tick(now=1001.0)
    assert checks(tick.findings) == ["loss_spike"]


def test_plateau_of_the_primary_metric(tmp_path: Path) -> None:
    run = tmp_path / "run"
    values = [0.5 + 0.01 * i for i in range(20)] + [0.69] * 50
    write_metrics(run, values, name="val/acc")
    tick = RunMonitor(run, cfg(), spec(primary_metric="val/acc", direction="maximize")).tick(now=1001.0)
    assert checks(tick.findings) == ["plateau"] and tick.findings[0].confidence == "medium"
    improving = tmp_path / "run2"
    write_metrics(improving, [0.5 + 0.002 * i for i in range(80)], name="val/acc")
    assert RunMonitor(improving, cfg(), spec(primary_metric="val/acc", direction="maximize")).tick(now=1001.0).findings == []


def test_steady_training_has_no_findings(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_metrics(run, [2.0 * 0.97**i for i in range(300)])
    write_metrics(run, [0.1 * i for i in range(300)], name="train/lr")
    assert RunMonitor(run, cfg(), spec()).tick(now=1001.0).findings == []


# --------------------------------------------------------------------------- logs
def test_log_rules_oom_cuda_traceback_nan(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "outputs" / ".goldfish").mkdir(parents=True)
    (run / "outputs" / ".goldfish" / "logs.txt").write_text(
        "[2026-01-01 00:00:00] INFO: epoch 1 loss: 0.52\n"
        "[2026-01-01 00:00:01] INFO: epoch 2 loss: nan\n")
    (run / "logs" / "stdout.log").write_text(
        "Traceback (most recent call last):\n  File \"/app/modules/train.py\", line 3, in <module>\n"
        "    x = y[10]\nIndexError: list index out of range\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
        "RuntimeError: CUDA error: device-side assert triggered\n")
    tick = RunMonitor(run, cfg(), spec()).tick(now=1001.0)
    got = {f.check: f for f in tick.findings}
    assert set(got) == {"non_finite_log", "traceback", "oom", "cuda_error"}
    assert "IndexError: list index out of range" in got["traceback"].message
    assert got["oom"].severity == "error" and got["traceback"].severity == "warning"


def test_normal_logs_are_quiet(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "outputs" / ".goldfish").mkdir(parents=True)
    (run / "outputs" / ".goldfish" / "logs.txt").write_text(
        "[2026-01-01 00:00:00] INFO: loss 0.25, grad_norm 1.5, lr 1e-3\n"
        "[2026-01-01 00:00:00] INFO: info: finite values only; inference on 10 batches\n")
    assert RunMonitor(run, cfg(), spec()).tick(now=1001.0).findings == []


def test_incremental_reads_partial_lines_and_truncation(tmp_path: Path) -> None:
    run = tmp_path / "run"
    logs = run / "outputs" / ".goldfish" / "logs.txt"
    logs.parent.mkdir(parents=True)
    logs.write_text("[t] INFO: ok\n[t] ERROR: CUDA out of mem")  # the last line is still being written
    monitor = RunMonitor(run, cfg(), spec())
    assert monitor.tick(now=1001.0).findings == []
    with open(logs, "a") as f:
        f.write("ory\n")
    assert checks(monitor.tick(now=1010.0).findings) == ["oom"]
    logs.write_text("[t] INFO: restarted\n")  # truncated: start over
    monitor.tick(now=1020.0)
    assert monitor.state["offsets"]["logs"] == len("[t] INFO: restarted\n")


def test_state_persists_across_monitors(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_metrics(run, [1.0] * 15 + [50.0])
    first = RunMonitor(run, cfg(), spec())
    assert checks(first.tick(now=1001.0).findings) == ["loss_spike"]
    state = json.loads((run / STATE_FILE).read_text())
    assert state["offsets"]["metrics"] == (run / "outputs" / ".goldfish" / "metrics.jsonl").stat().st_size
    again = RunMonitor(run, cfg(), spec())  # a re-attached runner
    assert again.tick(now=1010.0).findings == []
    write_metrics(run, [0.5], start=16)
    assert again.tick(now=1020.0).findings == [] and again.state["series"]["train/loss"]["count"] == 17
    assert not (run / "outputs" / STATE_FILE).exists()


def test_stall_warns_once_and_rearms(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_metrics(run, [1.0])
    monitor = RunMonitor(run, cfg(), spec(stall_seconds=30))
    assert monitor.tick(now=1001.0).findings == []
    tick = monitor.tick(now=1040.0)
    assert checks(tick.findings) == ["stalled"] and tick.findings[0].severity == "warning"
    assert monitor.tick(now=1080.0).findings == []
    hb = run / "outputs" / ".goldfish" / "heartbeat"
    hb.write_text(json.dumps({"timestamp": 1085.0, "iso_time": "x", "message": None, "pid": 1}))
    assert monitor.tick(now=1090.0).findings == []
    assert checks(monitor.tick(now=1125.0).findings) == ["stalled"]


def test_rules_run_at_most_every_few_seconds(tmp_path: Path) -> None:
    run = tmp_path / "run"
    monitor = RunMonitor(run, cfg(ai_during_run_interval_seconds=120), spec())
    monitor.tick(now=1001.0)
    write_metrics(run, [1.0] * 15 + [50.0])
    assert monitor.tick(now=1002.0).findings == []  # too soon
    assert checks(monitor.tick(now=1007.0).findings) == ["loss_spike"]


def test_disabled_svs_sees_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_metrics(run, [1.0] * 15 + [float("inf")])
    assert RunMonitor(run, cfg(enabled=False), spec()).tick(now=1001.0).findings == []


# --------------------------------------------------------------------------- AI monitor
def _ai_cfg(url: str, **kw: Any) -> SvsConfig:
    return cfg(agent_provider="anthropic", anthropic_base_url=url, anthropic_api_key="sk-test", **kw)


def test_ai_monitor_findings_and_stop(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_metrics(run, [1.0 - 0.01 * i for i in range(5)])
    with fake_anthropic() as fake:
        fake.reply_tool("submit_monitor_review", {
            "findings": [{"check": "lr_too_high", "severity": "warning", "message": "loss oscillates"}],
            "request_stop": True, "stop_reason": "loss will not converge", "summary": "bad run"})
        monitor = RunMonitor(run, _ai_cfg(fake.url, ai_during_run_auto_stop=True), spec(primary_metric="train/loss"))
        assert monitor.tick(now=1001.0).findings == []  # AI call started in the background
        monitor.close(AI_WAIT)
        tick = monitor.tick(now=1002.0)
    assert checks(tick.findings) == ["ai:lr_too_high", "ai:request_stop"]
    assert {f.source for f in tick.findings} == {"anthropic"}
    assert tick.stop_request and "loss will not converge" in tick.stop_request
    assert monitor.state["ai_summary"] == "bad run"
    prompt = fake.requests[0]["body"]["messages"][0]["content"]
    assert "train/loss" in prompt and '"count": 5' in prompt


def test_ai_monitor_waits_for_new_data_and_respects_rate_limit(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_metrics(run, [1.0])
    with fake_anthropic() as fake:
        fake.reply_tool("submit_monitor_review", {"findings": [], "summary": "fine"})
        monitor = RunMonitor(run, _ai_cfg(fake.url, ai_during_run_max_runs_per_hour=2), spec())
        monitor.tick(now=1001.0)
        monitor.close(AI_WAIT)
        monitor.tick(now=1010.0)  # no new metrics since the last review: no call
        for i, now in enumerate((1020.0, 1030.0, 1040.0)):
            write_metrics(run, [1.0], start=i + 1)
            monitor.tick(now=now)
            monitor.close(AI_WAIT)
    assert len(fake.requests) == 2  # the third due review is over the hourly budget


def test_ai_monitor_disabled_after_three_failures(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with fake_anthropic() as fake:
        fake.reply_text("not a tool call")
        monitor = RunMonitor(run, _ai_cfg(fake.url), spec())
        found = []
        for i in range(5):
            write_metrics(run, [1.0], start=i)
            found += monitor.tick(now=1000.0 + 10 * (i + 1)).findings
            monitor.close(AI_WAIT)
        found += monitor.tick(now=1100.0).findings
    assert len(fake.requests) == 3
    assert checks(found) == ["ai_monitor_disabled"] and "malformed" in found[0].message
    assert monitor.state["ai_disabled"] is True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.01, 100.0), max_size=150), st.lists(st.floats(0.01, 2000.0), min_size=1, max_size=150))
def test_first_spike_matches_the_definition(recent: list[float], new: list[float]) -> None:
    """The O(n) sliding minimum finds the same first spike as checking each value against the
    minimum of the SPIKE_WINDOW values before it (with at least SPIKE_MIN_HISTORY of them)."""
    history = list(recent)
    expected = None
    for value in new:
        window = history[-mr.SPIKE_WINDOW:]
        if len(window) >= mr.SPIKE_MIN_HISTORY and value > mr.SPIKE_RATIO * min(window):
            expected = (value, mr.SPIKE_RATIO * min(window))
            break
        history.append(value)
    assert mr.first_spike(recent, new) == expected
