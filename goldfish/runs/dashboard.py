"""``dashboard()``: what needs attention now, from small tables and the recent transitions.

Alerts are ``goldfish.runs.alerts`` (failed and blocked runs within the alert window, stalled
heartbeats, regressions), less those acknowledged; acknowledging is part of the same call
(``acknowledge=[keys]`` with a reason). Also: new SVS findings of recent and active runs (each
shown once: marked notified in table ``svs_notified``, one document per stage run), active runs
(from ``active_pipelines``), the finalization queue of each mounted workspace (the records view's
gate list), mounted workspaces and the source count. Nothing here reads every run of every
workspace, so the cost does not grow with the history.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from goldfish.runs.alerts import Alert, acknowledge as acknowledge_alerts, current, recent_runs, since_iso
from goldfish.runs.state import TERMINAL, parse_iso, ws_partition
from goldfish.svs.findings import Finding

if TYPE_CHECKING:
    from goldfish.project import Project

NOTIFIED_TABLE = "svs_notified"
FAILED_SHOWN = 20
FINDINGS_SHOWN = 30
REGRESSIONS_SHOWN = 10
MAX_KEYS_PER_RUN = 2000


class FailedRun(BaseModel):
    key: str = Field(description="Alert key: pass it to dashboard(acknowledge=[...]) once handled")
    kind: str = Field(description="failed, or blocked (preflight / pre-run review / inputs stopped it)")
    run_id: str
    workspace: str
    stage: str | None = None
    state: str = Field(description="failed or terminated")
    cause: str | None = None
    error: str | None = Field(default=None, description="First 300 characters of the error")
    age: str | None = Field(default=None, description="Since it ended, e.g. 5m")


class SvsAlert(BaseModel):
    run_id: str
    workspace: str
    stage: str | None = None
    phase: str = Field(description="review, during_run or post_run")
    severity: str
    check: str
    message: str = Field(description="First 300 characters")
    fix: str | None = None


class Regression(BaseModel):
    key: str = Field(description="Alert key: pass it to dashboard(acknowledge=[...]) once handled")
    run_id: str
    workspace: str
    stage: str | None = None
    metric: str | None = None
    against: str = Field(description="What it is worse than: vs_best (the best / best-* tag)")
    delta: float = Field(description="Change in the primary metric; negative is worse whichever the direction")
    message: str = Field(default="", description="get_experiment_context's explanation, with the tolerance")


class ActiveRun(BaseModel):
    run_id: str
    workspace: str
    stage: str | None = None
    state: str
    elapsed: str | None = None
    reason: str | None = None


class PendingFinalization(BaseModel):
    count: int
    example: str = Field(description="'<reason>' -> metric=value of the oldest one")
    run_ids: list[str] = Field(description="Up to 5 run ids, oldest first")


class MountedWorkspace(BaseModel):
    slot: str
    workspace: str
    goal: str | None = Field(default=None, description="First 80 characters of the goal")
    dirty: bool | None = Field(default=None, description="Unsaved edits in the slot (null: unknown)")


class Alerts(BaseModel):
    failed_recent: list[FailedRun] = Field(
        default_factory=list, description="Failed and blocked runs within the alert window, not acknowledged, newest "
                                          "first (at most 20)")
    stalled: list[Alert] = Field(default_factory=list, description="Running stages whose heartbeat is overdue")
    svs_findings: list[SvsAlert] = Field(default_factory=list, description="SVS findings not shown before")
    svs_findings_more: int = Field(default=0, description="New findings beyond those listed (shown next time)")
    regressions: list[Regression] = Field(
        default_factory=list, description="Results finalized after the best, worse than it beyond its results_spec's tolerance")
    more: int = Field(default=0, description="Alerts beyond those listed")
    acknowledged: int = Field(default=0, description="Alerts in the window already acknowledged (not listed)")
    window_hours: float = Field(default=24, description="jobs.alert_window_hours: failures older than this are not alerts")


class DashboardResult(BaseModel):
    message: str = Field(description="One-line orientation")
    alerts: Alerts
    active: list[ActiveRun] = Field(default_factory=list, description="Runs not yet terminal")
    pending_finalization: dict[str, PendingFinalization] = Field(
        default_factory=dict, description="Mounted workspaces with runs awaiting finalize_run")
    mounted: list[MountedWorkspace] = Field(default_factory=list)
    unmounted_count: int = 0
    source_count: int = 0
    pending_patterns: int = Field(default=0, description="Failure patterns awaiting review (manage_patterns)")
    acknowledged_now: list[str] = Field(default_factory=list, description="Alert keys this call acknowledged")


def _age(ts: str | None, now: float) -> str | None:
    t = parse_iso(ts)
    if t is None:
        return None
    seconds = max(0.0, now - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _findings(run: dict[str, Any]) -> list[tuple[str, Finding]]:
    svs = _dict(run.get("svs"))
    post, review = _dict(svs.get("post")), _dict(svs.get("review"))
    hook = _dict(post.get("hook"))
    phases = (("review", review.get("findings")), ("during_run", svs.get("during")),
              ("post_run", post.get("findings")), ("post_run", hook.get("findings")))
    out: list[tuple[str, Finding]] = []
    for phase, items in phases:
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or item.get("severity") not in ("warning", "error"):
                continue
            clean = {k: v for k, v in item.items() if k in Finding.model_fields}
            clean.setdefault("source", "post_run")
            try:
                finding = Finding.model_validate(clean)
            except ValueError:
                clean["source"] = "post_run"
                try:
                    finding = Finding.model_validate(clean)
                except ValueError:
                    continue
            out.append((phase, finding))
    return out


def dashboard(project: Project, *, mark_notified: bool = True, acknowledge: list[str] | None = None,
              acknowledge_reason: str | None = None, now: float | None = None) -> DashboardResult:
    now = time.time() if now is None else now
    from goldfish.runs.reconciler import refresh

    refresh(project)  # an active run whose runner died is settled before it is shown
    acked: list[str] = []
    if acknowledge:
        acked = acknowledge_alerts(project, list(acknowledge), acknowledge_reason or "", now=now).keys
    recent = recent_runs(project, since_iso(project, now))
    found = current(project, now, recent=recent)
    alerts = Alerts(acknowledged=found.acknowledged, window_hours=found.window_hours)
    for alert in found.alerts:
        if alert.kind in ("failed", "blocked"):
            if len(alerts.failed_recent) < FAILED_SHOWN:
                run = next((r for r in recent if r["id"] == alert.run_id), {})
                alerts.failed_recent.append(FailedRun(
                    key=alert.key, kind=alert.kind, run_id=str(alert.run_id), workspace=str(alert.workspace),
                    stage=alert.stage, state=str(run.get("state") or "failed"), cause=alert.cause,
                    error=(run.get("error") or "")[:300] or None, age=_age(alert.at, now)))
            else:
                alerts.more += 1
        elif alert.kind == "stalled":
            alerts.stalled.append(alert)
        elif len(alerts.regressions) < REGRESSIONS_SHOWN:
            alerts.regressions.append(Regression(
                key=alert.key, run_id=str(alert.run_id), workspace=str(alert.workspace), stage=alert.stage,
                metric=alert.metric, against="vs_best", delta=alert.delta or 0.0, message=alert.message))
        else:
            alerts.more += 1
    active_docs = _active(project)
    notified = {d["id"]: set(d.get("keys", [])) for d in project.store.table(NOTIFIED_TABLE).iter_raw()}
    fresh: dict[str, list[str]] = {}
    for run in [*active_docs, *recent]:
        for phase, finding in _findings(run):
            key = f"{phase}:{finding.key}"
            if key in notified.get(run["id"], set()) or key in fresh.get(run["id"], []):
                continue
            if len(alerts.svs_findings) >= FINDINGS_SHOWN:
                alerts.svs_findings_more += 1
                continue
            fresh.setdefault(run["id"], []).append(key)
            alerts.svs_findings.append(SvsAlert(
                run_id=run["id"], workspace=run["workspace"], stage=run.get("stage"), phase=phase,
                severity=finding.severity, check=finding.check, message=finding.message[:300], fix=finding.fix))
    active = [
        ActiveRun(run_id=r["id"], workspace=r["workspace"], stage=r.get("stage"), state=r.get("state", "?"),
                  elapsed=_age(r.get("started_at") or r.get("created_at"), now), reason=r.get("reason_summary"))
        for r in active_docs
    ]
    mounts = sorted(project.store.table("mounts").docs(), key=lambda d: d["id"])
    workspaces = {d["id"]: d for d in project.store.table("workspaces").iter_raw()}
    dirty = _dirty(project, mounts)
    mounted = [MountedWorkspace(slot=m["id"], workspace=m["workspace"],
                                goal=(str(workspaces.get(m["workspace"], {}).get("goal") or "")[:80] or None),
                                dirty=dirty.get(m["id"]))
               for m in mounts if m.get("workspace")]
    pending: dict[str, PendingFinalization] = {}
    for m in mounted:
        from goldfish.records.view import workspace_view

        waiting = workspace_view(project, m.workspace).blocking_oldest_first
        if waiting:
            first = waiting[0]
            auto = first.get("results_auto") or {}
            example = f"'{(first.get('reason_summary') or first.get('stage') or '')[:60]}' -> " \
                      f"{auto.get('primary_metric', 'metric')}={auto.get('value')}"
            pending[m.workspace] = PendingFinalization(count=len(waiting), example=example,
                                                       run_ids=[str(r["id"]) for r in waiting[:5]])
    result = DashboardResult(
        message=_message(active, alerts, pending),
        alerts=alerts, active=active, pending_finalization=pending, mounted=mounted,
        unmounted_count=max(0, len(workspaces) - len(mounted)),
        source_count=project.store.table("sources").count_raw(),
        pending_patterns=sum(1 for d in project.store.table("patterns").iter_raw() if d.get("status") == "pending"),
        acknowledged_now=acked,
    )
    if mark_notified and fresh:
        _mark(project, fresh)
    return result


def _dirty(project: Project, mounts: list[dict[str, Any]]) -> dict[str, bool | None]:
    """Slot → unsaved edits: the mount rows while a slot watcher keeps them current (no version list
    or hashing per call), else what slot_status() computes."""
    from goldfish.workspaces.watcher import watcher_alive

    if watcher_alive(project):
        return {str(m["id"]): m.get("dirty") for m in mounts}
    return {s.slot: s.dirty for s in project.workspaces.slot_status() if s.workspace}


def _active(project: Project) -> list[dict[str, Any]]:
    """Stage runs not yet terminal, from the small active_pipelines table, oldest first."""
    out: list[dict[str, Any]] = []
    for entry in project.store.table("active_pipelines").iter_raw():
        ws = str(entry.get("workspace"))
        prun = project.store.table("pipeline_runs", ws_partition(ws)).get_doc(str(entry["id"])) or {}
        runs = project.store.table("runs", ws_partition(ws))
        for rid in (prun.get("stage_runs") or {}).values():
            doc = runs.get_doc(rid)
            if doc is not None and doc.get("state") not in TERMINAL:
                out.append({**doc, "workspace": doc.get("workspace") or ws})
    out.sort(key=lambda r: (str(r.get("created_at") or ""), str(r["id"])))
    return out


def _mark(project: Project, fresh: dict[str, list[str]]) -> None:
    with project.store.transaction() as tx:
        table = tx.table(NOTIFIED_TABLE)
        for run_id, keys in fresh.items():
            current = table.get_doc(run_id)
            merged = [*(current or {}).get("keys", []), *keys][-MAX_KEYS_PER_RUN:]
            if current is None:
                table.add({"keys": merged}, doc_id=run_id)
            else:
                table.patch(run_id, {"keys": merged})


def _message(active: list[ActiveRun], alerts: Alerts, pending: dict[str, PendingFinalization]) -> str:
    parts = [f"{len(active)} active run(s)"]
    if alerts.failed_recent:
        failed = sum(1 for f in alerts.failed_recent if f.kind == "failed")
        blocked = len(alerts.failed_recent) - failed
        parts.append(", ".join(p for p in (f"{failed} failure(s)" if failed else "",
                                           f"{blocked} blocked run(s)" if blocked else "") if p)
                     + f" in the last {alerts.window_hours:g} h (acknowledge with dashboard(acknowledge=[key], "
                       "acknowledge_reason=...) once handled)")
    if alerts.stalled:
        parts.append(f"{len(alerts.stalled)} stalled run(s)")
    if alerts.regressions:
        parts.append(f"{len(alerts.regressions)} regression(s)")
    if alerts.svs_findings:
        parts.append(f"{len(alerts.svs_findings) + alerts.svs_findings_more} new SVS finding(s)")
    if pending:
        total = sum(p.count for p in pending.values())
        parts.append(f"{total} run(s) awaiting finalize_run in {', '.join(sorted(pending))}")
    return "; ".join(parts) + "."
