"""Read a project into view models: pure functions over the store and run directories.

Everything here is a lock-free read (``store.table``, event-log tails, files under
``.goldfish/runs``), safe to call from a worker thread while other processes write. Nothing
here writes: actions live in ``tui.actions`` and go through the same services as the MCP tools.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tui.format import parse_ts, shorten
from tui.viewmodels import (
    ActiveRunView,
    AlertView,
    AuditView,
    DashboardView,
    FindingView,
    PoolView,
    QueueItem,
    ResultPoint,
    ResultsView,
    SlotView,
    WorkerView,
)

if TYPE_CHECKING:
    from goldfish.project import Project
    from goldfish.records.models import ExperimentContext

TERMINAL = frozenset({"completed", "failed", "terminated", "canceled", "skipped"})
SPARK_POINTS = 24
RECENT_TRANSITIONS = 200
AUDIT_SHOWN = 14
FINDINGS_SHOWN = 30
RESULTS_SHOWN = 3


def ws_partition(workspace: str) -> str:
    return f"ws/{workspace}"


def live_workspaces(project: Project) -> list[str]:
    """Workspaces the services accept (a row, not deleted)."""
    return sorted(d["id"] for d in project.store.table("workspaces").iter_raw() if not d.get("deleted_at"))


def workspace_names(project: Project) -> list[str]:
    """Workspaces with a row or a partition (a partition may exist before its row is visible)."""
    names = {d["id"] for d in project.store.table("workspaces").iter_raw() if not d.get("deleted_at")}
    names.update(p.split("/", 1)[1] for p in project.store.partitions("ws"))
    return sorted(names)


# ----------------------------------------------------------------------------- small readers


def read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def heartbeat_time(project: Project, run_id: str) -> float | None:
    beat = read_json(project.runs_dir / run_id / "outputs" / ".goldfish" / "heartbeat")
    if isinstance(beat, dict):
        ts = beat.get("timestamp")
        if isinstance(ts, (int, float)) and not isinstance(ts, bool):
            return float(ts)
    return None


def primary_metric(run: Mapping[str, Any]) -> str | None:
    spec = run.get("results_spec")
    if isinstance(spec, dict) and isinstance(spec.get("primary_metric"), str):
        return spec["primary_metric"]
    return None


def metric_value(run: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """(name, value) of the run's primary metric: final, else auto (``record_refs.primary_metric``,
    what history shows the agent), else the live summary of a run still going."""
    from goldfish.records.refs import primary_metric as recorded

    pm = recorded(run)
    if pm is not None and _finite(pm[1]) is not None:
        return pm[0], pm[1]
    name = primary_metric(run) or (pm[0] if pm else None)
    summary = run.get("metrics_summary") or {}
    if name is None and summary:
        name = min(summary, key=lambda n: (-int(summary[n].get("count") or 0), n))
    if name is not None and isinstance(summary.get(name), dict):
        return name, _finite(summary[name].get("last"))
    return name, None


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def series_tail(project: Project, run_id: str, name: str, points: int = SPARK_POINTS) -> tuple[float, ...]:
    """The last values of one metric series (binary, append-only; cheap to read)."""
    from goldfish.runs.metric_series import read_series

    data = read_series(project.runs_dir / run_id, name)
    if data is None or not len(data):
        return ()
    return tuple(float(v) for v in data["value"][-points:])


def iter_findings(svs: Mapping[str, Any] | None) -> Iterable[tuple[str, dict[str, Any]]]:
    """(phase, finding) pairs of every SVS section on a run doc, newest phase last."""
    if not isinstance(svs, dict):
        return
    pre = svs.get("preflight") or {}
    for sev, key in (("error", "errors"), ("warning", "warnings")):
        for issue in pre.get(key) or []:
            if isinstance(issue, dict):
                yield "preflight", {"source": "preflight", "check": issue.get("location") or "preflight",
                                    "severity": sev, "message": issue.get("message") or "", "fix": issue.get("fix")}
    review = svs.get("review") or {}
    for f in review.get("findings") or []:
        if isinstance(f, dict):
            yield "review", f
    for f in svs.get("during") or []:
        if isinstance(f, dict):
            yield "during", f
    post = svs.get("post") or {}
    for f in post.get("findings") or []:
        if isinstance(f, dict):
            yield "post", f
    for f in (post.get("hook") or {}).get("findings") or []:
        if isinstance(f, dict):
            yield "post", f


def finding_views(run: Mapping[str, Any], now: float, *, min_severity: str = "info",
                  preflight_warnings: bool = True) -> list[FindingView]:
    rank = {"info": 0, "warning": 1, "error": 2}
    floor = rank.get(min_severity, 0)
    out = []
    age = _age(now, run.get("finished_at") or run.get("updated_at") or run.get("created_at"))
    for i, (phase, f) in enumerate(iter_findings(run.get("svs"))):
        sev = str(f.get("severity") or "info")
        if rank.get(sev, 0) < floor or (phase == "preflight" and sev == "warning" and not preflight_warnings):
            continue
        out.append(FindingView(
            key=f"{run['id']}:{phase}:{i}", run_id=run["id"], workspace=str(run.get("workspace") or ""),
            stage=str(run.get("stage") or ""), source=str(f.get("source") or phase), check=str(f.get("check") or ""),
            severity=sev, message=shorten(f.get("message"), 200), age=age,
        ))
    return out


def _age(now: float, ts: Any) -> float | None:
    t = parse_ts(ts)
    return None if t is None else max(0.0, now - t)


# ----------------------------------------------------------------------------- dashboard


def load_slots(project: Project) -> tuple[SlotView, ...]:
    store = project.store
    mounts = {d["id"]: d for d in store.table("mounts").iter_raw()}
    rows = store.table("workspaces")
    out = []
    for slot in project.config.slots:
        m = mounts.get(slot)
        if m is None:
            out.append(SlotView(key=slot, slot=slot, workspace=None, version=None, version_count=0, dirty=None,
                                changed_count=0, goal=None))
            continue
        ws = str(m["workspace"])
        row = rows.get_doc(ws) or {}
        visible = [v for v in store.table("versions", ws_partition(ws)).iter_raw() if not v.get("pruned_at")]
        latest = max(visible, key=lambda v: int(v.get("number") or 0), default=None)
        note = None
        if m.get("rolled_back_to"):
            note = f"rolled back to {m['rolled_back_to']}"
        out.append(SlotView(
            key=slot, slot=slot, workspace=ws, version=latest["id"] if latest else None, version_count=len(visible),
            dirty=m.get("dirty"), changed_count=int(m.get("changed_count") or 0), goal=row.get("goal"), note=note,
        ))
    return tuple(out)


def load_active(project: Project, now: float) -> tuple[ActiveRunView, ...]:
    store = project.store
    grace = float(getattr(project.config.jobs, "heartbeat_grace_seconds", 120))
    out = []
    entries = sorted(store.table("active_pipelines").iter_raw(), key=lambda e: (str(e.get("created_at")), e["id"]))
    for entry in entries:
        part = ws_partition(str(entry["workspace"]))
        prun = store.table("pipeline_runs", part).get_doc(entry["id"])
        if prun is None:
            continue
        runs = store.table("runs", part)
        for stage in prun.get("stages") or []:
            run_id = str((prun.get("stage_runs") or {}).get(stage) or "")
            doc = runs.get_doc(run_id) if run_id else None
            if doc is None or doc.get("state") in TERMINAL:
                continue
            started = parse_ts(doc.get("started_at"))
            beat = heartbeat_time(project, run_id) if doc.get("state") in ("running", "post_run") else None
            beat_age = max(0.0, now - beat) if beat is not None else None
            name, value = metric_value(doc)
            summary = (doc.get("metrics_summary") or {}).get(name or "", {})
            out.append(ActiveRunView(
                key=run_id, run_id=run_id, pipeline_run_id=prun["id"], workspace=str(entry["workspace"]),
                stage=stage, state=str(doc.get("state")),
                elapsed=max(0.0, now - started) if started is not None else None,
                heartbeat_age=beat_age, stalled=bool(beat_age is not None and beat_age > grace),
                metric_name=name, metric_value=value, trend=summary.get("trend") if isinstance(summary, dict) else None,
                spark=series_tail(project, run_id, name) if name else (),
                cancel_requested=bool(doc.get("cancel_requested")),
            ))
    return tuple(out)


def load_contexts(project: Project, workspaces: Iterable[str]) -> dict[str, ExperimentContext]:
    """``get_experiment_context`` of each live workspace: its finalization queue, current best and
    regression alerts, exactly as the agent gets them."""
    live = set(live_workspaces(project))
    return {ws: project.records.get_experiment_context(ws) for ws in workspaces if ws in live}


def load_queue(contexts: Mapping[str, ExperimentContext], now: float) -> tuple[QueueItem, ...]:
    """Runs that hold each workspace's finalization gate, oldest first (``awaiting_finalization``)."""
    out = []
    for ws, context in contexts.items():
        for run in context.awaiting_finalization:
            auto = run.results_auto or {}
            out.append(QueueItem(
                key=run.stage_run_id, run_id=run.stage_run_id, record_id=run.record_id, workspace=ws,
                stage=run.stage, infra_outcome=run.outcome or run.infra_outcome, state=run.state,
                metric_name=auto.get("primary_metric"), metric_value=_finite(auto.get("value")),
                finished_age=_age(now, run.finished_at),
            ))
    return tuple(out)


