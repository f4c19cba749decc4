"""The ``Records`` service (``project.records``): experiment memory.

A record is a run (one per stage run, created by run()) or a checkpoint (created by
save_version). Results live on the stage run row (``results_auto`` after the run,
``results_final`` from finalize_run); tags live in the workspace's shared ``tags`` table so a
name is unique across record and version tags. The heavy parts are in ``finalize``, ``history``,
``comparison`` and ``lineage``; this module resolves references and writes tags and saved specs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ulid import ULID

from goldfish import names
from goldfish.errors import Conflict, GoldfishError, InvalidInput, NotFound
from goldfish.records.finalize import finalize_run, queue_result
from goldfish.records.history import best_and_trend, experiment_context, list_history, regressions
from goldfish.records.history_index import reading
from goldfish.records.lineage import downstream, get_lineage, provenance, upstream
from goldfish.records.journal import audit, refresh_state_md
from goldfish.records.models import (
    DEFAULT_INCLUDE,
    Comparison,
    DebugInfo,
    ExperimentContext,
    FinalizeResult,
    HistoryResult,
    LineageResult,
    PrimaryMetric,
    RecordDetail,
    RecordResults,
    SavedSpecResult,
    TagResult,
    UnfinalizedResult,
)
from goldfish.records.refs import (
    Resolved,
    index_record,
    is_best_tag,
    part,
    primary_metric,
    resolve_record,
    resolve_workspace,
)
from goldfish.records.roles import role_of
from goldfish.records.view import workspace_view
from goldfish.records.results_spec import validate_results_spec
from goldfish.timefmt import age, now_iso

if TYPE_CHECKING:
    from goldfish.project import Project
    from goldfish.store import Transaction

INCLUDE_OPTIONS = ("results", "comparison", "tags", "spec", "config", "lineage")
SPECS_TABLE = "specs"


def new_record(tx: Transaction, workspace: str, *, record_type: str, version: str,
               stage_run_id: str | None = None, pipeline_run_id: str | None = None, stage: str | None = None,
               experiment_group: str | None = None, message: str | None = None,
               created_at: str | None = None, role: str | None = None) -> str:
    """Create an experiment record (and its index entry) in ``tx``; returns the ULID.

    Run records carry their stage run's ``role`` (``goldfish.records.roles``): a history reader can
    tell result rows from supporting stages without reading the runs."""
    record_id = str(ULID())
    doc: dict[str, Any] = {
        "type": record_type, "workspace": workspace, "stage_run_id": stage_run_id,
        "pipeline_run_id": pipeline_run_id, "stage": stage, "version": version,
        "experiment_group": experiment_group, "created_at": created_at or now_iso(), "tags": [],
    }
    if role is not None:
        doc["role"] = role
    if message is not None:
        doc["message"] = message
    tx.table("records", part(workspace)).add(doc, doc_id=record_id)
    index_record(tx, workspace, record_id, record_type)
    return record_id


def checkpoint_record(tx: Transaction, workspace: str, version: str, message: str) -> str | None:
    """save_version's checkpoint record for ``version`` (None when that version already has one,
    e.g. a second save with nothing changed)."""
    with reading(tx.store, workspace) as index:  # committed records (the index): no scan of the history
        if index.checkpoint_of(version) is not None:
            return None
    return new_record(tx, workspace, record_type="checkpoint", version=version, message=message)


def saved_spec_for(project: Project, workspace: str, stages: list[str]) -> tuple[dict[str, Any] | None, list[str]]:
    """The saved results_spec a run of ``stages`` uses when run() gets none, and the stages it came from.

    Stages of one run share one spec, so differing saved specs among them are refused.
    """
    saved = {d["id"]: d["results_spec"] for d in project.store.table(SPECS_TABLE, part(workspace)).iter_raw()}
    used = [s for s in stages if s in saved]
    if not used:
        return None, []
    if any(saved[s] != saved[used[0]] for s in used[1:]):
        raise InvalidInput(
            f"Stages {', '.join(used)} have different saved results_specs, and one run has one results_spec.",
            fix="Run them separately (stages=[...]), or pass results_spec to run() explicitly.")
    return dict(saved[used[0]]), used


def consume_saved_specs(tx: Transaction, workspace: str, stages: list[str]) -> None:
    """Delete the saved specs a run used (in the transaction that records the run)."""
    table = tx.table(SPECS_TABLE, part(workspace))
    for stage in stages:
        table.delete(stage)


class Records:
    def __init__(self, project: Project):
        self.project = project

    # ------------------------------------------------------------- finalize
    def finalize_run(self, record_or_run_id: str, results: dict[str, Any]) -> FinalizeResult:
        return finalize_run(self.project, record_or_run_id, results)

    def list_unfinalized_runs(self, workspace: str) -> UnfinalizedResult:
        return queue_result(self.project, resolve_workspace(self.project, workspace))

    # -------------------------------------------------------------- history
    def list_history(self, workspace: str, record_type: str | None = None, stage: str | None = None,
                     tagged: bool | str | None = None, metric: str | None = None, min_value: float | None = None,
                     experiment_group: str | None = None, sort_by: str = "created", desc: bool = True,
                     include_pruned: bool = False, finalized_only: bool = False, limit: int = 20,
                     offset: int = 0, include_supporting: bool = False) -> HistoryResult:
        return list_history(self.project, workspace, record_type=record_type, stage=stage, tagged=tagged,
                            metric=metric, min_value=min_value, experiment_group=experiment_group, sort_by=sort_by,
                            desc=desc, include_pruned=include_pruned, finalized_only=finalized_only, limit=limit,
                            offset=offset, include_supporting=include_supporting)

    def get_experiment_context(self, workspace: str) -> ExperimentContext:
        return experiment_context(self.project, workspace)

    def state_summary(self, workspace: str) -> dict[str, Any] | None:
        """A few lines' worth for STATE.md's Experiment Summary, or None when the workspace has no records."""
        view = workspace_view(self.project, workspace)
        if not view.has_records:
            return None
        # Counts only (STATE.md is rewritten after every write): the queue's runs are not read.
        best, trend = best_and_trend(self.project, workspace)
        return {
            "records": view.row_count,
            "awaiting_finalization": len(view.blocking_ids()),
            "best_tag": best.tag if best else None,
            "best": f"@{best.tag} ({best.metric}: {best.value:g})" if best else None,
            "recent_trend": [f"{t.primary_metric}={t.value:g} ({t.ml_outcome})" for t in trend[:3]],
            "regression_alerts": len(regressions(best, trend)),
        }

    def newest_runs(self, workspace: str, count: int) -> list[dict[str, Any]]:
        """The stage runs of the newest ``count`` result rows of ``workspace`` (from its history index)."""
        view = workspace_view(self.project, workspace)
        with view.index.lock:
            ids = view.index.newest_runs(count)
        records = [r for r in (view.record(rid) for rid in ids) if r is not None]
        return [run for run in (view.run_of(r) for r in records) if run is not None]

    # -------------------------------------------------------------- inspect
    def inspect_record(self, ref: str, include: list[str] | None = None,
                       workspace: str | None = None) -> RecordDetail:
        sections = set(names.include_sections(include, INCLUDE_OPTIONS, DEFAULT_INCLUDE, what="inspect_record"))
        found = resolve_record(self.project, ref, workspace)
        rec, run = found.record, found.run
        pm = primary_metric(run)
        detail = RecordDetail(
            record_id=found.record_id, type=rec.get("type", "run"), workspace=found.workspace,
            version=str(rec.get("version")), created_at=str(rec.get("created_at")), age=age(rec.get("created_at")),
            stage=rec.get("stage"), stage_run_id=rec.get("stage_run_id"), pipeline_run_id=rec.get("pipeline_run_id"),
            experiment_group=rec.get("experiment_group"),
            primary_metric=PrimaryMetric(name=pm[0], value=pm[1], source=pm[2]) if pm else None,  # type: ignore[arg-type]
        )
        if rec.get("type", "run") == "run":
            detail.role = role_of(run or rec)
            if detail.role == "supporting":
                result = workspace_view(self.project, found.workspace).result_of(rec)
                detail.result_record_id = str(result["id"]) if result else None
        if "tags" in sections:
            detail.tags = list(rec.get("tags") or [])
        if run is None:
            detail.reason = rec.get("message")
            return detail
        detail.state, detail.infra_outcome = run.get("state"), run.get("infra_outcome")
        detail.reason = run.get("reason_summary")
        if "results" in sections:
            detail.results = RecordResults(
                results_status=run.get("results_status"), results_auto=run.get("results_auto"),
                results_final=run.get("results_final"), ml_outcome=run.get("ml_outcome"),
                finalized_at=run.get("finalized_at"), finalized_by=run.get("finalized_by"),
                results_history=list(run.get("results_history") or []),
            )
        if "comparison" in sections and run.get("comparison"):
            detail.comparison = Comparison.model_validate(run["comparison"])
        if "spec" in sections:
            detail.spec = run.get("results_spec")
        if "config" in sections:
            detail.config = run.get("config")
        if "lineage" in sections:
            detail.lineage = {
                "upstream": [p.model_dump() for p in upstream(self.project, run)],
                "downstream": [c.model_dump() for c in downstream(self.project, found.workspace, run["id"])],
            }
        detail.next_step = _next_step(run)
        return detail

    # ------------------------------------------------------------------ tags
    def tag_record(self, ref: str, tag: str) -> TagResult:
        tag = names.tag_name(tag)
        if names.VERSION_RE.fullmatch(tag):
            raise InvalidInput(f"Tag {tag!r} looks like a version number, which would make refs ambiguous.",
                               fix="Use a descriptive tag such as best-v1 or baseline.")
        found = resolve_record(self.project, ref)
        ws, record_id, version = found.workspace, found.record_id, str(found.record.get("version"))
        with self.project.store.transaction() as tx:
            tags = tx.table("tags", part(ws))
            records = tx.table("records", part(ws))
            record = records.require(record_id, what="record")
            existing = tags.get_doc(tag)
            if existing is not None:
                if existing.get("record_id") == record_id:
                    return self._tag_result(found, tag, version, f"{record_id} is already tagged {tag!r}.")
                what = (f"record {existing['record_id']}" if existing.get("record_id")
                        else f"version {existing.get('version')}")
                raise Conflict(f"Tag {tag!r} already labels {what} in {ws}; tags are unique per workspace.",
                               fix=f"Choose another name (e.g. {tag}-2), or remove it first with "
                                   f"manage_versions({ws!r}, 'untag', tag={tag!r}).")
            versions = tx.table("versions", part(ws))
            vdoc = versions.get_doc(version)
            if vdoc is not None and vdoc.get("pruned_at"):
                raise Conflict(f"{ws}@{version}, the version of record {record_id}, is pruned.",
                               fix=f"Unprune it first: manage_versions({ws!r}, 'unprune', version={version!r}).")
            tags.add({"version": version, "record_id": record_id, "created_at": now_iso()}, doc_id=tag)
            records.patch(record_id, {"tags": [*(record.get("tags") or []), tag]})
            if vdoc is not None:
                versions.patch(version, {"tags": [*(vdoc.get("tags") or []), tag]})
            audit(tx, self.project, "tag_record", workspace=ws, reason=None,
                  details={"record_id": record_id, "tag": tag, "version": version,
                           "stage_run_id": found.record.get("stage_run_id")})
            refresh_state_md(tx, self.project)
        message = f"Tagged {record_id} as {tag!r}; {ws}@{version} carries the tag too and cannot be pruned."
        if is_best_tag(tag) and found.run is not None and found.run.get("results_status") != "finalized":
            message += (f" It counts as current_best only once finalized: finalize_run({found.run['id']!r}, "
                        "results).")
        return self._tag_result(found, tag, version, message)

    @staticmethod
    def _tag_result(found: Resolved, tag: str, version: str, message: str) -> TagResult:
        return TagResult(record_id=found.record_id, tag=tag, workspace=found.workspace,
                         record_type=found.record.get("type", "run"), version=version,
                         stage_run_id=found.record.get("stage_run_id"), message=message)

    # ----------------------------------------------------------------- debug
    def get_debug_info(self, ref: str, workspace: str | None = None) -> DebugInfo:
        found = resolve_record(self.project, ref, workspace)
        run = found.run
        if run is None:
            raise InvalidInput(f"Record {found.record_id} is a checkpoint; get_debug_info is only for run records.",
                               fix=f"Use a run record or stage run id (list_history({found.workspace!r}, "
                                   "record_type='run')).")
        project = self.project
        run_dir = Path(run.get("run_dir") or project.runs_dir / run["id"])
        outputs = run_dir / "outputs"
        paths = {
            "run_dir": run_dir, "log_path": run_dir / "logs" / "stdout.log",
            "runtime_log_path": outputs / ".goldfish" / "logs.txt", "outputs_dir": outputs,
            "metrics_path": outputs / ".goldfish" / "metrics.jsonl",
        }
        objects, exists = self._run_objects(run)
        exists.update({k: p.exists() for k, p in paths.items()})
        version = project.store.table("versions", part(found.workspace)).get_doc(str(run.get("version"))) or {}
        return DebugInfo(
            record_id=found.record_id, stage_run_id=run["id"], pipeline_run_id=run.get("pipeline_run_id"),
            workspace=found.workspace, stage=str(run.get("stage")), state=str(run.get("state")),
            backend=run.get("backend"), backend_handle=run.get("backend_handle"),
            run_dir=str(run_dir), log_path=str(paths["log_path"]), runtime_log_path=str(paths["runtime_log_path"]),
            outputs_dir=str(outputs), metrics_path=str(paths["metrics_path"]), version=str(run.get("version")),
            sha=run.get("sha"), git_tag=version.get("tag") or f"{found.workspace}-{run.get('version')}",
            objects=objects, exists=exists,
        )

    def _run_objects(self, run: dict[str, Any]) -> tuple[dict[str, str], dict[str, bool]]:
        """Where this run's checkpoints and outputs live in object storage, and whether anything is
        there now (one listing per prefix; an unreachable bucket shows as not existing)."""
        from goldfish.errors import GoldfishError

        project = self.project
        remote = run.get("backend") == "gce"
        store = project.bucket if remote else project.storage
        if store is None:
            return {}, {}
        prefixes = {"checkpoints": f"checkpoints/{run['id']}/"}
        if remote or store.kind == "gcs":
            prefixes["outputs"] = f"runs/{run['id']}/outputs/"
        if remote:
            prefixes["worker_logs"] = f"runs/{run['id']}/logs/"
        objects, exists = {}, {}
        for name, prefix in prefixes.items():
            objects[name] = store.uri(prefix)
            try:
                exists[name] = bool(store.list(prefix))
            except GoldfishError:
                exists[name] = False
        if remote and project.config.gce is not None:
            objects["cloud_logging"] = (f"projects/{project.config.gce.project_id}/logs/goldfish-stage "
                                        f"labels.goldfish_run=\"{run['id']}\"")
        return objects, exists

    # ----------------------------------------------------------------- specs
    def save_results_spec(self, workspace: str, stage: str, results_spec: dict[str, Any]) -> SavedSpecResult:
        """Validate and save the results_spec that the stage's next run() uses when it is given none."""
        names.stage_name(stage)
        spec = validate_results_spec(results_spec)
        ws = resolve_workspace(self.project, workspace)
        self._check_stage(ws, stage)
        doc = spec.model_dump(mode="json")
        with self.project.store.transaction() as tx:
            specs = tx.table(SPECS_TABLE, part(ws))
            earlier = specs.get_doc(stage)
            replaced = earlier is not None
            specs.put(stage, {"stage": stage, "results_spec": doc, "saved_at": now_iso(),
                              "saved_by": self.project.source})
            audit(tx, self.project, "save_results_spec", workspace=ws, reason=spec.context,
                  details={"stage": stage, "primary_metric": spec.primary_metric, "replaced": replaced,
                           "replaced_spec": earlier["results_spec"] if earlier else None})
        return SavedSpecResult(
            workspace=ws, stage=stage, results_spec=doc, replaced=replaced,
            message=f"Saved{' (replacing the earlier one)' if replaced else ''}: the next run() of {ws} that includes "
                    f"{stage} and passes no results_spec uses it (once).")

    def saved_specs(self, workspace: str) -> dict[str, dict[str, Any]]:
        """Saved results_specs of a workspace by stage."""
        return {d["id"]: dict(d["results_spec"]) for d in self.project.store.table(SPECS_TABLE, part(workspace)).iter_raw()}

    def _check_stage(self, workspace: str, stage: str) -> None:
        slot = next((d["id"] for d in self.project.store.table("mounts").iter_raw()
                     if d.get("workspace") == workspace), None)
        if slot is None:
            return  # not mounted: the stage is checked when run() reads the pipeline
        from goldfish.pipelines.model import load_pipeline

        try:
            pipeline = load_pipeline(self.project.slot_path(slot))
        except GoldfishError:
            return  # no readable pipeline yet; run() reports that itself
        known = [s.name for s in pipeline.stages]
        if stage not in known:
            raise NotFound(f"Stage {stage!r} is not in {workspace}'s pipeline.{names.did_you_mean(stage, known)}",
                           fix=f"Use one of its stages: {', '.join(known)}.")

    # --------------------------------------------------------------- lineage
    def get_lineage(self, run_id: str, direction: str = "downstream") -> LineageResult:
        return get_lineage(self.project, run_id, direction)

    def provenance(self, run_id: str) -> dict[str, Any]:
        return provenance(self.project, run_id)




def _next_step(run: dict[str, Any]) -> str | None:
    state = run.get("state")
    if state not in ("completed", "failed", "terminated", "canceled", "skipped"):
        return f"Still {state}: follow with inspect_run({run['id']!r}) and logs({run['id']!r}, follow=True)."
    from goldfish.runs.gate import blocks_gate

    if blocks_gate(run):
        return f"Judge it: finalize_run({run['id']!r}, results) (list_unfinalized_runs shows the call to make)."
    if run.get("role") == "supporting" and run.get("results_status") != "finalized":
        return (f"A supporting stage: it is settled when its pipeline run's result is finalized "
                f"(finalize_run({run.get('pipeline_run_id')!r}, results)).")
    return None


__all__ = ["Records", "checkpoint_record", "consume_saved_specs", "new_record", "saved_spec_for"]
