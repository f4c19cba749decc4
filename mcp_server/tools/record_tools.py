"""Experiment-memory tools: finalize_run, list_history, inspect_record, tag_record,
list_unfinalized_runs, get_experiment_context, get_debug_info, get_lineage, save_results_spec."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from goldfish.records.models import (
    DebugInfo,
    ExperimentContext,
    FinalizeResult,
    HistoryResult,
    Include,
    LineageResult,
    RecordDetail,
    SavedSpecResult,
    TagResult,
    UnfinalizedResult,
)
from mcp_server.budget import fit_page
from mcp_server.context import ServerContext, guarded

Workspace = Annotated[str, Field(min_length=1, max_length=64, description="Workspace name, or a slot (w1) holding it")]
Ref = Annotated[str, Field(min_length=1, max_length=80, description=(
    "Record id (26-character ULID from list_history), stage run id (stage-1a2b3c4d), or @tag (needs workspace)"))]


AWAITING_SHOWN = 10


class UnfinalizedPage(UnfinalizedResult):
    offset: int = Field(default=0, description="Runs skipped")
    has_more: bool = Field(default=False, description="More runs follow; raise offset to page")


class ExperimentContextView(ExperimentContext):
    awaiting_total: int = Field(description=(
        f"Runs awaiting finalization in all (awaiting_finalization lists the oldest {AWAITING_SHOWN})"))


class LineagePage(LineageResult):
    total: int = Field(default=0, description="Consumers (downstream) or producers (upstream) in all")
    offset: int = Field(default=0, description="Entries skipped")
    has_more: bool = Field(default=False, description="More entries follow; raise offset to page")


def _read(title: str) -> ToolAnnotations:
    return ToolAnnotations(title=title, read_only_hint=True, open_world_hint=False)


def _write(title: str, *, idempotent: bool) -> ToolAnnotations:
    return ToolAnnotations(title=title, read_only_hint=False, destructive_hint=False, idempotent_hint=idempotent,
                           open_world_hint=False)


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(annotations=_write("Finalize a run's results", idempotent=False))
    @guarded
    def finalize_run(
        record_or_run_id: Annotated[str, Field(min_length=1, max_length=80, description=(
            "The result stage's run id or record id, or the pipeline run id (prun-…)"))],
        results: Annotated[dict[str, Any], Field(description=(
            "Required: primary_metric (as in the run's results_spec), direction (maximize|minimize), value (number, "
            "or null for a run that produced none, with ml_outcome miss or unknown), "
            "dataset_split (train|val|test|other), ml_outcome (success|partial|miss|unknown), notes (15-8000 chars). "
            "Optional: unit, step, epoch (int >= 0), secondary {metric: number}, termination {infra_outcome}"))],
    ) -> FinalizeResult:
        """Record your judgement of a finished pipeline run: its final metric value and ML outcome.

        One result per pipeline run: it lives on the run's result stage (run() names it:
        result_stage, the last stage that logs primary_metric unless results_spec.stage says).
        Finalize that stage run (or its record, or the prun- id) once the run is terminal: it also
        settles the supporting stages as finalized (supporting prun-…) with no value of their own.
        run() in that workspace is blocked until each such result is finalized
        (list_unfinalized_runs shows the call to make). A crashed or preempted run, or one that
        never logged the metric, takes value null with ml_outcome miss or unknown — never invent
        a number. ml_outcome is set only here. The result compares the value with the previous
        result of the stage (vs_previous), the results_spec's baseline_run or the best/best-* tag
        (vs_best; positive delta = better) and lists changed config keys. Finalizing again
        replaces the result and keeps the earlier one in results_history. A running run is
        refused: wait for it (inspect_run, logs) or cancel it. Every problem in `results` is
        reported at once; nothing is written then.
        """
        return ctx.project().records.finalize_run(record_or_run_id, results)

    @server.tool(annotations=_read("List experiment history"))
    @guarded
    def list_history(
        workspace: Workspace,
        record_type: Annotated[Literal["run", "checkpoint"] | None, Field(
            description="Only runs, or only checkpoints (save_version)")] = None,
        stage: Annotated[str | None, Field(max_length=64, description="Only records of this stage")] = None,
        tagged: Annotated[bool | Annotated[str, Field(max_length=64)] | None, Field(
            description="true: only tagged records; false: only untagged; a tag name: records with that tag")] = None,
        metric: Annotated[str | None, Field(max_length=256, description="Only records whose primary metric is this")] = None,
        min_value: Annotated[float | None, Field(description="Only records whose primary metric value is >= this")] = None,
        experiment_group: Annotated[str | None, Field(max_length=128, description="Only this experiment_group")] = None,
        sort_by: Annotated[Literal["created", "metric"], Field(
            description="created (default) or metric (final value, else auto; records without one last)")] = "created",
        desc: Annotated[bool, Field(description="Newest / largest first (default true)")] = True,
        include_pruned: Annotated[bool, Field(description="Include records of pruned versions")] = False,
        finalized_only: Annotated[bool, Field(description="Only finalized runs")] = False,
        limit: Annotated[int, Field(ge=1, le=200, description="Page size (1-200)")] = 20,
        offset: Annotated[int, Field(ge=0, le=1_000_000, description="Records to skip")] = 0,
        include_supporting: Annotated[bool, Field(description=(
            "Also list supporting stages as rows of their own (default: only under their result's `supporting`)"
        ))] = False,
    ) -> HistoryResult:
        """Experiment records of a workspace: what ran, why, its primary metric, outcome and tags.

        The main way to recall past experiments: one row per pipeline run (its result) and per
        checkpoint. Each row has record_id, type (run or checkpoint), version, age, stage, reason,
        primary_metric {name, value, source final|auto}, results_status, infra_outcome,
        ml_outcome, state, pipeline_run_id, `supporting` (the other stages of that run) and tags /
        experiment_group when set. Page with limit/offset (total and has_more tell how many
        match). Follow up with inspect_record(record_id) for results and comparisons.
        """
        return fit_page(ctx.project().records.list_history(
            workspace, record_type=record_type, stage=stage, tagged=tagged, metric=metric, min_value=min_value,
            experiment_group=experiment_group, sort_by=sort_by, desc=desc, include_pruned=include_pruned,
            finalized_only=finalized_only, limit=limit, offset=offset, include_supporting=include_supporting),
            "records")

    @server.tool(annotations=_read("Inspect an experiment record"))
    @guarded
    def inspect_record(
        ref: Ref,
        include: Annotated[list[Include] | None, Field(max_length=6, description=(
            "Sections: results, comparison, tags, spec, config, lineage (default results, tags, comparison)"))] = None,
        workspace: Annotated[str | None, Field(min_length=1, max_length=64, description=(
            "Needed for @tag refs (tags belong to a workspace)"))] = None,
    ) -> RecordDetail:
        """One record in detail: auto and final results, comparison, tags, and optionally the
        results_spec, merged config and lineage.

        Use before finalize_run to review a run's auto results, or to recall what a tagged
        record achieved (e.g. inspect_record('@best', workspace='w1')). For infra details
        (logs, SVS, state history) use inspect_run instead.
        """
        return ctx.project().records.inspect_record(ref, list(include) if include is not None else None, workspace)

    @server.tool(annotations=_write("Tag a record", idempotent=True))
    @guarded
    def tag_record(
        ref: Annotated[str, Field(min_length=1, max_length=80, description="Record id or stage run id")],
        tag: Annotated[str, Field(min_length=1, max_length=64, description=(
            "Tag name: letters, digits, '.', '_' or '-' (e.g. best-v1); unique per workspace"))],
    ) -> TagResult:
        """Tag a run or checkpoint record; its version gets the same tag and is protected from pruning.

        Tag your best finalized run `best` or `best-<something>`: get_experiment_context and
        finalize_run's vs_best compare against the most recent such tag. Tag names are unique
        per workspace across record and version tags; tagging the same record again is a no-op.
        """
        return ctx.project().records.tag_record(ref, tag)

    @server.tool(annotations=_read("List runs awaiting finalization"))
    @guarded
    def list_unfinalized_runs(
        workspace: Workspace,
        limit: Annotated[int, Field(ge=1, le=200, description="Page size (1-200), oldest first")] = 50,
        offset: Annotated[int, Field(ge=0, le=1_000_000, description="Runs to skip")] = 0,
    ) -> UnfinalizedPage:
        """Runs that block run() in this workspace until finalized (completed, crashed or preempted,
        not yet finalized), oldest first, each with its auto results and the finalize_run call to
        make (check the value and outcome, write your notes). Canceled, blocked and skipped runs
        never block. count is the total; page with limit/offset while has_more.
        """
        full = ctx.project().records.list_unfinalized_runs(workspace)
        page = full.runs[offset:offset + limit]
        return fit_page(UnfinalizedPage(**{**full.model_dump(), "runs": page}, offset=offset,
                                        has_more=offset + len(page) < full.count), "runs")

    @server.tool(annotations=_read("Experiment context"))
    @guarded
    def get_experiment_context(workspace: Workspace) -> ExperimentContextView:
        """Where a workspace stands: current best (most recent finalized best/best-* tag), runs
        awaiting finalization (the oldest 10; list_unfinalized_runs pages them all), the last 10
        finalized results, and regression alerts (a recent result worse than the best by more
        than that run's own results_spec tolerance).

        Call when resuming work on a workspace, before planning the next run.
        """
        context = ctx.project().records.get_experiment_context(workspace)
        waiting = context.awaiting_finalization
        return ExperimentContextView(**{**context.model_dump(), "awaiting_finalization": waiting[:AWAITING_SHOWN]},
                                     awaiting_total=len(waiting))

    @server.tool(annotations=_read("Debug info for a record"))
    @guarded
    def get_debug_info(
        ref: Ref,
        workspace: Annotated[str | None, Field(min_length=1, max_length=64, description=(
            "Needed for @tag refs"))] = None,
    ) -> DebugInfo:
        """Infra identifiers and paths of a run record: stage/pipeline run ids, backend handle,
        run directory, log and metrics files, outputs, version and commit, checkpoint location.

        Use when a record needs debugging below what inspect_run shows. Runs only (checkpoint
        records have no run).
        """
        return ctx.project().records.get_debug_info(ref, workspace)

    @server.tool(annotations=_read("Run lineage"))
    @guarded
    def get_lineage(
        run_id: Annotated[str, Field(min_length=1, max_length=64, description="Stage run id, e.g. stage-1a2b3c4d")],
        direction: Annotated[Literal["downstream", "upstream"], Field(description=(
            "downstream: runs that consumed this run's outputs; upstream: runs and sources this run read"))]
            = "downstream",
        limit: Annotated[int, Field(ge=1, le=500, description="Consumers/producers per page")] = 100,
        offset: Annotated[int, Field(ge=0, le=1_000_000, description="Entries to skip")] = 0,
    ) -> LineagePage:
        """Data dependencies of a stage run.

        downstream lists consumers {run_id, stage, reason, signal_consumed, state, age}; upstream
        lists producers {run_id, stage, signal_produced} and sources/paths, plus the workspace's
        fork origin. Use to see which results depend on a run before reusing or discarding it.
        """
        full = ctx.project().records.get_lineage(run_id, direction)
        field = "consumers" if direction == "downstream" else "producers"
        rows = getattr(full, field) or []
        page = rows[offset:offset + limit]
        return fit_page(LineagePage(**{**full.model_dump(), field: page}, total=len(rows), offset=offset,
                                    has_more=offset + len(page) < len(rows)), field)

    @server.tool(annotations=_write("Save a results_spec for a stage", idempotent=True))
    @guarded
    def save_results_spec(
        workspace: Workspace,
        stage: Annotated[str, Field(min_length=1, max_length=64, description="Stage the results_spec is for")],
        results_spec: Annotated[dict[str, Any], Field(description=(
            "primary_metric, direction (maximize|minimize), min_value, goal_value, dataset_split "
            "(train|val|test|other), tolerance (>=0), context (15-4000 chars); optional secondary_metrics, "
            "baseline_run, failure_threshold, known_caveats"))],
    ) -> SavedSpecResult:
        """Save the results_spec the stage's next run() uses when it is called without one.

        Handy to decide success criteria before the code is ready. The saved spec is used (and
        consumed) by the next run() of this workspace that includes the stage and passes no
        results_spec; saving again replaces it. Every problem in the results_spec is reported at once.
        """
        return ctx.project().records.save_results_spec(workspace, stage, results_spec)