def load_results(contexts: Mapping[str, ExperimentContext]) -> tuple[ResultsView, ...]:
    """Per workspace with results: the best (tag, value vs goal) and the last results, from
    ``get_experiment_context`` (one row per pipeline run's result)."""
    out = []
    for ws, context in sorted(contexts.items()):
        best, trend = context.current_best, context.recent_trend
        if best is None and not trend:
            continue
        latest = trend[0] if trend else None
        metric = best.metric if best else (latest.primary_metric if latest else None)
        same = [p for p in trend if p.primary_metric == metric]
        out.append(ResultsView(
            key=ws, workspace=ws, metric=metric, direction=best.direction if best else (latest.direction if latest else None),
            best_tag=best.tag if best else None, best_value=best.value if best else None,
            goal_value=best.goal_value if best else (latest.goal_value if latest else None),
            last=tuple(ResultPoint(record_id=p.record_id, stage=p.stage, value=p.value, ml_outcome=p.ml_outcome)
                       for p in same[:RESULTS_SHOWN]),
            spark=tuple(p.value for p in reversed(same)), awaiting=len(context.awaiting_finalization),
        ))
    return tuple(out)


def _recent_runs(project: Project) -> list[dict[str, Any]]:
    """Run docs touched by the most recent transitions (newest first, each once)."""
    seen: dict[str, dict[str, Any]] = {}
    for ev in project.store.tail_events("transitions", RECENT_TRANSITIONS):
        rid, ws = ev.get("run_id"), ev.get("workspace")
        if not isinstance(rid, str) or not rid.startswith("stage-") or rid in seen or not isinstance(ws, str):
            continue
        doc = project.store.table("runs", ws_partition(ws)).get_doc(rid)
        if doc is not None:
            seen[rid] = doc
    return list(seen.values())


