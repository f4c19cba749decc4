"""Run lifecycle tools: run, inspect_run, logs, cancel, get_metric_history."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from goldfish.issues import Issue
from goldfish.runs.inspect import InspectRunResult, MetricHistoryResult, Section, inspect_run, metric_history
from goldfish.runs.logs import LogsResult, read_logs
from goldfish.runs.state import TERMINAL
from goldfish.runs.launch_review import LaunchFinding
from goldfish.runs.service import CancelResult, DryRunResult, GateInfo, RunResult, StageRunInfo
from mcp_server.budget import MAX_RESULT_BYTES, result_bytes
from mcp_server.context import ServerContext, guarded, tool_errors

StageName = Annotated[str, Field(max_length=64)]
RunId = Annotated[str, Field(min_length=1, max_length=64, description="Stage run id, e.g. stage-1a2b3c4d")]
WAIT_POLL = 0.5


class RunToolResult(BaseModel):
    """run() result: the recorded pipeline run (or, with dry_run, what it would do)."""

    dry_run: bool = Field(description="True: only validated, nothing written or launched")
    message: str = Field(description="What happened and what to do next")
    workspace: str
    stages: list[str] = Field(description="Stages in run order")
    pipeline_run_id: str | None = Field(default=None, description="prun-… id (not for dry runs)")
    version: str | None = Field(default=None, description="Version every stage executes")
    sha: str | None = None
    reused_version: bool | None = None
    stage_runs: list[StageRunInfo] = Field(default_factory=list, description="One per stage: ids, state and role")
    result_stage: str | None = Field(default=None, description=(
        "The stage whose run carries this run's result: finalize that one (the others are supporting)"))
    status: str | None = Field(default=None, description=(
        "Pipeline state; 'blocked': preflight or the pre-run review stopped it before anything launched"))
    findings: list[LaunchFinding] = Field(default_factory=list, description=(
        "When blocked: every problem found before launch, with file:line (where) and the fix"))
    done: bool | None = Field(default=None, description="Every stage run is terminal")
    note: str | None = Field(default=None, description="Set when wait=True stopped waiting before the end")
    skipped_files: list[dict[str, Any]] = Field(default_factory=list, description="Slot files not versioned")
    valid: bool | None = Field(default=None, description="dry_run: the run could start")
    errors: list[Issue] = Field(default_factory=list, description="dry_run: problems that would block it")
    warnings: list[Issue] = Field(default_factory=list, description="dry_run: problems worth knowing")
    gate: GateInfo | None = Field(default=None, description="dry_run: the finalization gate")


def _from_run(result: RunResult) -> RunToolResult:
    return RunToolResult(dry_run=False, message=result.message, workspace=result.workspace, stages=result.stages,
                         pipeline_run_id=result.pipeline_run_id, version=result.version, sha=result.sha,
                         reused_version=result.reused_version, stage_runs=result.stage_runs, status=result.status,
                         done=result.done, note=result.note, skipped_files=result.skipped_files,
                         result_stage=result.result_stage, findings=result.findings)


def _from_dry(result: DryRunResult) -> RunToolResult:
    if result.valid:
        message = f"Dry run: {', '.join(result.stages)} would run; nothing was written."
    else:
        message = f"Dry run: {len(result.errors)} error(s)" + (" and the finalization gate is closed" if result.gate.blocked else "") + "; fix them before run()."
    return RunToolResult(dry_run=True, message=message, workspace=result.workspace, stages=result.stages,
                         valid=result.valid, errors=result.errors, warnings=result.warnings, gate=result.gate,
                         result_stage=result.result_stage)


def register(server: MCPServer, ctx: ServerContext) -> None:
    # open world: the pre-run review may call the Anthropic API, and the gce backend launches cloud VMs.
    @server.tool(annotations=ToolAnnotations(title="Run stages", read_only_hint=False, destructive_hint=False,
                                             idempotent_hint=False, open_world_hint=True))
    @guarded
    async def run(
        workspace: Annotated[str, Field(min_length=1, max_length=64, description="Slot (w1) or mounted workspace name")],
        results_spec: Annotated[dict[str, Any] | None, Field(description=(
            "REQUIRED (except dry_run; or saved before with save_results_spec for the stage): primary_metric, direction (maximize|minimize), min_value, goal_value, "
            "dataset_split (train|val|test|other), tolerance, context (15-4000 chars); optional secondary_metrics, "
            "baseline_run, failure_threshold, known_caveats"))] = None,
        reason: Annotated[Annotated[str, Field(max_length=4000)] | dict[str, Any] | None, Field(description=(
            "Why (15-500 chars), or {description (15-500), hypothesis, approach (<=1000 each), min_result, goal (<=500 each)}"))] = None,
        stages: Annotated[list[StageName] | None, Field(max_length=100, description=(
            "Stages to run (default: all, in DAG order)"))] = None,
        pipeline: Annotated[str | None, Field(max_length=64, description=(
            "pipelines/<name>.yaml instead of pipeline.yaml"))] = None,
        config_override: Annotated[dict[str, Any] | None, Field(description=(
            "Config values: flat for one stage, or keyed by stage name"))] = None,
        inputs_override: Annotated[dict[str, Any] | None, Field(description=(
            "input -> stage run id, source name or path (flat for one stage, or keyed by stage)"))] = None,
        experiment_group: Annotated[str | None, Field(max_length=128, description="Label grouping related runs")] = None,
        wait: Annotated[bool, Field(description="Block until every stage is terminal (bounded by wait_seconds)")] = False,
        dry_run: Annotated[bool, Field(description="Validate only: errors, warnings and the gate; nothing written")] = False,
        skip_review: Annotated[bool, Field(description="Skip the pre-run review (last resort; recorded)")] = False,
        wait_seconds: Annotated[int, Field(ge=1, le=3600, description="Longest wait with wait=True")] = 600,
        context: Context | None = None,
    ) -> RunToolResult:
        """Run pipeline stages of a mounted workspace, with full provenance.

        Before anything executes, the slot is committed as a version (reused if unchanged) and a
        stage run + experiment record is written per stage; then every requested stage gets
        preflight and the pre-run review. If any is blocked, nothing launches: status is 'blocked'
        and `findings` lists each problem with file:line and the fix — fix the slot and call run()
        again (a blocked run does not hold the finalization gate). Otherwise stages run in the
        background from that exact version (independent stages in parallel). Returns at once with
        the ids; follow with inspect_run(stage_run_id) / logs(stage_run_id, follow=True), or pass
        wait=True. One result per pipeline run: `result_stage` carries it (the last stage that
        logs primary_metric, or results_spec.stage); finalize that stage run when it ends. Refused
        while the workspace has an unfinalized result. dry_run=True reports every validation error,
        review finding and warning without writing anything.
        """
        project = ctx.project()
        with tool_errors():
            result = await anyio.to_thread.run_sync(lambda: project.runs.run(
                workspace, stages=stages, pipeline=pipeline, config_override=config_override,
                inputs_override=inputs_override, reason=reason, results_spec=results_spec,
                experiment_group=experiment_group, wait=False, dry_run=dry_run, skip_review=skip_review,
            ))
        if isinstance(result, DryRunResult):
            return _from_dry(result)
        if not wait:
            return _from_run(result)
        deadline = time.monotonic() + wait_seconds
        total = len(result.stage_runs)
        while True:
            status = await anyio.to_thread.run_sync(lambda: project.runs.poll(result.pipeline_run_id))
            done = sum(1 for s in status.stage_runs if s.state in TERMINAL)
            if context is not None:
                states = ", ".join(f"{s.stage}: {s.state}" for s in status.stage_runs)
                await context.report_progress(done, total, f"{result.pipeline_run_id} {status.status} ({states})")
            if status.done:
                return _from_run(status)
            if time.monotonic() >= deadline:
                status.note = (f"Still {status.status} after {wait_seconds}s; it keeps running in the background."
                               " Check with inspect_run/logs.")
                return _from_run(status)
            await anyio.sleep(WAIT_POLL)

    @server.tool(annotations=ToolAnnotations(title="Inspect a run", read_only_hint=True, open_world_hint=False))
    @guarded
    def inspect_run(
        run_id: RunId,
        include: Annotated[list[Section] | None, Field(max_length=10, description=(
            "Sections: dashboard, metadata, thoughts, logs (default), manifest, provenance, svs, attempt"))] = None,
    ) -> InspectRunResult:
        """Infra detail of a stage run in one call: live dashboard (state, elapsed, heartbeat,
        metrics), metadata, thoughts and the tail of its log (logs: last 40 lines, with the cursor
        for logs(run_id, cursor=...)); on request the manifest (config, inputs, outputs), provenance
        (version, lineage, backend), SVS findings (include=['svs']) and attempt counts. For
        experiment results use inspect_record."""
        return _inspect(ctx, run_id, include)

    @server.tool(annotations=ToolAnnotations(title="Run logs", read_only_hint=True, open_world_hint=False))
    @guarded
    def logs(
        run_id: RunId,
        tail: Annotated[int, Field(ge=1, le=10000, description="Lines from the end (first call)")] = 200,
        since: Annotated[str | None, Field(max_length=40, description="Only lines stamped at/after this ISO time")] = None,
        follow: Annotated[bool, Field(description=(
            "Stream: with cursor, wait up to wait_seconds for new lines before answering"))] = False,
        cursor: Annotated[int | None, Field(ge=0, description="Byte offset from a previous call: only newer lines")] = None,
        wait_seconds: Annotated[int, Field(ge=0, le=60, description="follow: longest wait for new lines")] = 30,
    ) -> LogsResult:
        """A stage run's stdout/stderr (plus Goldfish's own notes on what it did to the run).

        To follow a running stage: call once (the last `tail` lines and a cursor), then keep calling
        with follow=True, cursor=<returned cursor>: each call waits until new lines arrive (up to
        wait_seconds; timed_out=true if none did) and returns only lines appended since, never
        repeating or skipping any. done=true means the run ended and the log is complete. To search
        across runs, use search_goldfish_logs."""
        return read_logs(ctx.project(), run_id, tail=tail, since=since, follow=follow, cursor=cursor,
                         wait_seconds=wait_seconds)

    @server.tool(annotations=ToolAnnotations(title="Cancel a run", read_only_hint=False, destructive_hint=True,
                                             idempotent_hint=True, open_world_hint=False))
    @guarded
    def cancel(
        run_id: Annotated[str, Field(min_length=1, max_length=64, description="Stage run id, or prun-… for every stage")],
        reason: Annotated[str, Field(max_length=4000, description="Why (>=15 chars)")],
    ) -> CancelResult:
        """Stop a stage run (or a whole pipeline run) in any non-terminal state.

        A pending or not-yet-launched run never starts; a running stage gets SIGTERM (and sees
        should_stop()), then SIGKILL after local.stop_grace_seconds. Canceled runs do not need
        finalize_run."""
        return ctx.project().runs.cancel(run_id, reason)

    @server.tool(annotations=ToolAnnotations(title="Metric history", read_only_hint=True, open_world_hint=False))
    @guarded
    def get_metric_history(
        run_id: RunId,
        names: Annotated[list[Annotated[str, Field(max_length=256)]] | None, Field(max_length=100, description=(
            "Metric names (default: all, up to 20)"))] = None,
        max_points: Annotated[int, Field(ge=2, le=5000, description="Points per metric (LTTB downsampling)")] = 500,
        step_range: Annotated[list[int] | None, Field(min_length=2, max_length=2,
                                                      description="[first_step, last_step]")] = None,
    ) -> MetricHistoryResult:
        """Metric series of a stage run (live while it runs), downsampled deterministically with
        LTTB so the shape survives; the first and last points are always included. The answer stays
        under the result budget: max_points_per_metric says how many points each series got."""
        project = ctx.project()
        result = metric_history(project, run_id, names, max_points, step_range)
        # Fewer points rather than a flood: shrink in proportion to the overshoot until it fits.
        while (size := result_bytes(result)) > MAX_RESULT_BYTES and result.max_points_per_metric > 2:
            fewer = max(2, min(result.max_points_per_metric - 1,
                               int(result.max_points_per_metric * MAX_RESULT_BYTES / size * 0.9)))
            result = metric_history(project, run_id, names, fewer, step_range)
        return result


def _inspect(ctx: ServerContext, run_id: str, include: list[Any] | None) -> InspectRunResult:
    return inspect_run(ctx.project(), run_id, include)

