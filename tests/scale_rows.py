"""A project at scale: N experiment records (with their stage runs and pipeline runs), versions,
thoughts and audit rows, written in one store transaction as the run engine and records write them.

Used by tests/test_mcp_scale.py (result sizes) and benchmarks/mcp_bench.py (round trips).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from goldfish.records.lineage import index_inputs
from goldfish.project import Project
from goldfish.records.service import new_record

WORKSPACE = "scale"
STAGES = ("preprocess", "train", "evaluate")
PRODUCER = "stage-00000000"  # the first preprocess run; every train run reads its output
UNFINALIZED = 500  # far more than the gate normally lets pile up: list tools must page them
# Realistic, wordy text: results must stay bounded by paging, not by luck.
DESCRIPTION = "Sweep the learning rate around the baseline and retrain the 4-layer LSTM on the v3 features " * 2
HYPOTHESIS = "A lower learning rate with warmup reduces the validation loss plateau seen in the last run " * 2
CONTEXT = "Directional accuracy on the held-out month; the baseline sits at 0.61 and noise is about 0.003. " * 2
NOTES = "Validation curve flattened after epoch 12; the gain over the baseline is within noise, call it partial. " * 3


def _spec() -> dict[str, Any]:
    return {
        "primary_metric": "dir_acc", "direction": "maximize", "min_value": 0.6, "goal_value": 0.63,
        "dataset_split": "val", "tolerance": 0.003, "context": CONTEXT, "secondary_metrics": ["loss"],
        "baseline_run": None, "failure_threshold": None, "known_caveats": [],
    }


def _ts(base: datetime, seconds: int) -> str:
    return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_scale_rows(project_root: Path | str, n: int, *, versions: int = 1000, thoughts: int = 10_000) -> tuple[str, str]:
    """Create workspace ``scale`` (mounted in w1) holding ``n`` run records; returns (workspace, a record id)."""
    project = Project.open(project_root, source="test")
    project.workspaces.create(WORKSPACE, goal="Scale test: ten thousand experiments", reason="benchmarking result sizes")
    project.workspaces.mount(WORKSPACE, "w1", reason="benchmarking result sizes")
    part = f"ws/{WORKSPACE}"
    base = datetime(2026, 1, 1, tzinfo=UTC)
    reason = {"description": DESCRIPTION, "hypothesis": HYPOTHESIS, "approach": "grid over lr",
              "min_result": "0.60", "goal": "0.63"}
    record_id = ""
    with project.store.transaction() as tx:
        vt = tx.table("versions", part)
        for v in range(2, versions + 1):
            vt.put(f"v{v}", {"number": v, "tag": f"{WORKSPACE}-v{v}", "sha": f"{v:040x}", "created_at": _ts(base, v),
                             "created_by": "run", "description": f"run: {DESCRIPTION[:80]}", "pruned_at": None,
                             "prune_reason": None, "tags": []})
        runs, pruns, index = tx.table("runs", part), tx.table("pipeline_runs", part), tx.table("run_index")
        for i in range(n):
            stage = STAGES[i % len(STAGES)]
            run_id, prun_id = f"stage-{i:08x}", f"prun-{i:08x}"
            created = _ts(base, 60 * i)
            version = f"v{2 + i % max(versions - 1, 1)}"
            record_id = new_record(tx, WORKSPACE, record_type="run", version=version, stage_run_id=run_id,
                                   pipeline_run_id=prun_id, stage=stage, created_at=created, role="result")
            value = 0.55 + (i % 97) / 1000
            inputs = ({"features": {"kind": "stage", "run_id": PRODUCER, "signal": "features", "source": None,
                                    "location": str(project.runs_dir / PRODUCER / "outputs" / "features"),
                                    "type": "npy", "format": "npy"}} if stage == "train" else {})
            finalized = i < n - UNFINALIZED
            auto = {"primary_metric": "dir_acc", "value": value, "direction": "maximize", "dataset_split": "val",
                    "secondary": {"loss": 1.0 - value}, "ml_outcome_hint": "partial", "metric_logged": True}
            final = {"primary_metric": "dir_acc", "direction": "maximize", "value": value, "dataset_split": "val",
                     "ml_outcome": "partial", "notes": NOTES, "unit": None, "step": None, "epoch": None,
                     "secondary": {}, "termination": None}
            runs.put(run_id, {
                "workspace": WORKSPACE, "pipeline_run_id": prun_id, "stage": stage, "record_id": record_id,
                "version": version, "sha": "a" * 40, "state": "completed", "cause": None, "error": None,
                "history": [{"ts": created, "from": s, "to": t, "cause": None, "source": "runner"}
                            for s, t in (("pending", "preparing"), ("preparing", "launching"),
                                         ("launching", "running"), ("running", "post_run"),
                                         ("post_run", "completed"))],
                "created_at": created, "started_at": created, "finished_at": created, "updated_at": created,
                "reason": reason, "reason_summary": f"{DESCRIPTION[:100]} | H: {HYPOTHESIS[:100]}",
                "results_spec": _spec(), "experiment_group": f"sweep-{i % 20}",
                "config": {"lr": 0.001 * (1 + i % 10), "epochs": 20, "batch_size": 64, "hidden": 256,
                           "compute": {"profile": "local"}},
                "profile": "local", "max_runtime_seconds": None, "heartbeat_timeout_seconds": None,
                "depends_on": [], "inputs": inputs, "outputs": {}, "backend": "local", "backend_handle": None,
                "run_dir": str(project.runs_dir / run_id), "cancel_requested": False, "cancel_reason": None,
                "infra_outcome": "completed", "results_status": "finalized" if finalized else "auto",
                "ml_outcome": "partial" if finalized else "unknown", "results_auto": auto,
                "results_final": final if finalized else None, "results_history": [], "comparison": None,
                "finalized_at": created if finalized else None,
                "metrics_summary": {name: {"last": value, "min": value, "max": value, "count": 20, "trend": "up",
                                           "last_step": 19, "updated_at": created}
                                    for name in ("dir_acc", "loss", "train/loss", "lr")},
                "svs": {"preflight": {"errors": [], "warnings": []}, "review": None, "skip_review": False,
                        "during": [], "post": None, "findings_count": 0},
                "lineage_recorded": True, "role": "result",
            })
            pruns.put(prun_id, {
                "workspace": WORKSPACE, "slot": "w1", "version": version, "sha": "a" * 40, "pipeline": None,
                "stages": [stage], "state": "completed", "created_at": created, "updated_at": created,
                "finished_at": created, "reason": reason, "reason_summary": DESCRIPTION[:100],
                "results_spec": _spec(), "experiment_group": None, "config_override": {}, "inputs_override": {},
                "skip_review": False, "dry_run": False, "stage_runs": {stage: run_id}, "runner": None,
                "result_stage": stage, "result_run_id": run_id,
            })
            index.put(run_id, {"workspace": WORKSPACE, "kind": "stage"})
            index_inputs(tx, WORKSPACE, run_id, stage, inputs)
            index.put(prun_id, {"workspace": WORKSPACE, "kind": "pipeline"})
        for i in range(thoughts):
            tx.append_event("audit", {"ts": _ts(base, 30 * i), "op": "thought", "source": "mcp", "workspace": WORKSPACE,
                                      "slot": "w1", "reason": f"Thought {i}: {NOTES}", "details": {"run_id": None}})
    return WORKSPACE, record_id