def load_alerts(project: Project, now: float, pending_patterns: int) -> tuple[AlertView, ...]:
    """The alerts ``dashboard()`` reports (``goldfish.runs.alerts``: failures and blocked runs in the
    window, stalled heartbeats, regressions; acknowledged ones left out), plus the pending-pattern
    note (info: it never fails --fail-on-alerts)."""
    from goldfish.runs.alerts import current

    out = [
        AlertView(key=a.key, kind=a.kind, severity=a.severity, workspace=a.workspace, run_id=a.run_id,
                  message=a.message, age=_age(now, a.at))
        for a in current(project, now).alerts
    ]
    if pending_patterns:
        out.append(AlertView(
            key="patterns:pending", kind="pattern", severity="info", workspace=None, run_id=None,
            message=f"{pending_patterns} failure pattern(s) await review (press p)", age=None,
        ))
    return tuple(out)


def load_audit(project: Project, limit: int = AUDIT_SHOWN) -> tuple[AuditView, ...]:
    out = []
    seen: set[str] = set()
    for ev in project.store.tail_events("audit", limit):
        op = str(ev.get("op") or "")
        details = ev.get("details") or {}
        text = ev.get("reason") or ""
        if not text and isinstance(details, dict):
            text = ", ".join(f"{k}={v}" for k, v in list(details.items())[:3])
        # Keyed by content, not position, so a row keeps its key as newer events arrive.
        key = f"{ev.get('tx')}:{ev.get('ts')}:{op}:{ev.get('workspace')}"
        while key in seen:
            key += "+"
        seen.add(key)
        out.append(AuditView(
            key=key, ts=parse_ts(ev.get("ts")), op=op, source=str(ev.get("source") or ""),
            workspace=ev.get("workspace"), text=shorten(text, 200), thought=op == "thought",
        ))
    return tuple(out)


def pending_pattern_count(project: Project) -> int:
    return project.patterns.list(status="pending", limit=1)[1]


def load_dashboard(project: Project, now: float) -> DashboardView:
    workspaces = workspace_names(project)
    active = load_active(project, now)
    recent = _recent_runs(project)
    findings: list[FindingView] = []
    seen = {a.run_id for a in active}
    for run in [*(project.store.table("runs", ws_partition(a.workspace)).get_doc(a.run_id) or {} for a in active),
                *(r for r in recent if r["id"] not in seen)]:
        if run:
            # Preflight warnings (no contract, default config) repeat on every run: run detail shows them.
            findings.extend(finding_views(run, now, min_severity="warning", preflight_warnings=False))
    pending = pending_pattern_count(project)
    contexts = load_contexts(project, workspaces)
    return DashboardView(
        project_name=project.config.project_name, root=str(project.root), now=now,
        slots=load_slots(project), active=active, queue=load_queue(contexts, now),
        alerts=load_alerts(project, now, pending),
        findings=tuple(findings[:FINDINGS_SHOWN]), audit=load_audit(project), workspaces=tuple(workspaces),
        pending_patterns=pending, results=load_results(contexts), pool=load_pool(project),
    )


def load_pool(project: Project) -> PoolView | None:
    """The warm pool from the store (what warm_pool_status() answers); None when it is off and empty."""
    from goldfish.runs.warm_pool_service import status

    found = status(project)
    if not found.enabled and not found.total:
        return None
    counts = ", ".join(f"{n} {s}" for s, n in found.by_state.items() if n)
    summary = (f"{found.total}/{found.max_instances} workers" + (f" ({counts})" if counts else "")
               if found.enabled else f"disabled, {found.total} worker(s) left")
    workers = tuple(
        WorkerView(key=w.instance_name, instance=w.instance_name, state=w.state, since=parse_ts(w.state_entered_at),
                   zone=w.zone or "", machine_type=w.machine_type or "", gpus=w.gpu_count, run=w.active_lease_run or "")
        for w in found.instances
    )
    return PoolView(enabled=found.enabled, summary=summary, workers=workers)
