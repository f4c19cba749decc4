"""A deterministic project for the SVG snapshots: fixed ids, timestamps, metrics and logs.

Real runs have random ids and wall-clock times, so snapshot screens use this project instead: a
real ``init_project`` whose store holds rows shaped exactly like the run engine's (a test checks
the keys against a real run) with fixed values, run directories whose metric series are built by
the real ``metric_series.ingest``, and a fixed clock (``NOW``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from goldfish.init import init_project
from goldfish.project import Project
from goldfish.svs.patterns import FailurePattern

NOW = 1_768_478_400.0  # 2026-01-15T12:00:00Z
BASE = "2026-01-15T"


def ts(hms: str) -> str:
    return f"{BASE}{hms}.000000Z"


SPEC = {"primary_metric": "val_acc", "direction": "maximize", "min_value": 0.7, "goal_value": 0.85,
        "dataset_split": "val", "tolerance": 0.005, "context": "Sentiment classifier on the review corpus.",
        "secondary_metrics": [], "baseline_run": None, "failure_threshold": None, "known_caveats": []}


def _history(*steps: tuple[str, str | None, str, str | None, str]) -> list[dict[str, Any]]:
    return [{"ts": ts(t), "from": a, "to": b, "cause": c, "source": s} for t, a, b, c, s in steps]


def run_doc(rid: str, stage: str, state: str, *, ws: str = "sentiment", prun: str = "prun-00000001",
            record: str, version: str = "v3", created: str = "11:00:00", started: str | None = "11:00:05",
            finished: str | None = None, cause: str | None = None, error: str | None = None,
            infra: str | None = None, results: str = "missing", auto: float | None = None,
            final: dict[str, Any] | None = None, ml: str = "unknown", metrics: dict[str, Any] | None = None,
            history: list[dict[str, Any]] | None = None, svs: dict[str, Any] | None = None,
            config: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
            outputs: dict[str, Any] | None = None, cancel: str | None = None, role: str = "result") -> dict[str, Any]:
    return {
        "workspace": ws, "pipeline_run_id": prun, "stage": stage, "record_id": record, "version": version,
        "sha": "0" * 40, "state": state, "cause": cause, "error": error, "history": history or [],
        "created_at": ts(created), "started_at": ts(started) if started else None,
        "finished_at": ts(finished) if finished else None, "updated_at": ts(finished or started or created),
        "reason": {"description": "Try a wider LSTM with dropout", "hypothesis": "More capacity helps",
                   "approach": None, "min_result": None, "goal": None},
        "reason_summary": "Try a wider LSTM with dropout | H: More capacity helps", "results_spec": SPEC,
        "experiment_group": "lstm-width", "config": config or {}, "config_override": {}, "inputs_override": {},
        "profile": "cpu-small", "max_runtime_seconds": 3600, "heartbeat_timeout_seconds": None,
        "depends_on": [], "inputs": inputs or {}, "outputs": outputs or {}, "backend": "local",
        "backend_handle": {}, "run_dir": f"/runs/{rid}", "cancel_requested": cancel is not None,
        "cancel_reason": cancel, "skip_review": False, "infra_outcome": infra, "results_status": results,
        "ml_outcome": ml,
        "results_auto": None if auto is None else {"primary_metric": "val_acc", "value": auto, "direction": "maximize",
                                                   "dataset_split": "val", "secondary": {},
                                                   "ml_outcome_hint": "partial", "metric_logged": True},
        "results_final": final, "results_history": [], "comparison": None,
        "finalized_at": ts(finished or "11:30:00") if final else None, "metrics_summary": metrics or {},
        "svs": svs or {"preflight": {"errors": [], "warnings": []}, "review": None, "skip_review": False,
                       "during": [], "post": None, "findings_count": 0},
        "lineage_recorded": state == "completed", "exit_code": None, "max_runtime_source": "defaults",
        "memory_limit_mb": None, "metrics_lost": {}, "role": role,
    }


def _summary(last: float, lo: float, hi: float, count: int, trend: str) -> dict[str, Any]:
    return {"last": last, "min": lo, "max": hi, "count": count, "trend": trend, "last_step": count - 1,
            "updated_at": ts("11:59:58")}


PATTERNS: dict[str, dict[str, Any]] = {
    "fp-0000beef": {"status": "pending", "severity": "high", "stage": "evaluate",
                    "signature": "KeyError: 'label' | df['label']",
                    "symptom": "KeyError on a label column that was renamed upstream",
                    "root_cause": "evaluate reads 'label' but preprocess writes 'target'",
                    "detection": {"kind": "regex", "pattern": r"\[['\"]label['\"]\]"},
                    "prevention": "Read column names from the input schema", "occurrence_count": 2,
                    "created_at": ts("09:41:00"), "last_seen_at": ts("09:41:00"), "source_run_id": "stage-0000a003",
                    "workspace": "sentiment"},
    "fp-0000cafe": {"status": "approved", "severity": "medium", "stage": "train",
                    "signature": "FloatingPointError: nan loss | loss.backward()",
                    "symptom": "NaN loss after the learning rate warmup",
                    "root_cause": "lr too high without gradient clipping", "prevention": "Clip gradients",
                    "occurrence_count": 3, "created_at": ts("06:50:00"), "last_seen_at": ts("07:10:00"),
                    "source_run_id": "stage-0000a005", "workspace": "sentiment"},
}

REVIEW_OK = {"decision": "approved", "summary": "rules review: no problems in modules/train.py", "findings": [],
             "provider": "rules", "at": ts("11:00:03")}


def build(root: Path) -> Project:
    init_project(root / "demo", "demo")
    project = Project.open(root / "demo", source="test")
    _workspaces(project)
    R = "01KF0000000000000000000"  # record id prefix (ULID-shaped, fixed)
    train = run_doc(
        "stage-0000a001", "train", "running", prun="prun-00000001", record=R + "001",
        history=_history(("11:00:01", "pending", "preparing", None, "runner"),
                         ("11:00:04", "preparing", "launching", None, "runner"),
                         ("11:00:05", "launching", "running", None, "runner")),
        metrics={"val_acc": _summary(0.7939, 0.5, 0.7939, 40, "up"), "loss": _summary(0.3867, 0.3867, 3.28, 40, "down")},
        svs={"preflight": {"errors": [], "warnings": []}, "review": REVIEW_OK, "skip_review": False,
             "during": [{"source": "monitor", "check": "loss_spike", "severity": "warning", "signal": "loss",
                         "message": "loss jumped 4.1x at step 31", "value": 4.1, "threshold": 3.0,
                         "at": ts("11:40:00")}], "post": None, "findings_count": 1},
        config={"lr": 0.001, "hidden": 512, "dropout": 0.3},
        inputs={"features": {"kind": "stage", "run_id": "stage-0000a000", "signal": "features", "source": None,
                             "location": "/runs/stage-0000a000/outputs/features.npy", "type": "npy",
                             "format": "npy"}},
    )
    done = run_doc(
        "stage-0000a002", "train", "completed", prun="prun-00000002", record=R + "002", version="v2",
        created="09:00:00", started="09:00:05", finished="09:40:00", infra="completed", results="auto", auto=0.7904,
        history=_history(("09:00:01", "pending", "preparing", None, "runner"),
                         ("09:00:04", "preparing", "launching", None, "runner"),
                         ("09:00:05", "launching", "running", None, "runner"),
                         ("09:39:58", "running", "post_run", None, "runner"),
                         ("09:40:00", "post_run", "completed", None, "runner")),
        metrics={"val_acc": _summary(0.7904, 0.5, 0.7904, 40, "up")}, config={"lr": 0.001, "hidden": 256},
        outputs={"model": {"location": "/runs/stage-0000a002/outputs/model", "type": "file", "format": "file",
                           "exists": True, "size_bytes": 1_234_567, "artifact": True},
                 "preds": {"location": "/runs/stage-0000a002/outputs/preds.npy", "type": "npy", "format": "npy",
                           "exists": True, "size_bytes": 80_128, "artifact": False}},
        svs={"preflight": {"errors": [], "warnings": []}, "review": REVIEW_OK, "skip_review": False, "during": [],
             "post": {"stats": {"preds": {"dtype": "float32", "shape": [10000, 2], "mean": 0.5, "std": 0.21,
                                          "min": 0.0, "max": 1.0, "entropy": 0.93, "null_ratio": 0.0}},
                      "findings": [{"source": "contract", "check": "shape", "severity": "info", "signal": "preds",
                                    "message": "preds matches its contract", "value": None, "threshold": None}],
                      "problems": [], "hook": {"decision": "ok", "findings": [], "details": {}},
                      "at": ts("09:40:00")}, "findings_count": 1},
    )
    crashed = run_doc(
        "stage-0000a003", "evaluate", "failed", prun="prun-00000002", record=R + "003", version="v2",
        created="09:00:00", started="09:40:02", finished="09:41:00", cause="exit_nonzero", infra="crashed",
        error="The stage exited with code 1. Last log lines: KeyError: 'label'",
        history=_history(("09:40:01", "pending", "preparing", None, "runner"),
                         ("09:40:02", "launching", "running", None, "runner"),
                         ("09:41:00", "running", "failed", "exit_nonzero", "runner")),
    )
    blocked = run_doc(
        "stage-0000a004", "train", "failed", prun="prun-00000003", record=R + "004", version="v1",
        created="08:00:00", started=None, finished="08:00:03", cause="review_blocked", infra="blocked",
        error="Pre-run review blocked: modules/train.py:42 uses undefined name 'optimiser'",
        history=_history(("08:00:01", "pending", "preparing", None, "runner"),
                         ("08:00:03", "preparing", "failed", "review_blocked", "runner")),
        svs={"preflight": {"errors": [], "warnings": []}, "skip_review": False, "during": [], "post": None,
             "review": {"decision": "blocked", "summary": "1 error", "provider": "rules", "at": ts("08:00:03"),
                        "findings": [{"source": "rules", "check": "undefined_name", "severity": "error",
                                      "confidence": "high", "stage": "train", "file": "modules/train.py",
                                      "line": 42, "message": "undefined name 'optimiser'",
                                      "fix": "Did you mean 'optimizer'?"}]}, "findings_count": 1},
    )
    finalized = run_doc(
        "stage-0000a005", "train", "completed", prun="prun-00000004", record=R + "005", version="v1",
        created="07:00:00", started="07:00:05", finished="07:30:00", infra="completed", results="finalized",
        auto=0.781, ml="partial", metrics={"val_acc": _summary(0.781, 0.5, 0.781, 30, "up")},
        config={"lr": 0.003, "hidden": 256},
        history=_history(("07:00:05", "launching", "running", None, "runner"),
                         ("07:30:00", "post_run", "completed", None, "runner")),
        final={"primary_metric": "val_acc", "direction": "maximize", "value": 0.781, "dataset_split": "val",
               "ml_outcome": "partial", "notes": "Baseline: above min_value, below the goal."},
    )
    docs = [train, done, crashed, blocked, finalized]
    records = {d["record_id"]: {"type": "run", "workspace": "sentiment", "stage_run_id": rid,
                                "pipeline_run_id": d["pipeline_run_id"], "stage": d["stage"], "version": d["version"],
                                "experiment_group": "lstm-width", "created_at": d["created_at"],
                                "tags": ["baseline"] if rid == "stage-0000a005" else [], "role": d["role"]}
               for d, rid in zip(docs, _ids(docs), strict=True)}
    with project.store.transaction() as tx:
        for slot, dirty, count in (("w1", True, 2), ("w2", False, 0)):
            tx.table("mounts").patch(slot, {"dirty": dirty, "changed_count": count, "changed_files": [
                {"path": "modules/train.py", "status": "modified"}] if dirty else []})
        for doc, rid in zip(docs, _ids(docs), strict=True):
            tx.table("runs", "ws/sentiment").add(doc, doc_id=rid)
            tx.table("run_index").add({"workspace": "sentiment", "kind": "stage"}, doc_id=rid)
        for rec_id, rec in records.items():
            tx.table("records", "ws/sentiment").add(rec, doc_id=rec_id)
        tx.table("pipeline_runs", "ws/sentiment").add(
            {"workspace": "sentiment", "slot": "w1", "version": "v3", "sha": "0" * 40, "pipeline": None,
             "stages": ["train"], "state": "running", "created_at": ts("11:00:00"), "updated_at": ts("11:00:05"),
             "stage_runs": {"train": "stage-0000a001"}}, doc_id="prun-00000001")
        tx.table("active_pipelines").add({"workspace": "sentiment", "created_at": ts("11:00:00")},
                                         doc_id="prun-00000001")
        tx.table("sources").add({"format": "csv", "location": "gs://demo-bucket/reviews/train.csv",
                                 "size_bytes": 52_428_800, "created_at": ts("06:10:00"), "created_by": "mcp",
                                 "description": "50k labelled product reviews"}, doc_id="reviews")
        for pid, fields in PATTERNS.items():
            tx.table("patterns").add(FailurePattern(id=pid, **fields).model_dump(mode="json", exclude={"id"}),
                                     doc_id=pid)
        for t, op, src, ws, text, details in (
            ("10:59:00", "thought", "mcp", "sentiment", "Width helped last time; try 512 hidden with dropout", {}),
            ("11:00:00", "run", "mcp", "sentiment", "Try a wider LSTM with dropout", {"run_id": "prun-00000001"}),
            ("11:20:00", "save_version", "tui", "tok", "Checkpoint before the BPE change", {"version": "v1"}),
        ):
            tx.append_event("audit", {"ts": ts(t), "op": op, "source": src, "workspace": ws, "slot": None,
                                      "reason": text, "details": details})
        for doc, rid in zip(docs, _ids(docs), strict=True):
            for h in doc["history"]:
                tx.append_event("transitions", {"ts": h["ts"], "run_id": rid, "workspace": "sentiment",
                                                "from": h["from"], "to": h["to"], "cause": h["cause"],
                                                "source": h["source"], "error": doc["error"]})
    _run_dir(project, "stage-0000a001", steps=40, beat_age=3.0)
    _run_dir(project, "stage-0000a002", steps=40, beat_age=None)
    return project


TRAIN_V1 = "import numpy as np\n\nHIDDEN = 256\nLR = 0.003\n\n\ndef main():\n    print('training', HIDDEN, LR)\n"


def _workspaces(project: Project) -> None:
    """Real workspaces and versions v1..v3 (the compare screen diffs them); their audit rows are
    replaced below by fixed ones, since they carry wall-clock times."""
    ws = project.workspaces
    ws.create("sentiment", goal="Classify review sentiment above 85% val accuracy",
              reason="Snapshot fixture: the workspace the screens show")
    ws.mount("sentiment", "w1", reason="Snapshot fixture: mount to write versions")
    train = project.slot_path("w1") / "modules" / "train.py"
    train.parent.mkdir(parents=True, exist_ok=True)
    for text, message in ((TRAIN_V1, "Baseline LSTM, 256 hidden units"),
                          (TRAIN_V1.replace("LR = 0.003", "LR = 0.001"), "Lower the learning rate to 1e-3"),
                          (TRAIN_V1.replace("LR = 0.003", "LR = 0.001").replace("HIDDEN = 256", "HIDDEN = 512"),
                           "Wider LSTM: 512 hidden units")):
        train.write_text(text)
        ws.save_version("w1", message)
    ws.create("tok", goal="Tokenizer experiments", reason="Snapshot fixture: a second workspace")
    ws.mount("tok", "w2", reason="Snapshot fixture: mount the second workspace")
    (project.store.root / "events" / "audit.jsonl").unlink()
    # save_version's checkpoint records carry wall-clock ids and times too: drop them.
    with project.store.transaction() as tx:
        records, index = tx.table("records", "ws/sentiment"), tx.table("record_index")
        for rec_id in records.ids():
            records.delete(rec_id)
            index.delete(rec_id)


def _ids(docs: list[dict[str, Any]]) -> list[str]:
    return [f"stage-0000a00{i + 1}" for i in range(len(docs))]


def _run_dir(project: Project, rid: str, *, steps: int, beat_age: float | None) -> None:
    from goldfish.runs import metric_series

    run_dir = project.runs_dir / rid
    rt = run_dir / "outputs" / ".goldfish"
    rt.mkdir(parents=True)
    (run_dir / "logs").mkdir()
    lines = []
    with open(rt / "metrics.jsonl", "w") as f:
        for step in range(steps):
            acc = round(0.5 + 0.3123 * (1 - 0.93 ** step), 4)
            loss = round(1.9 * 0.96 ** step + (1.2 if step == 31 else 0.0), 4)
            for name, value in (("val_acc", acc), ("loss", loss)):
                f.write(json.dumps({"type": "metric", "name": name, "value": value, "step": step,
                                    "timestamp": f"{BASE}11:{step // 60 + 10:02d}:{step % 60:02d}.000000Z"}) + "\n")
            lines.append(f"[2026-01-15 11:{step // 60 + 10:02d}:{step % 60:02d}] INFO: step {step} loss={loss} "
                         f"val_acc={acc}")
    (run_dir / "logs" / "stdout.log").write_text("\n".join(lines) + "\n")
    metric_series.ingest(run_dir)
    if beat_age is not None:
        (rt / "heartbeat").write_text(json.dumps({"timestamp": NOW - beat_age, "iso_time": ts("11:59:57"),
                                                  "message": "training", "pid": 1}))
