"""SVS as the runner's built-in hook provider (``goldfish.runs.hooks`` loads this module).

* ``review(ctx)`` — the pre-run review during ``preparing`` (the runner has already run preflight
  and resolved inputs, and handles ``skip_review`` and the enable switches itself).
* ``monitor(ctx)`` — one ``RunMonitor`` per stage run, kept in ``ctx.state``, ticked on every poll.
* ``post_run(ctx)`` — the post-run review; ``decision == "failed"`` fails the stage (cause contract).
* ``failed(ctx)`` — learns a failure pattern from a failed or crashed run (``auto_learn_failures``).

Contexts are the runner's dataclasses; results are returned as plain dicts in the runner's shapes.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from goldfish.git.cmd import git
from goldfish.svs.findings import Finding
from goldfish.svs.monitor import MonitorSpec, RunMonitor
from goldfish.svs.postrun import post_run_review
from goldfish.svs.review import pre_run_review

_MONITOR_KEY = "svs_monitor"


def _ts(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _dump(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in findings]


def _run_command(run: dict[str, Any], stage: str) -> str:
    parts = [f"workspace={run.get('workspace')!r}", f"stages=[{stage!r}]"]
    if run.get("config_override"):
        parts.append(f"config_override={json.dumps(run['config_override'], default=str)}")
    if run.get("inputs_override"):
        parts.append(f"inputs_override={json.dumps(run['inputs_override'], default=str)}")
    return "run(" + ", ".join(parts) + ")"


def last_success_diff(project: Any, run: dict[str, Any], stage: str) -> str | None:
    """Diff of the code between the last completed run of ``stage`` in the workspace and this run."""
    workspace, sha = run.get("workspace"), run.get("sha")
    if not workspace or not sha:
        return None
    runs = project.store.table("runs", f"ws/{workspace}").docs()
    done = [r for r in runs if r.get("stage") == stage and r.get("state") == "completed" and r.get("sha")
            and r.get("id") != run.get("id")]
    if not done:
        return "(no earlier successful run of this stage: the whole stage is new)"
    previous = max(done, key=lambda r: str(r.get("finished_at") or r.get("created_at") or ""))
    if previous["sha"] == sha:
        return f"(no code change since the last successful run {previous.get('id')})"
    try:
        text = git(project.dev_path, "diff", "--no-color", "--no-ext-diff", "-U3", previous["sha"], sha).decode(
            errors="replace")
    except Exception as exc:  # the review goes on without the diff
        return f"(diff unavailable: {exc})"
    limit = project.config.workspace.diff_max_chars
    head = f"diff against {previous.get('id')} ({previous.get('version')}):\n"
    return head + (text if len(text) <= limit else text[:limit] + f"\n... [diff truncated at {limit} characters]")


def _input_info(resolved: dict[str, Any]) -> dict[str, Any]:
    return {name: dict(info) for name, info in (resolved or {}).items() if isinstance(info, dict)}


def review(ctx: Any) -> dict[str, Any]:
    project, run, stage = ctx.project, ctx.run, ctx.stage
    svs = project.config.svs
    wants_diff = svs.agent_provider == "anthropic" and svs.ai_pre_run_enabled
    result = pre_run_review(
        project, app_dir=Path(ctx.app_dir), pipeline=ctx.pipeline, stage=stage, stage_config=ctx.config,
        inputs=_input_info(ctx.inputs),
        overrides={"config_override": ctx.config_override, "inputs_override": ctx.inputs_override},
        reason=run.get("reason"), diff=last_success_diff(project, run, stage) if wants_diff else None,
        workspace=run.get("workspace"),
    )
    summary = result.block_message() if result.blocked else result.text
    provider = f"{result.provider} ({result.model})" if result.model else result.provider
    return {"decision": result.verdict, "summary": summary, "findings": _dump(result.findings),
            "provider": provider}


def _monitor_for(ctx: Any) -> RunMonitor:
    existing = ctx.state.get(_MONITOR_KEY)
    if isinstance(existing, RunMonitor):
        return existing
    run = ctx.run
    spec = run.get("results_spec") or {}
    stage = run.get("stage") or "?"
    monitor = RunMonitor(
        Path(ctx.run_dir), ctx.project.config.svs,
        MonitorSpec(
            stage=stage, run_id=run.get("id"), workspace=run.get("workspace"),
            primary_metric=spec.get("primary_metric"), direction=spec.get("direction"),
            started_at=_ts(run.get("started_at")) or time.time() - float(ctx.elapsed_seconds),
            heartbeat_timeout_seconds=run.get("heartbeat_timeout_seconds"),
            run_command=_run_command(run, stage), reason=run.get("reason"),
        ),
        write_stop=False,  # the runner writes stop_requested (and notes it in the log)
    )
    ctx.state[_MONITOR_KEY] = monitor
    return monitor


def monitor(ctx: Any) -> dict[str, Any] | None:
    if not ctx.project.config.svs.enabled:
        return None
    tick = _monitor_for(ctx).tick()
    if not tick.findings and tick.stop_request is None:
        return None
    return {"findings": _dump(tick.findings), "request_stop": tick.stop_request is not None,
            "stop_reason": tick.stop_request}


def post_run(ctx: Any) -> dict[str, Any]:
    run = ctx.run
    stage = run.get("stage") or "?"
    # The results_spec describes the pipeline run's result: a supporting stage is not judged on it.
    spec = None if run.get("role") == "supporting" else run.get("results_spec")
    result = post_run_review(ctx.project, run_dir=Path(ctx.run_dir), stage=stage,
                             results_spec=spec, metrics_summary=ctx.metrics_summary,
                             feeds_later_stages=_feeds_later_stages(ctx.project, run),
                             run_command=_run_command(run, stage))
    # The runner already stores the SDK's own findings; return only what this review added.
    sdk = {(f.get("source"), f.get("check"), f.get("signal")) for f in ctx.findings or [] if isinstance(f, dict)}
    added = [f for f in result.findings if (f.source, f.check, f.signal) not in sdk]
    warned = any(f.severity != "info" for f in result.findings)
    return {
        "decision": "failed" if result.fail else ("warned" if warned else "approved"),
        "findings": _dump(added),
        "details": {"fail": result.fail, "cause": result.cause, "error": result.error,
                    "ml_outcome_hint": result.ml_outcome_hint, "primary_metric": result.primary_metric,
                    "primary_value": result.primary_value, "ai_summary": result.ai_summary,
                    "ai_ml_outcome_hint": result.ai_ml_outcome_hint},
    }


def _feeds_later_stages(project: Any, run: dict[str, Any]) -> bool:
    """Whether another stage run of the same pipeline run depends on this run's stage."""
    prun_id, stage, ws = run.get("pipeline_run_id"), run.get("stage"), run.get("workspace")
    if not (prun_id and stage and ws):
        return False
    prun = project.store.table("pipeline_runs", f"ws/{ws}").get_doc(prun_id) or {}
    runs = project.store.table("runs", f"ws/{ws}")
    for other_id in (prun.get("stage_runs") or {}).values():
        other = runs.get_doc(other_id) or {}
        if stage in (other.get("depends_on") or []):
            return True
    return False


def failed(ctx: Any) -> dict[str, Any] | None:
    """Learn (or bump) a failure pattern from a failed/crashed stage run."""
    run = ctx.run
    pattern = ctx.project.patterns.learn_from_failure(
        run_id=run.get("id"), workspace=run.get("workspace"), stage=run.get("stage") or "?",
        run_dir=Path(ctx.run_dir))
    return None if pattern is None else {"pattern_id": pattern.id, "status": pattern.status,
                                         "occurrence_count": pattern.occurrence_count}
