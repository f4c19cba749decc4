"""The experiment loop as a researcher lives it, through the real MCP client over stdio.

A three-stage pipeline of their own (prep → fit → evaluate) with a typo in fit.py: validate_config
and run(dry_run=True) report it; run() answers BLOCKED before anything launches; after the fix the
next run is not gated. Its result (evaluate) is finalized with one call; history has one row;
supporting stages carry no value; a crash is finalized with value null and is no regression.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from goldfish.init import init_project
from tests.mcp_helpers import stdio_params
from tests.test_mcp_e2e import Agent

pytestmark = pytest.mark.slow

PIPELINE = """\
stages:
  - name: prep
    outputs:
      X_train: {type: npy, schema: null}
  - name: fit
    inputs:
      X_train: {from_stage: prep, schema: null}
    outputs:
      model: {type: npy, schema: null}
  - name: evaluate
    inputs:
      model: {from_stage: fit, schema: null}
    outputs:
      scores: {type: npy, schema: null}
"""
PREP = """\
import numpy as np
from goldfish.io import save_output

save_output("X_train", np.arange(12, dtype=np.float64).reshape(4, 3))
"""
FIT = """\
from goldfish.io import load_input, save_output
from goldfish.metrics import log_metric

x = load_input("X_trian")
save_output("model", x.mean(axis=0))
log_metric("train/loss", 0.5)
"""
EVALUATE = """\
from goldfish.io import get_config, load_input, save_output
from goldfish.metrics import log_metric

model = load_input("model")
if get_config().get("crash"):
    raise RuntimeError("evaluation blew up")
