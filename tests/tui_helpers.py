"""A real project with runs in every state, built once per test module with the real services.

Workspace ``exp`` (slot w1) runs one pipeline of four independent stages:
  train    completes (metrics, outputs)            → awaits finalization
  sleeper  keeps running (metrics, heartbeat, log) → active; a monitor hook adds one warning finding
  blocked  the pre-run review blocks it            → failed (review_blocked)
  victim   canceled through the runs service        → canceled
Workspace ``other`` (slot w2) runs ``crash``, which raises   → failed (exit_nonzero), awaits finalization;
  a pending failure pattern is learned from its log (``svs.auto_learn_failures``).
Workspace ``third`` (slot w3, made on demand by ``third_workspace``) has ``nap`` (sleeps until
stopped) and ``quick`` (completes after 1.5 s), for tests that start their own runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from goldfish.project import Project
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, Env, create_workspace, file_stage, make_env, wait_state

SLEEPER = '''
import time
from goldfish.io import flush_metrics, get_output_path, heartbeat, log_metric, should_stop
for step in range(100000):
    log_metric("acc", 0.5 + 0.4 * (1 - 1 / (step + 1)), step=step)
    heartbeat("training")
    print(f"step {step} acc {0.5 + 0.4 * (1 - 1 / (step + 1)):.4f}", flush=True)
    flush_metrics()
    if should_stop():
        break
    time.sleep(0.2)
get_output_path("out").write_text("stopped")
'''

CRASH = '''
from goldfish.io import flush_metrics, log_metric
for step in range(3):
    log_metric("acc", 0.3 + step / 100, step=step)
    print(f"epoch {step}", flush=True)
flush_metrics()
raise RuntimeError("simulated: CUDA out of memory")
'''

TUI_HOOKS = "tests.tui_hooks"


@dataclass
class TuiFixture:
    env: Env
    ids: dict[str, str]  # stage name → stage run id
    prun: dict[str, str] = field(default_factory=dict)  # workspace → pipeline run id

    def open(self, source: str = "tui") -> Project:
        return self.env.open(source)

    @property
    def root(self) -> Path:
        return self.env.root


def _slot_env(env: Env, slot: str) -> Env:
    other = Env(env.root)
    other.slot = env.root / "workspaces" / slot
    return other


def _install_tui_hooks(site_dir: Path) -> None:
    dist = site_dir / "goldfish_tui_hooks-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: goldfish-tui-hooks\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(f"[goldfish.run_hooks]\ntui = {TUI_HOOKS}\n")


def build(tmp: Path, mp: pytest.MonkeyPatch) -> TuiFixture:
    env = make_env(tmp, mp, hooks=True)
    _install_tui_hooks(tmp / "pythonpath")
    env.configure(pre_run_review={"enabled": True}, jobs={"max_parallel_stages": 4, "heartbeat_grace_seconds": 120},
                  svs={"auto_learn_failures": True})
    env.write(
        [file_stage("train"), file_stage("sleeper"), file_stage("blocked"), file_stage("victim")],
        {"train": WRITE_OUTPUTS, "sleeper": SLEEPER, "blocked": WRITE_OUTPUTS, "victim": SLEEPER},
        configs={"blocked": {"block_review": True}, "sleeper": {"monitor_warn": True}, "victim": {"value": 7}},
    )
    create_workspace(env, "other", slot="w2")
    _slot_env(env, "w2").write([file_stage("crash")], {"crash": CRASH})
    project = env.open("test")
    from tests.source_helpers import npy_meta, write_npy

    data = env.root / "data" / "features.npy"
    size = write_npy(data)
    text = "Synthetic features for the dashboard tests"
    project.sources.register_source("features", str(data), text, "Register a source so the sources view has a row",
                                    npy_meta(size, description=text))
    # One result per pipeline run: train carries w1's; sleeper, blocked and victim support it.
    started = project.runs.run("w1", reason=REASON, results_spec={**SPEC, "stage": "train"})
    other = project.runs.run("w2", reason="Second workspace: a stage that crashes", results_spec=SPEC)
    ids = {s.stage: s.stage_run_id for s in (*started.stage_runs, *other.stage_runs)}
    wait_state(project, ids["victim"], {"running"})
    project.runs.cancel(ids["victim"], "Fixture: canceled to show the canceled state")
    for stage, states in (("train", {"completed"}), ("blocked", {"failed"}), ("crash", {"failed"}),
                          ("victim", {"canceled"})):
        wait_state(project, ids[stage], states, timeout=30)
    wait_metrics(project, ids["sleeper"])
    return TuiFixture(env=env, ids=ids, prun={"exp": started.pipeline_run_id, "other": other.pipeline_run_id})


def wait_metrics(project: Project, run_id: str, timeout: float = 20.0) -> None:
    """Until the running stage's metrics and its monitor finding are on the run doc."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = project.runs.get(run_id)
        if (doc.get("metrics_summary") or {}).get("acc", {}).get("count", 0) >= 3 and (doc.get("svs") or {}).get(
                "during"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{run_id} never reported metrics and a monitor finding: {project.runs.get(run_id)}")


def stop_all(fixture: TuiFixture) -> None:
    project = fixture.open("test")
    for entry in project.runs.list_active():
        for run_id in entry["stage_runs"].values():
            doc = project.runs.get(run_id)
            if doc["state"] not in ("completed", "failed", "terminated", "canceled", "skipped"):
                project.runs.cancel(run_id, "Test teardown: stop the sleeping stage", wait_seconds=10)


def module_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TuiFixture]:
    """Body of a module-scoped fixture (the function-scoped monkeypatch cannot be used there)."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("home")
    mp.setenv("HOME", str(home))
    mp.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig-none"))
    mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in list(os.environ):
        if key.startswith("GOLDFISH_"):
            mp.delenv(key, raising=False)
    fixture = build(tmp_path_factory.mktemp("tui"), mp)
    try:
        yield fixture
    finally:
        stop_all(fixture)
        mp.undo()


def run_states(project: Project, ids: dict[str, str]) -> dict[str, Any]:
    return {stage: project.runs.get(rid)["state"] for stage, rid in ids.items()}


def third_workspace(fx: TuiFixture) -> None:
    """Workspace ``third`` in w3 with a sleeping stage (nap) and a quick one (quick), created once."""
    if fx.open("test").store.table("workspaces").has("third"):
        return
    create_workspace(fx.env, "third", slot="w3")
    _slot_env(fx.env, "w3").write([file_stage("nap"), file_stage("quick")], {"nap": SLEEPER, "quick": WRITE_OUTPUTS},
                                  configs={"quick": {"sleep": 1.5}})


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Reload the screen until ``predicate()`` holds (state that other processes change)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        pilot.app.reload_screen()
        await pilot.app.settle()
        await pilot.pause(0.1)
