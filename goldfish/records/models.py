"""Result models of the experiment-memory tools (finalize, history, tags, context, lineage).

They are the tools' output schemas, so every field says what it means to the agent reading it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

RecordType = Literal["run", "checkpoint"]
ResultsStatus = Literal["missing", "auto", "finalized"]
MetricSource = Literal["final", "auto"]
SortBy = Literal["created", "metric"]
Include = Literal["results", "comparison", "tags", "spec", "config", "lineage"]
Direction = Literal["downstream", "upstream"]

DEFAULT_INCLUDE: tuple[Include, ...] = ("results", "tags", "comparison")


def _is_none(value: object) -> bool:
    return value is None


def sparse(**kwargs: Any) -> Any:
    """A field left out of the output when None (keeps long record lists short)."""
    return Field(default=None, exclude_if=_is_none, **kwargs)


# ----------------------------------------------------------------------------- comparison


class PreviousComparison(BaseModel):
    record_id: str = Field(description="Record of the previous finalized result (with a value) of the same stage")
    stage_run_id: str = Field(description="Its stage run id")
    primary_metric: str = Field(description="Metric its value is for")
    value: float = Field(description="Its final value")
    delta: float | None = Field(description="This value minus that one, signed so positive = better; null when "
                                            "the metrics differ")


class BestComparison(BaseModel):
    record_id: str = Field(description="Record compared against")
    stage_run_id: str | None = Field(default=None, description="Its stage run id")
    tag: str | None = Field(default=None, description="Tag that named it (baseline_run @tag or best/best-*)")
    via: Literal["baseline_run", "best_tag"] = Field(description="Where the comparison target came from")
    primary_metric: str = Field(description="Metric its value is for")
    value: float = Field(description="Its final value (auto value when it is not finalized)")
    delta: float | None = Field(description="Positive = this run is better; null when the metrics differ")


class Comparison(BaseModel):
    vs_previous: PreviousComparison | None = Field(
        default=None, description="Against the last finalized result with a value of the same stage, created before")
    vs_best: BestComparison | None = Field(
        default=None, description="Against the results_spec's baseline_run, else the current best/best-* tag")
    config_diff: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Changed config keys vs the previous run: {key: [old, new]} (nested keys dotted, long values cut "
                    "to 50 characters)")


# ----------------------------------------------------------------------------- finalize


class PreviousFinal(BaseModel):
    results: dict[str, Any] = Field(description="The results given then")
    ml_outcome: str
    finalized_at: str | None = None
    finalized_by: str | None = None


class FinalizedRun(BaseModel):
    record_id: str
    stage_run_id: str
    workspace: str
    stage: str
    results_status: Literal["finalized"] = "finalized"
    ml_outcome: str = Field(description="success, partial, miss or unknown (as given)")
    value: float | None = Field(description="The final primary metric value (null: the run produced none)")
    comparison: Comparison
    refinalized: bool = Field(description="True when this replaced an earlier finalization (kept in results_history)")
    previous: PreviousFinal | None = Field(default=None, description="The finalization this one replaced")


class SupportingRun(BaseModel):
    """A supporting stage run settled with its pipeline run's result: no value of its own."""

    stage_run_id: str
    record_id: str | None
    stage: str
    infra_outcome: str | None
    results_status: Literal["finalized"] = "finalized"
    supporting: str = Field(description="The pipeline run whose result this stage supported (prun-…)")


class NotFinalized(BaseModel):
    stage_run_id: str
    stage: str
    state: str
    infra_outcome: str | None
    why: str


class FinalizeResult(BaseModel):
    """What finalize_run recorded. For a prun- id, ``runs`` has every stage run it finalized."""

    record_id: str | None = Field(description="The finalized record (null when a prun- id finalized several)")
    stage_run_id: str | None = Field(description="Its stage run id (null when several)")
    pipeline_run_id: str | None = Field(default=None, description="Set when a prun- id was given")
    results_status: Literal["finalized"] = "finalized"
    ml_outcome: str
    comparison: Comparison | None = Field(description="vs_previous, vs_best, config_diff (null when several runs)")
    refinalized: bool = Field(description="True when an earlier finalization was replaced")
    previous: PreviousFinal | None = Field(default=None, description="The replaced finalization (single run)")
    runs: list[FinalizedRun] = Field(description="The result(s) finalized by this call (one per pipeline run)")
    supporting: list[SupportingRun] = Field(
        default_factory=list, description="Supporting stage runs finalized with the result (no value of their own)")
    not_finalized: list[NotFinalized] = Field(
        default_factory=list, description="Stage runs of the pipeline run left alone (canceled, blocked, skipped)")
    outcome_hint: str | None = Field(
        default=None, description="Outcome the results_spec thresholds suggest for this value")
    warnings: list[str] = Field(default_factory=list, description="Things worth a second look; nothing was refused")
    unfinalized_remaining: list[str] = Field(description="Stage runs of this workspace still blocking run()")
    message: str