save_output("scores", model * 2)
log_metric("acc", 0.8)
print("scored the model", flush=True)
"""
SPEC = {"primary_metric": "acc", "direction": "maximize", "min_value": 0.5, "goal_value": 0.9,
        "dataset_split": "val", "tolerance": 0.01, "context": "Mean model on a toy matrix, scored on val."}
REASON = {"description": "Toy three-stage experiment", "hypothesis": "The mean model scores at least 0.5"}


def final(value: float | None, outcome: str, notes: str = "Judged from the evaluate stage's accuracy.") -> dict:
    return {"primary_metric": "acc", "direction": "maximize", "value": value, "dataset_split": "val",
            "ml_outcome": outcome, "notes": notes}


async def test_typo_is_caught_before_anything_launches_and_one_result_per_run(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    dev = root.parent / "proj-dev"
    async with Client(stdio_params(root), read_timeout_seconds=120) as client:
        call = Agent(client)
        await call("create_workspace", name="toy", goal="A toy experiment of my own", reason="Trying the loop out",
                   template="none")
        await call("mount", workspace="toy", slot="w1", reason="Write the toy pipeline")
        slot = root / "workspaces" / "w1"
        (slot / "modules").mkdir()
        (slot / "pipeline.yaml").write_text(PIPELINE)
        for name, code in (("prep", PREP), ("fit", FIT), ("evaluate", EVALUATE)):
            (slot / "modules" / f"{name}.py").write_text(code)

        # 1. Found without running anything: validate_config and the dry run name fit.py's line and the fix.
        check = await call("validate_config", workspace="w1")
        assert not check["valid"]
        [typo] = [e for e in check["errors"] if "X_trian" in e["message"]]
        assert "modules/fit.py:4" in typo["location"] and "X_train" in (typo["fix"] or "") + typo["message"]
        dry = await call("run", workspace="w1", reason=REASON, results_spec=SPEC, dry_run=True)
        assert not dry["valid"] and dry["result_stage"] == "evaluate"
        assert any("modules/fit.py:4" in e["location"] for e in dry["errors"])

        # 2. run() reviews every stage before the first launches: BLOCKED, nothing ran.
        blocked = await call("run", workspace="w1", reason=REASON, results_spec=SPEC)
        assert blocked["status"] == "blocked" and blocked["done"], blocked
        [finding] = [f for f in blocked["findings"] if f["blocks"]]
        assert (finding["stage"], finding["where"], finding["check"]) == ("fit", "modules/fit.py:4", "unknown_signal")
        assert finding["fix"] and "BLOCKED" in blocked["message"]
        states = {s["stage"]: (s["state"], s["cause"]) for s in blocked["stage_runs"]}
        assert states == {"prep": ("skipped", "run_blocked"), "fit": ("failed", "review_blocked"),
                          "evaluate": ("skipped", "run_blocked")}
        prep_id = next(s["stage_run_id"] for s in blocked["stage_runs"] if s["stage"] == "prep")
        assert not (dev / ".goldfish" / "runs" / prep_id).exists()  # no run dir, so no process either
        prep_run = await call("inspect_run", run_id=prep_id, include=["metadata", "provenance"])
        assert prep_run["metadata"]["started_at"] is None and prep_run["provenance"]["backend_handle"] is None
        assert (await call("list_unfinalized_runs", workspace="w1"))["count"] == 0  # the gate stays open

        # 3. After the fix the next run is not gated, and it runs.
        (slot / "modules" / "fit.py").write_text(FIT.replace("X_trian", "X_train"))
        ok = await call("run", workspace="w1", reason=REASON, results_spec=SPEC, wait=True, wait_seconds=120)
        assert ok["status"] == "completed" and ok["result_stage"] == "evaluate", ok
        ids = {s["stage"]: s["stage_run_id"] for s in ok["stage_runs"]}
        roles = {s["stage"]: s["role"] for s in ok["stage_runs"]}
        assert roles == {"prep": "supporting", "fit": "supporting", "evaluate": "result"}
        queue = await call("list_unfinalized_runs", workspace="w1")
        assert [r["stage_run_id"] for r in queue["runs"]] == [ids["evaluate"]]
        tail = await call("inspect_run", run_id=ids["evaluate"])  # infra status and the log tail, one call
        assert tail["dashboard"]["state"] == "completed" and "scored the model" in tail["logs"]["text"]

        # 4. One finalize_run on the result stage settles the pipeline run.
        done = await call("finalize_run", record_or_run_id=ids["evaluate"], results=final(0.8, "partial"))
        assert [r["stage_run_id"] for r in done["runs"]] == [ids["evaluate"]]
        assert {s["stage"] for s in done["supporting"]} == {"prep", "fit"}
        assert done["unfinalized_remaining"] == []
        history = await call("list_history", workspace="w1")
        [row] = [r for r in history["records"] if r["stage_run_id"] == ids["evaluate"]]
        assert history["total"] == 2  # the blocked run's result row and this one: one row per pipeline run
        assert row["primary_metric"] == {"name": "acc", "value": 0.8, "source": "final"}
        assert [s["stage"] for s in row["supporting"]] == ["prep", "fit"]
        every = await call("list_history", workspace="w1", include_supporting=True)
        assert all("primary_metric" not in r for r in every["records"] if r.get("role") == "supporting")
        await call("tag_record", ref=ids["evaluate"], tag="best-v1")
        context = await call("get_experiment_context", workspace="w1")
        assert [(p["stage_run_id"], p["value"]) for p in context["recent_trend"]] == [(ids["evaluate"], 0.8)]

        # 5. A crash is finalized with value null: accepted, no trend point, never a regression.
        crashed = await call("run", workspace="w1", reason=REASON, results_spec=SPEC, wait=True, wait_seconds=120,
                             config_override={"evaluate": {"crash": True}})
        crash_id = next(s["stage_run_id"] for s in crashed["stage_runs"] if s["stage"] == "evaluate")
        assert crashed["status"] == "failed" and (await call("list_unfinalized_runs", workspace="w1"))["count"] == 1
        null = await call("finalize_run", record_or_run_id=crashed["pipeline_run_id"],
                          results=final(None, "miss", "Evaluation crashed; no accuracy to report."))
        assert null["runs"][0]["value"] is None and null["runs"][0]["stage_run_id"] == crash_id
        context = await call("get_experiment_context", workspace="w1")
        assert [p["stage_run_id"] for p in context["recent_trend"]] == [ids["evaluate"]]
        assert context["regression_alerts"] == [] and context["awaiting_finalization"] == []
        board = await call("dashboard")
        assert board["alerts"]["regressions"] == []
        assert [f["run_id"] for f in board["alerts"]["failed_recent"]] == [crash_id, _blocked_fit(blocked)]


def _blocked_fit(result: dict[str, Any]) -> str:
    return next(s["stage_run_id"] for s in result["stage_runs"] if s["stage"] == "fit")
