"""The ``Runs`` service (``project.runs``): run, wait, status, cancel.

run() is provenance first: the request is validated (nothing written on bad input),
the slot is synced into a version, then one transaction creates the pipeline run, a stage run and
an experiment record per stage, the run index entries and the audit row — and only then is the
detached runner spawned. Everything after that happens in the runner.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from goldfish import names
from goldfish.errors import InvalidInput, NotFound
from goldfish.runs.cancel import CancelResult, cancel_run
from goldfish.runs.availability import backend_issue, request_gpus, require_backend
from goldfish.runs.gate import check_gate, gate_message, unfinalized_runs
from goldfish.issues import Issue
from goldfish.runs.launch_review import LaunchFinding, StageCheck, as_issues, check_stages
from goldfish.runs.launch_review import keep_archive, version_archive
from goldfish.pipelines.model import load_pipeline
from goldfish.pipelines.validate import validate_pipeline
from goldfish.records.roles import RESULT, SUPPORTING, metric_mentions, pick_result_stage
from goldfish.records.service import consume_saved_specs, new_record
from goldfish.runs.reconciler import reconcile, refresh, runner_alive
from goldfish.runs.request import RunRequest, build_request
from goldfish.runs.standby import Standby
from goldfish.runs.state import (
    PIPELINE_TERMINAL,
    TERMINAL,
    now_iso,
    pipeline_state_of,
    transition,
    ws_partition,
)

if TYPE_CHECKING:
    from goldfish.pipelines.model import Pipeline
    from goldfish.project import Project
    from goldfish.runs.hooks import RunHooks
    from goldfish.store import Transaction

AUDIT_LOG = "audit"
WAIT_POLL = 0.25
DEFAULT_WAIT_SECONDS = 600.0


class StageRunInfo(BaseModel):
    stage: str = Field(description="Stage name")
    stage_run_id: str = Field(description="Stage run id (inspect_run, logs, cancel, finalize_run)")
    record_id: str = Field(description="Experiment record id (ULID)")
    state: str = Field(description="pending, preparing, launching, running, post_run, completed, failed, "
                                   "terminated, canceled or skipped")
    cause: str | None = Field(default=None, description="Why it failed/terminated/was canceled or skipped")
    error: str | None = Field(default=None, description="What went wrong and what to do")
    infra_outcome: str | None = Field(default=None, description="Set once terminal")
    results_status: str = Field(default="missing", description="missing, auto or finalized")
    role: Literal["result", "supporting"] = Field(
        default="result", description="result: this stage run carries the pipeline run's result (finalize it); "
                                      "supporting: it feeds the result and is finalized with it")


class RunResult(BaseModel):
    """A pipeline run: what was recorded, and the state of each stage run."""

    pipeline_run_id: str = Field(description="prun-… id of the whole pipeline run")
    workspace: str
    slot: str | None = None
    version: str = Field(description="Version (vN) every stage of this run executes")
    sha: str = Field(description="Commit of that version")
    reused_version: bool = Field(default=False, description="True when the slot was unchanged since vN")
    stages: list[str] = Field(description="Stages of this run, in run order")
    result_stage: str | None = Field(default=None, description="The stage whose run carries this run's result")
    stage_runs: list[StageRunInfo]
    status: Literal["pending", "running", "completed", "failed", "canceled", "blocked"] = Field(
        description="Pipeline state; terminal once every stage run is. blocked: preflight or the pre-run review "
                    "stopped it before anything launched (see findings); it does not hold the finalization gate")
    done: bool = Field(description="True when every stage run is terminal")
    findings: list[LaunchFinding] = Field(
        default_factory=list, description="When blocked: each problem found before launch, with file:line and the fix")
    message: str = Field(description="What happened and what to do next")
    note: str | None = Field(default=None, description="Set when wait=True gave up before the run ended")
    skipped_files: list[dict[str, Any]] = Field(default_factory=list,
                                                description="Slot files left out of the version (too large)")


class GateInfo(BaseModel):
    blocked: bool
    unfinalized: list[str] = Field(default_factory=list)
    message: str | None = None


class DryRunResult(BaseModel):
    """What a run would do; nothing was written or launched."""

    dry_run: Literal[True] = True
    valid: bool = Field(description="True when the run could start (no errors, gate open)")
    workspace: str
    stages: list[str] = Field(description="Stages that would run, in run order")
    result_stage: str | None = Field(default=None, description="The stage whose run would carry the result")
    errors: list[Issue] = Field(default_factory=list, description="Validation, preflight and blocking review findings")
    warnings: list[Issue] = Field(default_factory=list)
    gate: GateInfo


def _known_inputs(check: StageCheck) -> dict[str, dict[str, Any]]:
    """Inputs resolved at launch, less those from stages of the same run (they never ran)."""
    return {name: entry for name, entry in check.inputs.items()
            if not str(entry.get("run_id") or "").startswith("(this run")}


def _blocked_before_launch(docs: list[dict[str, Any]]) -> bool:
    """A pipeline run stopped by the launch review: a stage blocked, and none ever started."""
    return (any(d.get("infra_outcome") == "blocked" for d in docs)
            and not any(d.get("started_at") or d.get("backend_handle") for d in docs)
            and all(d.get("cause") in ("preflight", "review_blocked", "run_blocked") for d in docs))


def metric_warnings(app: Path, pipeline: Pipeline, stages: list[str], metric: str, declared: str | None) -> list[Issue]:
    """A warning when no stage of the run (or of the pipeline) mentions the primary metric."""
    if declared:
        return []
    if metric_mentions(app, pipeline, stages, metric):
        return []
    elsewhere = metric_mentions(app, pipeline, [s for s in pipeline.stage_names if s not in stages], metric)
    where = (f"; only {', '.join(elsewhere)} (not in this run) does" if elsewhere
             else "; no stage of the pipeline does")
    return [Issue(
        location="results_spec.primary_metric",
        message=f"no stage of this run mentions {metric!r}{where}. The run's result goes on its last stage "
                f"({stages[-1]}), which will have no value to finalize.",
        fix=f"Check the metric name against what the stages log (log_metric({metric!r}, …)), add the stage that "
            "logs it to stages, or name the result stage with results_spec.stage.",
    )]


def _new_id(prefix: str, taken: Callable[[str], bool]) -> str:
    while True:
        candidate = f"{prefix}-{secrets.token_hex(4)}"
        if not taken(candidate):
            return candidate


def audit(tx: Transaction, project: Project, op: str, *, workspace: str | None, slot: str | None,
          reason: str | None, details: dict[str, Any]) -> None:
    journal = getattr(project, "journal", None)
    if journal is not None:
        journal.record(tx, op, reason=reason, workspace=workspace, slot=slot, details=details)
        return
    tx.append_event(AUDIT_LOG, {"ts": now_iso(), "op": op, "source": project.source, "workspace": workspace,
                                "slot": slot, "reason": reason, "details": details})


def _regenerate_state_md(project: Project) -> Callable[[], None]:
    def run() -> None:
        state_md = getattr(project, "state_md", None)
        if state_md is not None:
            state_md.regenerate_quietly()

    return run


class Runs:
    def __init__(self, project: Project):
        self.project = project
        self._next_check: dict[str, float] = {}
        self._hooks: RunHooks | None = None

    @cached_property
    def standby(self) -> Standby:
        """The runner started ahead of time for the next run() (``runs.standby``)."""
        return Standby(self.project)

    @property
    def hooks(self) -> RunHooks:
        """The runner's review hooks, loaded once (scanning entry points is not free)."""
        if self._hooks is None:
            from goldfish.runs.hooks import load_hooks

            self._hooks = load_hooks()
        return self._hooks

    # -------------------------------------------------------------------- run
    def run(
        self,
        workspace: str,
        stages: list[str] | None = None,
        pipeline: str | None = None,
        config_override: dict[str, Any] | None = None,
        inputs_override: dict[str, Any] | None = None,
        reason: str | dict[str, Any] | None = None,
        results_spec: dict[str, Any] | None = None,
        experiment_group: str | None = None,
        wait: bool = False,
        dry_run: bool = False,
        skip_review: bool = False,
        *,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        progress: Callable[[RunResult], None] | None = None,
    ) -> RunResult | DryRunResult:
        """Record a pipeline run and start it (see the module docstring); dry_run only validates."""
        request = build_request(
            self.project, workspace, stages=stages, pipeline=pipeline, config_override=config_override,
            inputs_override=inputs_override, reason=reason, results_spec=results_spec,
            experiment_group=experiment_group, dry_run=dry_run, skip_review=skip_review,
        )
        if dry_run:
            return self.dry_run(request)
        require_backend(self.project, gpus=request_gpus(self.project, request))
        check_gate(self.project, request.workspace)
        self.check_store(request.workspace)
        self.standby.ensure()  # a runner process warming up while this call does its own work
        version = self.project.workspaces.sync_for_run(request.slot, request.reason_summary, state_md=False)
        started: list[str] = []

        def start(prun_id: str) -> None:  # right after the commit: the stage's start waits on nothing else
            keep_archive(app, self.project.runs_dir / prun_id, version.sha)  # the first stage's files
            started.append(self.standby.start_runner(prun_id))

        try:
            with version_archive(self.project, request.workspace, version.sha) as app:
                archived = load_pipeline(app, request.pipeline_name)
                result_stage = self.result_stage(request, app, archived)
                checks = self.review(request, app, archived, sha=version.sha)
                result = self.record(request, version, result_stage, checks, on_recorded=start)
        except BaseException:
            _regenerate_state_md(self.project)()  # the version was saved: STATE.md shows it
            raise
        if result.status == "blocked":
            return result
        result.message += "".join(started)
        self.standby.ensure_next()  # for the next run()
        if wait:
            return self.wait(result.pipeline_run_id, wait_seconds, progress)
        return result

    def check_store(self, workspace: str) -> None:
        """Read every table record() writes, so a damaged partition or shard raises its StoreError
        before sync_for_run creates a version that no run would then record."""
        store = self.project.store
        part = ws_partition(workspace)
        for name in ("pipeline_runs", "runs", "records", "versions"):
            store.table(name, part).raw()  # a sharded table loads every shard
        for name in ("run_index", "active_pipelines"):
            store.table(name).raw()

    def result_stage(self, request: RunRequest, app: Path, pipeline: Pipeline) -> str:
        spec = request.results_spec
        if spec is None:
            return request.stages[-1]
        return pick_result_stage(app, pipeline, request.stages, spec.primary_metric, spec.stage)[0]

    def review(self, request: RunRequest, app: Path, pipeline: Pipeline, *, sha: str | None = None
               ) -> list[StageCheck]:
        """Preflight and pre-run review of every requested stage (``launch_review.check_stages``)."""
        return check_stages(
            self.project, self.hooks, workspace=request.workspace, app_dir=app, pipeline=pipeline,
            stages=request.stages, config_overrides=request.config_overrides,
            input_overrides=request.input_overrides, skip_review=request.skip_review,
            reason=request.reason.model_dump() if request.reason else None, sha=sha)

    def review_slot(self, workspace: str, slot: str) -> tuple[list[Issue], list[Issue]]:
        """validate_config's review: every stage of the slot's pipeline, as run() would review it with
        no overrides (errors, warnings), plus the primary-metric check of a results_spec saved for it."""
        from goldfish.records.service import saved_spec_for
        from goldfish.records.results_spec import validate_results_spec

        slot_path = self.project.slot_path(slot)
        pipeline = load_pipeline(slot_path, None)
        stages = pipeline.topological_order(pipeline.stage_names)
        checks = check_stages(self.project, self.hooks, workspace=workspace, app_dir=slot_path, pipeline=pipeline,
                              stages=stages, config_overrides={}, input_overrides={}, skip_review=False)
        errors, warnings = as_issues(checks)
        try:
            saved, _ = saved_spec_for(self.project, workspace, stages)
            spec = validate_results_spec(saved) if saved is not None else None
        except InvalidInput:
            spec = None
        if spec is not None:
            warnings += metric_warnings(slot_path, pipeline, stages, spec.primary_metric, spec.stage)
        return errors, warnings

    def dry_run(self, request: RunRequest) -> DryRunResult:
        project = self.project
        gce = project.config.gce
        report = validate_pipeline(
            request.pipeline, request.slot_path, stages=request.stages,
            config_override={s: o for s, o in request.config_overrides.items() if o} or None,
            overridden_inputs={s: set(o) for s, o in request.input_overrides.items()},
            backend=project.config.jobs.backend,
            profile_overrides=gce.profile_overrides if gce else None, zones=gce.zones if gce else None,
            source_schemas=project.sources.source_schemas,
        )
        errors = list(report.errors)
        for stage in request.stages:  # sources changed since registration
            errors += project.sources.preflight(request.pipeline.stage(stage), request.input_overrides.get(stage) or {},
                                                location=f"stages[{request.pipeline.index(stage)}]")
        known = {(i.location, i.message) for i in errors}
        errors += [i for i in request.input_issues if (i.location, i.message) not in known]
        refused = backend_issue(project, gpus=request_gpus(project, request))
        if refused is not None:
            errors.insert(0, refused)
        warnings = list(report.warnings)
        result_stage = None
        if not errors:  # the review reads the code as it would run; a broken pipeline is reported above
            review_errors, review_warnings = as_issues(self.review(request, request.slot_path, request.pipeline))
            errors += review_errors
            warnings += review_warnings
        if request.results_spec is not None and request.stages:
            spec = request.results_spec
            result_stage = self.result_stage(request, request.slot_path, request.pipeline)
            warnings += metric_warnings(request.slot_path, request.pipeline, request.stages, spec.primary_metric,
                                        spec.stage)
        blocking = unfinalized_runs(project, request.workspace)
        gate = GateInfo(blocked=bool(blocking), unfinalized=[r["id"] for r in blocking])
        if blocking:
            message, fix = gate_message(request.workspace, blocking)
            gate.message = f"{message} Fix: {fix}"
        return DryRunResult(valid=not errors and not blocking, workspace=request.workspace, stages=request.stages,
                            result_stage=result_stage, errors=errors, warnings=warnings, gate=gate)

    def record(self, request: RunRequest, version: Any, result_stage: str | None = None,
               checks: list[StageCheck] | None = None, on_recorded: Callable[[str], None] | None = None
               ) -> RunResult:
        """One transaction: pipeline run, stage runs, records, index entries, audit row — and, when the
        launch review blocked a stage, every stage run's terminal transition (nothing launches).
        ``on_recorded(prun_id)`` runs right after the commit when nothing was blocked; STATE.md after it."""
        project = self.project
        part = ws_partition(request.workspace)
        now = now_iso()
        spec = request.results_spec.model_dump() if request.results_spec else None
        reason = request.reason.model_dump() if request.reason else None
        result_stage = result_stage or request.stages[-1]
        by_stage = {c.stage: c for c in checks or []}
        blocked = [c for c in checks or [] if c.cause is not None]
        with project.store.transaction() as tx:
            index = tx.table("run_index")
            prun_id = _new_id("prun", index.has)
            stage_ids: dict[str, str] = {}
            for stage in request.stages:
                stage_ids[stage] = _new_id("stage", lambda c: index.has(c) or c in stage_ids.values())
            tx.table("pipeline_runs", part).add({
                "workspace": request.workspace, "slot": request.slot, "version": version.version,
                "sha": version.sha, "pipeline": request.pipeline_name, "stages": request.stages,
                "state": "pending", "created_at": now, "updated_at": now, "finished_at": None,
                "reason": reason, "reason_summary": request.reason_summary, "results_spec": spec,
                "experiment_group": request.experiment_group, "config_override": request.config_overrides,
                "inputs_override": request.input_overrides, "skip_review": request.skip_review,
                "dry_run": False, "stage_runs": stage_ids, "runner": None,
                "result_stage": result_stage, "result_run_id": stage_ids[result_stage],
            }, doc_id=prun_id)
            runs = tx.table("runs", part)
            record_ids: dict[str, str] = {}
            for stage in request.stages:
                rid = stage_ids[stage]
                role = RESULT if stage == result_stage else SUPPORTING
                check = by_stage.get(stage)
                record_ids[stage] = new_record(
                    tx, request.workspace, record_type="run", version=version.version, stage_run_id=rid,
                    pipeline_run_id=prun_id, stage=stage, experiment_group=request.experiment_group, created_at=now,
                    role=role)
                runs.add({
                    "workspace": request.workspace, "pipeline_run_id": prun_id, "stage": stage,
                    "record_id": record_ids[stage], "version": version.version, "sha": version.sha,
                    "state": "pending", "cause": None, "error": None, "history": [],
                    "created_at": now, "started_at": None, "finished_at": None, "updated_at": now,
                    "reason": reason, "reason_summary": request.reason_summary, "results_spec": spec,
                    "experiment_group": request.experiment_group, "config": None,
                    "config_override": request.config_overrides.get(stage) or {},
                    "inputs_override": request.input_overrides.get(stage) or {},
                    "profile": None, "max_runtime_seconds": None, "heartbeat_timeout_seconds": None,
                    "depends_on": request.depends_on.get(stage, []), "outputs": {},
                    # A run blocked before launch keeps what its inputs resolved to (its upstream lineage);
                    # the runner records the real resolution when the stage starts.
                    "inputs": _known_inputs(check) if blocked and check else {},
                    "backend": project.config.jobs.backend, "backend_handle": None,
                    "run_dir": str(project.runs_dir / rid), "cancel_requested": False, "cancel_reason": None,
                    "skip_review": request.skip_review, "infra_outcome": None, "results_status": "missing",
                    "ml_outcome": "unknown", "results_auto": None, "results_final": None,
                    "results_history": [], "comparison": None, "finalized_at": None, "metrics_summary": {},
                    "svs": {"preflight": check.preflight if check else None,
                            "review": check.review if check else None, "skip_review": request.skip_review,
                            "during": [], "post": None, "findings_count": 0},
                    "lineage_recorded": False, "exit_code": None, "role": role,
                }, doc_id=rid)
                index.add({"workspace": request.workspace, "kind": "stage"}, doc_id=rid)
            index.add({"workspace": request.workspace, "kind": "pipeline"}, doc_id=prun_id)
            tx.table("active_pipelines").add({"workspace": request.workspace, "created_at": now}, doc_id=prun_id)
            if blocked:
                first = blocked[0]
                for stage in request.stages:
                    check = by_stage[stage]
                    if check.cause is not None:
                        transition(tx, stage_ids[stage], "failed", expected="pending", cause=check.cause,
                                   error=check.error, source=project.source, workspace=request.workspace)
                    else:
                        transition(tx, stage_ids[stage], "skipped", expected="pending", cause="run_blocked",
                                   error=f"Not launched: stage {first.stage} was blocked before launch.",
                                   source=project.source, workspace=request.workspace)
            consume_saved_specs(tx, request.workspace, request.saved_spec_stages)
            audit(tx, project, "run", workspace=request.workspace, slot=request.slot,
                  reason=request.reason_summary,
                  details={"pipeline_run_id": prun_id, "stage_runs": stage_ids, "version": version.version,
                           "reused_version": bool(getattr(version, "reused", False)),
                           "results_spec_saved_for": request.saved_spec_stages})
        if on_recorded is not None and not blocked:
            on_recorded(prun_id)
        _regenerate_state_md(project)()
        result = self.status(prun_id)
        result.reused_version = bool(getattr(version, "reused", False))
        result.skipped_files = [f if isinstance(f, dict) else f.model_dump()
                                for f in getattr(version, "skipped_files", []) or []]
        if not blocked:
            result.message = (
                f"Recorded {prun_id} ({len(request.stages)} stage run(s)) on {version.version}; every stage passed "
                f"preflight and the pre-run review, and the runner executes it in the background. Follow with "
                f"inspect_run(stage_run_id) and logs(stage_run_id, follow=True). Its result is the "
                f"{result_stage} stage ({stage_ids[result_stage]}): finalize that one when it ends."
            )
        return result

    # ----------------------------------------------------------------- status
    def _locate(self, run_id: object) -> tuple[str, str]:
        if not isinstance(run_id, str) or not (names.STAGE_RUN_RE.fullmatch(run_id)
                                               or names.PIPELINE_RUN_RE.fullmatch(run_id)):
            raise InvalidInput(f"Invalid run id {run_id!r}.",
                               fix="Use a stage run id like stage-1a2b3c4d or a pipeline run id like prun-1a2b3c4d.")
        entry = self.project.store.table("run_index").get_doc(run_id)
        if entry is None:
            raise NotFound(f"Run {run_id} not found.", fix="Use a run id returned by run() or list_history().")
        return str(entry["workspace"]), str(entry.get("kind") or ("stage" if run_id.startswith("stage-") else "pipeline"))

    def get(self, run_id: str) -> dict[str, Any]:
        """The stored document of a stage or pipeline run."""
        ws, kind = self._locate(run_id)
        table = "runs" if kind == "stage" else "pipeline_runs"
        return self.project.store.table(table, ws_partition(ws)).require(run_id, what=f"{kind} run")

    def status(self, prun_id: str) -> RunResult:
        ws, kind = self._locate(prun_id)
        if kind != "pipeline":
            prun_id = self.get(prun_id)["pipeline_run_id"]
        refresh(self.project, [prun_id])  # a run whose runner died is settled before it is read
        prun = self.project.store.table("pipeline_runs", ws_partition(ws)).require(prun_id, what="pipeline run")
        runs = self.project.store.table("runs", ws_partition(ws))
        infos = []
        docs = []
        for stage in prun["stages"]:
            doc = runs.get_doc(prun["stage_runs"][stage]) or {}
            docs.append(doc)
            infos.append(StageRunInfo(
                stage=stage, stage_run_id=doc.get("id", prun["stage_runs"][stage]), record_id=doc.get("record_id", ""),
                state=doc.get("state", "pending"), cause=doc.get("cause"), error=doc.get("error"),
                infra_outcome=doc.get("infra_outcome"), results_status=doc.get("results_status") or "missing",
                role=SUPPORTING if doc.get("role") == SUPPORTING else RESULT,
            ))
        done = all(i.state in TERMINAL for i in infos)
        # Two lock-free reads may see two versions of the partition: derive the pipeline state from
        # the stage states just read (it is a function of them) so status and done always agree.
        state = pipeline_state_of(i.state for i in infos) if done else prun["state"]
        if not done and state in PIPELINE_TERMINAL:
            state = "running"
        counts: dict[str, int] = {}
        for info in infos:
            counts[info.state] = counts.get(info.state, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        findings: list[LaunchFinding] = []
        if done and state == "failed" and _blocked_before_launch(docs):
            state = "blocked"
            for doc in docs:
                svs = doc.get("svs") or {}
                if doc.get("infra_outcome") == "blocked":
                    findings += StageCheck(stage=str(doc.get("stage")), preflight=svs.get("preflight") or {},
                                           review=svs.get("review")).findings()
            blocking = [f for f in findings if f.blocks]
            shown = "; ".join(f"{f.stage}: {f.where} [{f.check}] {f.message}"
                              + (f" Fix: {f.fix}" if f.fix else "") for f in blocking[:5])
            more = f" (+{len(blocking) - 5} more in findings)" if len(blocking) > 5 else ""
            message = (f"{prun_id} is BLOCKED before launch: nothing ran. {shown}{more}. Fix the files in slot "
                       f"{prun.get('slot') or ws} and call run() again (a blocked run does not hold the finalization "
                       "gate); skip_review=True only if the review is wrong about safe code.")
        elif done:
            message = f"{prun_id} is {state} ({summary})."
            from goldfish.runs.gate import blocks_gate

            judge = [d["id"] for d in docs if d.get("id") and blocks_gate(d)]
            if judge:
                message += (f" Judge its result before the next run: finalize_run({judge[0]!r}, results) (it also "
                            "settles the supporting stages).")
        else:
            message = f"{prun_id} is {state} ({summary})."
        return RunResult(
            pipeline_run_id=prun_id, workspace=ws, slot=prun.get("slot"), version=prun["version"], sha=prun["sha"],
            stages=prun["stages"], result_stage=prun.get("result_stage"), stage_runs=infos, status=state, done=done,
            message=message, findings=findings,
        )

    def list_active(self) -> list[dict[str, Any]]:
        """Pipeline runs that are not terminal (from the small active_pipelines table)."""
        out = []
        for entry in self.project.store.table("active_pipelines").docs():
            prun = self.project.store.table("pipeline_runs", ws_partition(entry["workspace"])).get_doc(entry["id"])
            if prun is not None and prun.get("state") not in PIPELINE_TERMINAL:
                out.append(prun)
        return out

    # ------------------------------------------------------------------- wait
    def poll(self, run_id: str) -> RunResult:
        """``status``, and every half lease a check that a runner drives it (else reconcile)."""
        result = self.status(run_id)
        now = time.monotonic()
        lease_check = max(1.0, self.project.config.jobs.runner_lease_seconds / 2)
        if not result.done and now >= self._next_check.get(result.pipeline_run_id, now + lease_check) - lease_check:
            self._next_check[result.pipeline_run_id] = now + lease_check
            if not runner_alive(self.project, result.pipeline_run_id):
                reconcile(self.project)
        return result

    def wait(self, run_id: str, timeout: float = DEFAULT_WAIT_SECONDS,
             progress: Callable[[RunResult], None] | None = None) -> RunResult:
        """Block until the pipeline run is terminal or ``timeout`` passes (then ``note`` says so)."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            result = self.poll(run_id)
            if progress is not None:
                progress(result)
            if result.done:
                return result
            if time.monotonic() >= deadline:
                result.note = (
                    f"Still {result.status} after waiting {timeout:.0f}s; it keeps running in the background."
                    " Follow it with inspect_run(stage_run_id) and logs(stage_run_id, cursor=...)."
                )
                return result
            time.sleep(WAIT_POLL)

    # ----------------------------------------------------------------- cancel
    def cancel(self, run_id: str, reason: str, *, wait_seconds: float | None = None) -> CancelResult:
        """Cancel a stage run (or every stage run of a pipeline run) from any non-terminal state."""
        return cancel_run(self, run_id, reason, wait_seconds=wait_seconds)