# ----------------------------------------------------------------------------- gate


class UnfinalizedRun(BaseModel):
    stage_run_id: str
    record_id: str | None
    pipeline_run_id: str | None
    stage: str
    state: str
    infra_outcome: str
    outcome: str | None = Field(
        default=None, description="How the pipeline run ended for judging: infra_outcome, or the crash/preemption of "
                                  "the upstream stage that made this result stage skip")
    cause: str | None = Field(default=None, description="Why it ended that way (e.g. exit_nonzero, preempted)")
    supporting: list[str] = Field(default_factory=list,
                                  description="Supporting stage runs of the same pipeline run, settled with it")
    results_auto: dict[str, Any] | None = Field(description="Auto-extracted results (primary metric's last value)")
    finished_at: str | None
    age: str = Field(description="How long ago it ended, e.g. 5m ago")
    finalize_call: str = Field(description="The finalize_run call to make; check the value, outcome and notes first")


class UnfinalizedResult(BaseModel):
    workspace: str
    count: int
    runs: list[UnfinalizedRun] = Field(description="Oldest first")
    message: str


# ----------------------------------------------------------------------------- history


class PrimaryMetric(BaseModel):
    name: str
    value: float | None = Field(description="Null when the run never logged the metric")
    source: MetricSource = Field(description="final (finalize_run) or auto (extracted after the run)")


class SupportingStage(BaseModel):
    """A supporting stage of a result row's pipeline run (inspect it with inspect_record / inspect_run)."""

    stage: str
    record_id: str
    stage_run_id: str | None = None
    state: str | None = None
    infra_outcome: str | None = None
    results_status: str | None = None


class HistoryRecord(BaseModel):
    """One experiment record: a result (one per pipeline run), a checkpoint, or, with include_supporting,
    a supporting stage. Keys without a value are left out."""

    record_id: str
    type: RecordType
    version: str
    created_at: str
    age: str = Field(description="e.g. 5m ago")
    stage: str | None = sparse()
    stage_run_id: str | None = sparse(description="For inspect_run / logs / finalize_run")
    reason: str | None = sparse(description="Run reason summary, or the checkpoint message")
    primary_metric: PrimaryMetric | None = sparse(description="From results_final, else results_auto")
    results_status: ResultsStatus | None = sparse(description="missing, auto or finalized (runs)")
    infra_outcome: str | None = sparse(description="completed, preempted, crashed, canceled, blocked or skipped")
    ml_outcome: str | None = sparse(description="success, partial, miss or unknown (set by finalize_run)")
    state: str | None = sparse(description="Stage run state")
    tags: list[str] | None = sparse(description="Only present when the record is tagged")
    experiment_group: str | None = sparse(description="Only present when set")
    pipeline_run_id: str | None = sparse(description="The pipeline run (prun-…) of a run record")
    role: Literal["supporting"] | None = sparse(
        description="Only on supporting stage rows (include_supporting=True): no result of their own")
    result_record_id: str | None = sparse(description="On a supporting row: the record carrying its run's result")
    supporting: list[SupportingStage] | None = sparse(
        description="On a result row: the other stages of its pipeline run, settled with it")


class HistoryResult(BaseModel):
    workspace: str
    records: list[HistoryRecord]
    total: int = Field(description="Records matching the filters")
    has_more: bool = Field(description="True when offset + limit < total")


# ----------------------------------------------------------------------------- records


class RecordResults(BaseModel):
    results_status: str | None
    results_auto: dict[str, Any] | None
    results_final: dict[str, Any] | None
    ml_outcome: str | None
    finalized_at: str | None = None
    finalized_by: str | None = None
    results_history: list[dict[str, Any]] = Field(default_factory=list,
                                                  description="Earlier finalizations, oldest first")


class RecordDetail(BaseModel):
    record_id: str
    type: RecordType
    workspace: str
    version: str
    created_at: str
    age: str
    stage: str | None = None
    stage_run_id: str | None = None
    pipeline_run_id: str | None = None
    state: str | None = None
    infra_outcome: str | None = None
    reason: str | None = None
    experiment_group: str | None = None
    primary_metric: PrimaryMetric | None = None
    role: Literal["result", "supporting"] | None = Field(
        default=None, description="result: carries its pipeline run's result; supporting: settled with it")
    result_record_id: str | None = Field(default=None, description="Supporting records: the result's record")
    results: RecordResults | None = Field(default=None, description="include 'results'")
    comparison: Comparison | None = Field(default=None, description="include 'comparison' (set at finalization)")
    tags: list[str] | None = Field(default=None, description="include 'tags'")
    spec: dict[str, Any] | None = Field(default=None, description="include 'spec': the run's results_spec")
    config: dict[str, Any] | None = Field(default=None, description="include 'config': merged stage config")
    lineage: dict[str, Any] | None = Field(default=None, description="include 'lineage': producers and consumers")
    next_step: str | None = Field(default=None, description="What to do with this record next, if anything")


