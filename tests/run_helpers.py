"""Shared material for the run engine tests: a real project with a mounted slot, stage modules,
and helpers to wait on runs and to prove that bad input wrote nothing."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from goldfish.init import init_project
from goldfish.project import Project

REPO = Path(__file__).resolve().parent.parent

SPEC = {
    "primary_metric": "acc",
    "direction": "maximize",
    "min_value": 0.5,
    "goal_value": 0.9,
    "dataset_split": "val",
    "tolerance": 0.01,
    "context": "Engine test run measuring accuracy on the validation split.",
}
REASON = "Engine test: check the pipeline runs end to end"

# A stage that writes its outputs (file outputs) and a metric with plain files (the on-disk contract).
WRITE_OUTPUTS = '''
import json, os, sys, time
from pathlib import Path
cfg = json.loads(os.environ["GOLDFISH_STAGE_CONFIG"])
out = Path(os.environ["GOLDFISH_OUTPUTS_DIR"])
start = time.time()
for name, spec in cfg["inputs"].items():
    assert Path(spec["location"]).exists(), name
sleep = float(cfg.get("sleep", 0))
time.sleep(sleep)
for name, spec in cfg["outputs"].items():
    (out / name).write_text(json.dumps({"stage": cfg["stage"], "config": cfg.get("value")}))
rt = out / ".goldfish"
rt.mkdir(exist_ok=True)
with open(rt / "metrics.jsonl", "a") as f:
    for step in range(5):
        f.write(json.dumps({"type": "metric", "name": "acc", "value": 0.5 + step / 10, "step": step,
                            "timestamp": time.time()}) + "\\n")
(rt / "times.json").write_text(json.dumps({"start": start, "end": time.time()}))
print("stage", cfg["stage"], "done", flush=True)
'''


def file_stage(name: str, *, inputs: dict[str, str] | None = None, outputs: tuple[str, ...] = ("out",)) -> dict[str, Any]:
    return {
        "name": name,
        "inputs": {k: {"from_stage": v, "signal": "out", "schema": None} for k, v in (inputs or {}).items()},
        "outputs": {o: {"type": "file", "schema": None} for o in outputs},
    }


class Env:
    """A project with workspace ``exp`` mounted in ``w1``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.slot = self.root / "workspaces" / "w1"

    def open(self, source: str = "test") -> Project:
        return Project.open(self.root, source=source)  # type: ignore[arg-type]

    @property
    def project(self) -> Project:
        return self.open()

    def configure(self, **sections: dict[str, Any]) -> None:
        path = self.root / "goldfish.yaml"
        data = yaml.safe_load(path.read_text())
        for key, values in sections.items():
            data.setdefault(key, {}).update(values)
        path.write_text(yaml.safe_dump(data))

    def write(self, stages: list[dict[str, Any]], modules: dict[str, str], configs: dict[str, Any] | None = None) -> None:
        (self.slot / "modules").mkdir(parents=True, exist_ok=True)
        (self.slot / "pipeline.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
        for name, code in modules.items():
            (self.slot / "modules" / f"{name}.py").write_text(code)
        for name, cfg in (configs or {}).items():
            (self.slot / "configs").mkdir(exist_ok=True)
            (self.slot / "configs" / f"{name}.yaml").write_text(yaml.safe_dump(cfg))


def make_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, hooks: bool = False) -> Env:
    shim_dir = tmp_path / "pythonpath"
    shim_dir.mkdir()
    if hooks:  # tests.engine_hooks as an entry point of group goldfish.run_hooks, for runner processes
        dist = shim_dir / "goldfish_test_hooks-0.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: goldfish-test-hooks\nVersion: 0.0\n")
        (dist / "entry_points.txt").write_text("[goldfish.run_hooks]\ntest = tests.engine_hooks\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(shim_dir)]))
    result = init_project(tmp_path / "proj", "proj")
    env = Env(result.project_root)
    env.configure(jobs={"runner_lease_seconds": 5, "heartbeat_grace_seconds": 1},
                  local={"stop_grace_seconds": 1}, pre_run_review={"enabled": False})
    create_workspace(env, "exp", slot="w1")
    return env


def create_workspace(env: Env, name: str, slot: str | None = None) -> None:
    """Create (and optionally mount) a workspace through the workspaces service."""
    project = env.project
    project.workspaces.create(name, goal="engine tests", reason="workspace for the run engine tests")
    if slot is not None:
        project.workspaces.mount(name, slot, reason="mount for the run engine tests")


def wait_terminal(project: Project, prun_id: str, timeout: float = 30.0) -> Any:
    result = project.runs.wait(prun_id, timeout)
    assert result.done, f"{prun_id} not done after {timeout}s: {result}"
    return result


def wait_state(project: Project, run_id: str, states: set[str], timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = project.runs.get(run_id)
        if doc["state"] in states:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"{run_id} stayed {doc['state']} (wanted {states}): {doc.get('error')}")
        time.sleep(0.05)


def snapshot(env: Env) -> str:
    """Digest of the store (partitions + event logs), the dev repo's refs and the runs dir."""
    project = env.project
    h = hashlib.sha256()
    store = project.store_dir
    for path in sorted(store.rglob("*")):
        if path.is_file() and path.name not in (".lock",) and not path.name.endswith(".tmp"):
            h.update(str(path.relative_to(store)).encode())
            h.update(path.read_bytes())
    import subprocess

    refs = subprocess.run(["git", "-C", str(project.dev_path), "for-each-ref"], capture_output=True).stdout
    h.update(refs)
    runs = project.runs_dir
    for path in sorted(runs.rglob("*")) if runs.exists() else []:
        h.update(str(path.relative_to(runs)).encode())
    return h.hexdigest()
