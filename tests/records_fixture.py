"""Store rows for records tests, written exactly as the run engine and workspaces write them
(/work/design-run-engine.md "Store rows"): workspaces, versions, pipeline_runs, runs, records,
run_index, active_pipelines. Fixture data on a real project (real init, real store files)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from goldfish.init import init_project
from goldfish.records.lineage import index_inputs
from goldfish.project import Project
from goldfish.records.service import new_record
from goldfish.records.results_spec import ml_outcome_hint, validate_results_spec

SPEC: dict[str, Any] = {
    "primary_metric": "acc", "direction": "maximize", "min_value": 0.6, "goal_value": 0.7,
    "dataset_split": "val", "tolerance": 0.01, "context": "Baseline classifier on the v2 features.",
}
REASON = {"description": "Train the baseline classifier", "hypothesis": "It reaches 70% accuracy"}
OUTCOMES = {"completed": "completed", "canceled": "canceled", "skipped": "skipped"}
BLOCKED = {"preflight", "review_blocked", "input_error", "prepare_error"}


def final(value: float, outcome: str = "partial", **extra: Any) -> dict[str, Any]:
    """Valid finalize_run results for SPEC."""
    return {"primary_metric": "acc", "direction": "maximize", "value": value, "dataset_split": "val",
            "ml_outcome": outcome, "notes": "Judged from the validation curve.", **extra}


def infra_outcome(state: str, cause: str | None) -> str | None:
    if state in OUTCOMES:
        return OUTCOMES[state]
    if state == "terminated":
        return "preempted" if cause == "preempted" else "crashed"
    if state == "failed":
        return "blocked" if cause in BLOCKED else "crashed"
    return None


class Rows:
    def __init__(self, project: Project):
        self.project = project
        self.store = project.store
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> str:
        self._clock += timedelta(seconds=1)
        return self._clock.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    # ------------------------------------------------------------- workspaces
    def workspace(self, name: str, *, parent: str | None = None, parent_version: str | None = None,
                  versions: int = 1) -> str:
        with self.store.transaction() as tx:
            tx.table("workspaces").add({
                "name": name, "goal": "Find a good classifier", "reason": "Starting a new experiment here",
                "branch": f"refs/heads/goldfish/{name}", "created_at": self.now(), "created_by": "test",
                "base_sha": "0" * 40, "parent_workspace": parent, "parent_version": parent_version,
                "deleted_at": None, "delete_reason": None,
            }, doc_id=name)
        for _ in range(versions):
            self.version(name)
        return name

    def mount(self, workspace: str, slot: str) -> None:
        with self.store.transaction() as tx:
            tx.table("mounts").add({"slot": slot, "workspace": workspace, "mount_id": "m1",
                                    "mounted_at": self.now()}, doc_id=slot)

    def version(self, workspace: str, *, pruned: bool = False) -> str:
        with self.store.transaction() as tx:
            table = tx.table("versions", f"ws/{workspace}")
            number = max((int(d["number"]) for d in table.iter_raw()), default=0) + 1
            table.add({"number": number, "tag": f"{workspace}-v{number}", "sha": secrets.token_hex(20),
                       "created_at": self.now(), "created_by": "run", "description": "run: baseline",
                       "pruned_at": self.now() if pruned else None, "prune_reason": "noise" if pruned else None,
                       "tags": []}, doc_id=f"v{number}")
        return f"v{number}"

    def version_tag(self, workspace: str, version: str, tag: str) -> None:
        """A manage_versions(action='tag') tag: no record."""
        with self.store.transaction() as tx:
            tx.table("tags", f"ws/{workspace}").add({"version": version, "record_id": None,
                                                     "created_at": self.now()}, doc_id=tag)
            versions = tx.table("versions", f"ws/{workspace}")
            doc = versions.require(version)
            versions.patch(version, {"tags": [*doc["tags"], tag]})

    def checkpoint(self, workspace: str, version: str, message: str = "Checkpoint before tuning") -> str:
        with self.store.transaction() as tx:
            return new_record(tx, workspace, record_type="checkpoint", version=version, message=message,
                              created_at=self.now())

    # ------------------------------------------------------------------- runs
    def pipeline_run(self, workspace: str, stages: list[str], *, spec: dict[str, Any] | None = None,
                     version: str = "v1", config: dict[str, Any] | None = None,
                     experiment_group: str | None = None, index_records: bool = True,
                     result_stage: str | None = None) -> tuple[str, dict[str, str]]:
        """Rows as run() writes them; the result stage is the last one unless ``result_stage`` says."""
        spec_doc = validate_results_spec(spec or SPEC).model_dump()
        part = f"ws/{workspace}"
        now = self.now()
        prun = f"prun-{secrets.token_hex(4)}"
        ids = {s: f"stage-{secrets.token_hex(4)}" for s in stages}
        result_stage = result_stage or stages[-1]
        with self.store.transaction() as tx:
            for i, stage in enumerate(stages):
                rid = ids[stage]
                role = "result" if stage == result_stage else "supporting"
                if index_records:
                    record_id = new_record(tx, workspace, record_type="run", version=version, stage_run_id=rid,
                                           pipeline_run_id=prun, stage=stage, experiment_group=experiment_group,
                                           created_at=now, role=role)
                else:
                    from ulid import ULID

                    record_id = str(ULID())
                    tx.table("records", part).add({
                        "type": "run", "workspace": workspace, "stage_run_id": rid, "pipeline_run_id": prun,
                        "stage": stage, "version": version, "experiment_group": experiment_group,
                        "created_at": now, "tags": [], "role": role}, doc_id=record_id)
                tx.table("runs", part).add({
                    "workspace": workspace, "pipeline_run_id": prun, "stage": stage, "record_id": record_id,
                    "version": version, "sha": "a" * 40, "state": "pending", "cause": None, "error": None,
                    "history": [], "created_at": now, "started_at": None, "finished_at": None, "updated_at": now,
                    "reason": REASON, "reason_summary": f"{REASON['description']} | H: {REASON['hypothesis']}",
                    "results_spec": spec_doc, "experiment_group": experiment_group,
                    "config": dict(config or {"lr": 0.001, "epochs": 10}), "profile": "cpu-small",
                    "max_runtime_seconds": None, "heartbeat_timeout_seconds": None,
                    "depends_on": stages[:i][-1:], "inputs": {}, "outputs": {}, "backend": "local",
                    "backend_handle": None, "run_dir": str(self.project.runs_dir / rid), "cancel_requested": False,
                    "cancel_reason": None, "infra_outcome": None, "results_status": "missing",
                    "ml_outcome": "unknown", "results_auto": None, "results_final": None, "results_history": [],
                    "comparison": None, "finalized_at": None, "metrics_summary": {},
                    "svs": {"preflight": None, "review": None, "skip_review": False, "during": [], "post": None,
                            "findings_count": 0},
                    "lineage_recorded": False, "role": role,
                }, doc_id=rid)
                tx.table("run_index").add({"workspace": workspace, "kind": "stage"}, doc_id=rid)
            tx.table("pipeline_runs", part).add({
                "workspace": workspace, "slot": None, "version": version, "sha": "a" * 40, "pipeline": None,
                "stages": stages, "state": "pending", "created_at": now, "updated_at": now, "finished_at": None,
                "reason": REASON, "reason_summary": REASON["description"], "results_spec": spec_doc,
                "experiment_group": experiment_group, "config_override": {}, "inputs_override": {},
                "skip_review": False, "dry_run": False, "stage_runs": ids, "runner": None,
                "result_stage": result_stage, "result_run_id": ids[result_stage],
            }, doc_id=prun)
            tx.table("run_index").add({"workspace": workspace, "kind": "pipeline"}, doc_id=prun)
            tx.table("active_pipelines").add({"workspace": workspace, "created_at": now}, doc_id=prun)
        return prun, ids

    def run(self, workspace: str, stage: str = "train", *, state: str = "completed", cause: str | None = None,
            value: float | None = 0.65, **kwargs: Any) -> str:
        """One single-stage pipeline run, driven to ``state``."""
        _, ids = self.pipeline_run(workspace, [stage], **kwargs)
        self.finish(workspace, ids[stage], state=state, cause=cause, value=value)
        return ids[stage]

    def finish(self, workspace: str, run_id: str, *, state: str = "completed", cause: str | None = None,
               value: float | None = 0.65, upstream_outcome: str | None = None) -> None:
        """Move a run to ``state`` with the fields the runner sets (auto results when it executed)."""
        part = f"ws/{workspace}"
        with self.store.transaction() as tx:
            runs = tx.table("runs", part)
            doc = runs.require(run_id)
            fields: dict[str, Any] = {"state": state, "cause": cause, "updated_at": self.now(),
                                      "infra_outcome": infra_outcome(state, cause)}
            if fields["infra_outcome"] is not None:
                fields["finished_at"] = fields["updated_at"]
            if upstream_outcome is not None:
                fields["upstream_outcome"] = upstream_outcome
            spec = validate_results_spec(doc["results_spec"])
            if fields["infra_outcome"] in ("completed", "preempted", "crashed") and doc.get("role") != "supporting":
                fields["metrics_summary"] = ({} if value is None else
                                             {"acc": {"last": value, "min": value, "max": value, "count": 1,
                                                      "trend": "flat", "last_step": 0, "updated_at": self.now()}})
                fields["results_auto"] = {
                    "primary_metric": spec.primary_metric, "value": value, "direction": spec.direction,
                    "dataset_split": spec.dataset_split, "secondary": {},
                    "ml_outcome_hint": ml_outcome_hint(spec, value), "metric_logged": value is not None,
                }
                fields["results_status"] = "auto"
            runs.patch(run_id, fields)

    def set_inputs(self, workspace: str, run_id: str, inputs: dict[str, dict[str, Any]]) -> None:
        """As the runner does while preparing: record resolved inputs and index the lineage."""
        with self.store.transaction() as tx:
            runs = tx.table("runs", f"ws/{workspace}")
            doc = runs.require(run_id)
            runs.patch(run_id, {"inputs": inputs})
            index_inputs(tx, workspace, run_id, doc["stage"], inputs)

    def get(self, workspace: str, run_id: str) -> dict[str, Any]:
        return self.store.table("runs", f"ws/{workspace}").require(run_id)

    def partition_bytes(self, workspace: str) -> bytes:
        return (self.project.store_dir / "ws" / f"{workspace}.json").read_bytes()


def stage_input(run_id: str, signal: str, kind: str = "stage") -> dict[str, Any]:
    return {"kind": kind, "run_id": run_id, "signal": signal, "source": None,
            "location": f"/runs/{run_id}/outputs/{signal}", "type": "npy", "format": "npy"}


def source_input(name: str) -> dict[str, Any]:
    return {"kind": "source", "run_id": None, "signal": None, "source": name, "location": f"/objects/{name}",
            "type": "npy", "format": "npy"}


def new_project(tmp: Path) -> Project:
    init_project(tmp / "proj", "proj")
    return Project.open(tmp / "proj", source="test")
