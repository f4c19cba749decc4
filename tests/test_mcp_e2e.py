"""The seed's "Starting a New Experiment" flow over stdio against a real `goldfish serve`.

create_workspace → mount → write pipeline.yaml, configs and a numpy training module into the slot →
validate_config → run(results_spec) and wait → inspect_record / inspect_run / logs →
finalize_run → list_history → tag_record → get_experiment_context; then a second run, refused by
the finalization gate until the first one is finalized. Real runner and stage subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from goldfish.init import init_project
from tests.mcp_helpers import stdio_params

pytestmark = pytest.mark.slow

PIPELINE = """\
stages:
  - name: train
    outputs:
      weights:
        type: npy
        schema:
          kind: tensor
          shape: [8]
          dtype: float64
"""
TRAIN_CONFIG = """\
compute:
  profile: local
learning_rate: 0.1
epochs: 40
"""
TRAIN = '''\
"""Linear regression by gradient descent on synthetic data."""
import numpy as np

from goldfish.io import get_config, heartbeat, runtime_log, save_output, should_stop
from goldfish.metrics import finish, log_metric


def main():
    cfg = get_config()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8))
    true_w = np.linspace(-1.0, 1.0, 8)
    y = x @ true_w + 0.01 * rng.normal(size=256)
    split = 200
    w = np.zeros(8)
    for epoch in range(int(cfg["epochs"])):
        grad = 2 * x[:split].T @ (x[:split] @ w - y[:split]) / split
        w -= float(cfg["learning_rate"]) * grad
        loss = float(np.mean((x[:split] @ w - y[:split]) ** 2))
        val_r2 = 1 - float(np.mean((x[split:] @ w - y[split:]) ** 2) / np.var(y[split:]))
        log_metric("train/loss", loss, step=epoch)
        log_metric("val_r2", val_r2, step=epoch)
        runtime_log(f"epoch {epoch} loss {loss:.4f}")
        heartbeat(f"epoch {epoch}")
        if should_stop():
            break
    save_output("weights", w)
    print(f"final val_r2 {val_r2:.4f}", flush=True)
    finish()
'''
SPEC = {
    "primary_metric": "val_r2",
    "direction": "maximize",
    "min_value": 0.9,
    "goal_value": 0.99,
    "dataset_split": "val",
    "tolerance": 0.003,
    "context": "Baseline linear model on synthetic data; R^2 on the held-out rows.",
}
REASON = {"description": "Baseline linear regression", "hypothesis": "Gradient descent reaches R^2 above 0.9"}


class Agent:
    """Thin wrapper: every call must succeed unless ``error=True``."""

    def __init__(self, client: Client):
        self.client = client

    async def __call__(self, tool: str, **args: Any) -> dict[str, Any]:
        res = await self.client.call_tool(tool, args)
        assert not res.is_error, f"{tool}({args}) failed: {res.content[0].text if res.content else res}"
        assert isinstance(res.structured_content, dict)
        return res.structured_content

    async def error(self, tool: str, **args: Any) -> str:
        res = await self.client.call_tool(tool, args)
        assert res.is_error, f"{tool}({args}) should have failed: {res.structured_content}"
        return str(res.content[0].text)


def _write_slot(slot: Path) -> None:
    (slot / "configs").mkdir(parents=True, exist_ok=True)
    (slot / "modules").mkdir(parents=True, exist_ok=True)
    (slot / "pipeline.yaml").write_text(PIPELINE)
    (slot / "configs" / "train.yaml").write_text(TRAIN_CONFIG)
    (slot / "modules" / "train.py").write_text(TRAIN)


async def test_new_experiment_flow_over_stdio(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    async with Client(stdio_params(root), read_timeout_seconds=120) as client:
        call = Agent(client)
        status = await call("status")
        assert status["initialized"] and all(s["workspace"] is None for s in status["slots"])

        await call("create_workspace", name="lstm_baseline", goal="Train a baseline regressor",
                   reason="Starting new baseline experiment")
        mounted = await call("mount", workspace="lstm_baseline", slot="w1",
                             reason="Begin training module development")
        slot = root / "workspaces" / "w1"
        assert mounted["slot"] == "w1" and slot.is_dir()
        _write_slot(slot)

        check = await call("validate_config", workspace="w1")
        assert check["valid"], check["errors"]

        # The seed: results_spec is required.
        missing = await call.error("run", workspace="w1", reason=REASON)
        assert "results_spec" in missing

        first = await call("run", workspace="w1", stages=["train"], reason=REASON, results_spec=SPEC,
                           wait=True, wait_seconds=120)
        assert first["done"] and first["status"] == "completed", first
        [stage_run] = first["stage_runs"]
        run_id, record_id = stage_run["stage_run_id"], stage_run["record_id"]

        record = await call("inspect_record", ref=record_id, include=["results", "comparison"])
        auto = json.dumps(record)
        assert "val_r2" in auto and "auto" in auto, record

        infra = await call("inspect_run", run_id=run_id, include=["dashboard", "metadata", "provenance", "svs"])
        assert infra["metadata"]["state"] == "completed"
        assert infra["dashboard"]["metrics"]["val_r2"]["count"] == 40
        assert infra["provenance"]["version"] == first["version"]

        logs = await call("logs", run_id=run_id, tail=50)
        assert "final val_r2" in logs["logs"] and logs["done"]

        # The gate: a second run is refused until the first is finalized.
        (slot / "configs" / "train.yaml").write_text(TRAIN_CONFIG.replace("epochs: 40", "epochs: 60"))
        blocked = await call.error("run", workspace="w1", stages=["train"], reason=REASON, results_spec=SPEC)
        assert run_id in blocked and "finalize_run" in blocked
        pending = await call("list_unfinalized_runs", workspace="lstm_baseline")
        assert run_id in json.dumps(pending)

        value = infra["dashboard"]["metrics"]["val_r2"]["last"]
        await call("finalize_run", record_or_run_id=run_id, results={
            "primary_metric": "val_r2", "direction": "maximize", "value": value, "dataset_split": "val",
            "ml_outcome": "success", "notes": "Reached the goal on the held-out rows.",
        })

        history = await call("list_history", workspace="lstm_baseline")
        [row] = [r for r in history["records"] if r["record_id"] == record_id]
        assert row["results_status"] == "finalized" and row["ml_outcome"] == "success"

        await call("tag_record", ref=run_id, tag="baseline-v1")
        versions = await call("manage_versions", workspace="lstm_baseline", action="list")
        assert "baseline-v1" in json.dumps(versions), "tagging a run also tags its version"

        context = await call("get_experiment_context", workspace="lstm_baseline")
        assert record_id in json.dumps(context) or run_id in json.dumps(context)

        second = await call("run", workspace="w1", stages=["train"], reason=REASON, results_spec=SPEC,
                            wait=True, wait_seconds=120)
        assert second["status"] == "completed" and second["version"] != first["version"]
        history = await call("list_history", workspace="lstm_baseline")
        assert len(history["records"]) == 2

        state = await client.read_resource("goldfish://state")
        assert "lstm_baseline" in state.contents[0].text
