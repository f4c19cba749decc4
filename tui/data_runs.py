"""Run detail: one stage run's state timeline, outputs, lineage, review, findings, metrics, log.

Reads go through the same read services as the MCP tools where they exist (``read_logs`` for the
log by byte cursor, ``metric_history`` for downsampled series), so the person sees what the agent
sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from goldfish.errors import NotFound
from tui.data import finding_views, heartbeat_time, primary_metric, ws_partition
from tui.format import parse_ts
from tui.viewmodels import AttemptView, InputView, LogChunk, MetricSeries, OutputView, RunDetailView, TransitionView

if TYPE_CHECKING:
    from goldfish.project import Project

LOG_TAIL = 400
METRIC_POINTS = 300
PLOTTED_METRICS = 6


def run_doc(project: Project, run_id: str) -> dict[str, Any]:
    entry = project.store.table("run_index").get_doc(run_id)
    if entry is None:
        raise NotFound(f"Run {run_id} not found.", fix="Pick a run from the dashboard or the history.")
    return project.store.table("runs", ws_partition(str(entry["workspace"]))).require(run_id, what="stage run")


def _stats_for(stats: dict[str, Any], name: str) -> dict[str, Any]:
    """Stats of one output: the signal itself, or its arrays (``<signal>.<array>``)."""
    if isinstance(stats.get(name), dict):
        return dict(stats[name])
    return {k: v for k, v in stats.items() if k.startswith(name + ".") and isinstance(v, dict)}


def _contract(findings: list[dict[str, Any]], name: str) -> str:
    mine = [f for f in findings if f.get("source") == "contract" and f.get("signal") == name]
    if not mine:
        return ""
    bad = [f for f in mine if f.get("severity") == "error"]
    if bad:
        return "error: " + "; ".join(str(f.get("message")) for f in bad[:2])
    warn = [f for f in mine if f.get("severity") == "warning"]
    return "warning: " + "; ".join(str(f.get("message")) for f in warn[:2]) if warn else "ok"


def load_metrics(project: Project, run_id: str, names: list[str] | None, points: int) -> tuple[MetricSeries, ...]:
    from goldfish.runs.inspect import metric_history

    result = metric_history(project, run_id, names, max_points=points)
    return tuple(
        MetricSeries(name=m.name, steps=tuple(m.steps), values=tuple(m.values), total_points=m.total_points)
        for m in result.metrics
    )


def load_run_detail(project: Project, run_id: str, now: float, *, metric_points: int = METRIC_POINTS) -> RunDetailView:
    doc = run_doc(project, run_id)
    svs = doc.get("svs") or {}
    post = svs.get("post") or {}
    stats = post.get("stats") or {}
    post_findings = [f for f in post.get("findings") or [] if isinstance(f, dict)]
    outputs = tuple(
        OutputView(
            name=name, format=o.get("format"), type=o.get("type"), exists=o.get("exists"),
            size_bytes=o.get("size_bytes"), artifact=bool(o.get("artifact")),
            stats=_stats_for(stats, name) if isinstance(stats, dict) else {}, contract=_contract(post_findings, name),
        )
        for name, o in sorted((doc.get("outputs") or {}).items()) if isinstance(o, dict)
    )
    inputs = tuple(
        InputView(name=name, kind=i.get("kind"), upstream_run=i.get("run_id") or i.get("latest_run_id"),
                  signal=i.get("signal"), source=i.get("source"), location=i.get("location"))
        for name, i in sorted((doc.get("inputs") or {}).items()) if isinstance(i, dict)
    )
    transitions = tuple(
        TransitionView(ts=parse_ts(h.get("ts")), from_state=h.get("from"), to_state=str(h.get("to")),
                       cause=h.get("cause"), source=h.get("source"))
        for h in doc.get("history") or [] if isinstance(h, dict)
    )
    review = svs.get("review") if isinstance(svs.get("review"), dict) else None
    summary = doc.get("metrics_summary") or {}
    primary = primary_metric(doc)
    names = sorted(summary, key=lambda n: (n != primary, -int((summary[n] or {}).get("count") or 0), n))
    metrics = load_metrics(project, run_id, names[:PLOTTED_METRICS], metric_points) if names else ()
    started, ended = parse_ts(doc.get("started_at")), parse_ts(doc.get("finished_at"))
    active = doc.get("state") in ("pending", "preparing", "launching", "running", "post_run")
    beat = heartbeat_time(project, run_id) if active else None
    return RunDetailView(
        run_id=run_id, workspace=str(doc.get("workspace")), stage=str(doc.get("stage")),
        pipeline_run_id=doc.get("pipeline_run_id"), record_id=doc.get("record_id"), version=doc.get("version"),
        state=str(doc.get("state")), cause=doc.get("cause"), error=doc.get("error"),
        reason=doc.get("reason_summary") or _reason_text(doc.get("reason")),
        elapsed=((now if active or ended is None else ended) - started) if started is not None else None,
        heartbeat_age=max(0.0, now - beat) if beat is not None else None,
        infra_outcome=doc.get("infra_outcome"), results_status=doc.get("results_status"),
        ml_outcome=doc.get("ml_outcome"), primary_metric=primary, cancel_requested=bool(doc.get("cancel_requested")),
        transitions=transitions, outputs=outputs, inputs=inputs,
        review=review.get("decision") if review else None, review_summary=review.get("summary") if review else None,
        findings=tuple(finding_views(doc, now)), metrics=metrics,
        results_auto=doc.get("results_auto"), results_final=doc.get("results_final"),
        results_spec=doc.get("results_spec"), attempts=attempt_views(doc),
    )


def attempt_views(doc: dict[str, Any]) -> tuple[AttemptView, ...]:
    """Each capacity-search try of each VM attempt, oldest first (what inspect_run's attempt section lists)."""
    out = []
    for vm in doc.get("attempts") or []:
        if not isinstance(vm, dict):
            continue
        number = int(vm.get("attempt") or 1)
        tries = [t for t in vm.get("capacity") or [] if isinstance(t, dict)]
        for t in tries:
            launched = t.get("outcome") == "launched"
            outcome = (vm.get("outcome") or "running") if launched else str(t.get("outcome"))
            out.append(AttemptView(
                key=f"{number}.{t.get('n')}", attempt=number, n=int(t.get("n") or 0), zone=str(t.get("zone") or ""),
                machine_type=str(t.get("machine_type") or ""), provisioning=str(t.get("provisioning_model") or ""),
                outcome=outcome, error=str(t.get("error") or (vm.get("detail") if launched else "") or ""),
                instance=str(vm.get("instance") or "") if launched else ""))
    return tuple(out)


def _reason_text(reason: Any) -> str | None:
    if isinstance(reason, dict):
        return " | ".join(str(reason[k]) for k in ("description", "hypothesis") if reason.get(k)) or None
    return str(reason) if reason else None


def read_log(project: Project, run_id: str, cursor: int | None, tail: int = LOG_TAIL) -> LogChunk:
    """New log lines after ``cursor`` (or the last ``tail`` lines when it is None)."""
    from goldfish.runs.logs import read_logs

    result = read_logs(project, run_id, tail=tail, cursor=cursor)
    lines = tuple(result.logs.splitlines()) if result.logs else ()
    return LogChunk(lines=lines, cursor=result.cursor, reset=cursor is None, done=result.done and not result.has_more)