class TagResult(BaseModel):
    record_id: str
    tag: str
    workspace: str
    record_type: RecordType
    version: str = Field(description="Version also tagged (protected from pruning)")
    stage_run_id: str | None = None
    message: str


# ----------------------------------------------------------------------------- context


class BestRun(BaseModel):
    record_id: str
    stage_run_id: str | None
    tag: str
    tagged_at: str | None = Field(default=None, description="When the tag was set")
    finalized_at: str | None = Field(default=None, description="When the best was finalized")
    goal_value: float | None = Field(default=None, description="goal_value of the best's results_spec")
    stage: str | None
    metric: str
    value: float
    direction: str
    ml_outcome: str | None


class TrendPoint(BaseModel):
    record_id: str
    stage_run_id: str
    stage: str
    value: float
    primary_metric: str
    direction: str
    tolerance: float | None = Field(description="The run's own results_spec tolerance")
    ml_outcome: str
    created_at: str
    finalized_at: str | None = Field(default=None, description="When this result was (last) finalized")
    outcome: str | None = Field(default=None, description="How its run ended (completed, preempted, crashed)")
    goal_value: float | None = Field(default=None, description="goal_value of its results_spec")


class RegressionAlert(BaseModel):
    record_id: str
    stage_run_id: str
    value: float
    best_value: float
    delta: float = Field(description="Signed so negative = worse than best")
    tolerance: float = Field(description="That run's spec tolerance the drop exceeded")
    finalized_at: str | None = Field(default=None, description="When that result was finalized")
    message: str


class ExperimentContext(BaseModel):
    workspace: str
    current_best: BestRun | None = Field(description="Most recent finalized best / best-* tag")
    awaiting_finalization: list[UnfinalizedRun] = Field(description="Runs blocking run() until finalized")
    recent_trend: list[TrendPoint] = Field(
        description="Last 10 finalized results with a value (one per pipeline run), newest first")
    regression_alerts: list[RegressionAlert] = Field(
        description="Results finalized after the best they are compared with, worse than it beyond their results_spec's "
                    "tolerance")
    message: str


# ----------------------------------------------------------------------------- debug / specs


class DebugInfo(BaseModel):
    record_id: str
    stage_run_id: str
    pipeline_run_id: str | None
    workspace: str
    stage: str
    state: str
    backend: str | None
    backend_handle: dict[str, Any] | None
    run_dir: str
    log_path: str = Field(description="stdout+stderr of the stage process")
    runtime_log_path: str = Field(description="SDK runtime log (logs.txt)")
    outputs_dir: str
    metrics_path: str
    version: str
    sha: str | None
    git_tag: str
    objects: dict[str, str] = Field(description="Object-store locations of this run (checkpoints, ...)")
    exists: dict[str, bool] = Field(description="Which of the paths above exist now")


class SavedSpecResult(BaseModel):
    workspace: str
    stage: str
    results_spec: dict[str, Any]
    replaced: bool = Field(description="True when an earlier saved spec for this stage was replaced")
    message: str


# ----------------------------------------------------------------------------- lineage


class Consumer(BaseModel):
    run_id: str
    workspace: str
    stage: str | None
    reason: str | None
    signal_consumed: list[str] = Field(description="Signals of the queried run this run read")
    state: str | None
    age: str


class Producer(BaseModel):
    run_id: str | None = Field(description="Upstream stage run (null for a source or a path)")
    workspace: str | None = None
    stage: str | None = None
    signal_produced: list[str] = Field(default_factory=list, description="Its signals this run read")
    inputs: list[str] = Field(description="This run's input names fed by it")
    kind: str = Field(description="stage, override_run, source, override_source or override_path")
    source: str | None = Field(default=None, description="Source name for source inputs")
    location: str | None = Field(default=None, description="Where the data was read from")
    state: str | None = None


class WorkspaceOrigin(BaseModel):
    workspace: str
    parent_workspace: str | None
    parent_version: str | None


class LineageResult(BaseModel):
    run_id: str
    workspace: str
    stage: str | None
    direction: Direction
    consumers: list[Consumer] | None = Field(default=None, description="downstream: runs that read this run")
    producers: list[Producer] | None = Field(default=None, description="upstream: what this run read")
    workspace_origin: list[WorkspaceOrigin] = Field(
        default_factory=list, description="upstream: the workspace and the workspaces it was forked from")
    message: str
