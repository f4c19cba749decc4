"""``dashboard()``: what needs attention now, read from the store in one pass.

Alerts (recent failures, new SVS findings, regressions), active runs, runs awaiting finalization
per mounted workspace, mounted workspaces and the source count. Each SVS finding is shown once:
after it is returned it is marked notified (table ``svs_notified``, project partition, one document
per stage run), so the next call shows only what is new.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from goldfish.runs.gate import unfinalized_runs
from goldfish.runs.state import TERMINAL, parse_iso
from goldfish.svs.findings import Finding

if TYPE_CHECKING:
    from goldfish.project import Project

NOTIFIED_TABLE = "svs_notified"
FAILED_SHOWN = 5
FINDINGS_SHOWN = 30
REGRESSIONS_SHOWN = 5
MAX_KEYS_PER_RUN = 2000


class FailedRun(BaseModel):
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
    failed_recent: list[FailedRun] = Field(default_factory=list, description="Last 5 failed/terminated runs")
    svs_findings: list[SvsAlert] = Field(default_factory=list, description="SVS findings not shown before")
    svs_findings_more: int = Field(default=0, description="New findings beyond those listed (shown next time)")
    regressions: list[Regression] = Field(default_factory=list, description="Finalized runs worse than before")


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


def _age(ts: str | None, now: float) -> str | None:
    t = parse_iso(ts)
    if t is None:
        return None
    seconds = max(0.0, now - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _all_runs(project: Project) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for partition in project.store.partitions("ws"):
        workspace = partition.split("/", 1)[1]
        for doc in project.store.table("runs", partition).iter_raw():
            runs.append({**doc, "workspace": doc.get("workspace") or workspace})
    return runs


def _regressions(project: Project, runs: list[dict[str, Any]]) -> list[Regression]:
    """get_experiment_context's regression alerts (worse than the best tag beyond that run's own spec
    tolerance), for every workspace with a finalized run: one definition of "regression" everywhere."""
    stages = {r["id"]: r.get("stage") for r in runs}
    out: list[Regression] = []
    for workspace in sorted({r["workspace"] for r in runs if r.get("results_status") == "finalized"}):
        context = project.records.get_experiment_context(workspace)
        metric = context.current_best.metric if context.current_best else None
        for alert in context.regression_alerts:
            out.append(Regression(run_id=alert.stage_run_id, workspace=workspace, stage=stages.get(alert.stage_run_id),
                                  metric=metric, against="vs_best", delta=alert.delta, message=alert.message))
    return out[:REGRESSIONS_SHOWN]


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


def dashboard(project: Project, *, mark_notified: bool = True) -> DashboardResult:
    now = time.time()
    runs = _all_runs(project)
    by_recent = sorted(runs, key=lambda r: str(r.get("finished_at") or r.get("created_at") or ""), reverse=True)
    alerts = Alerts()
    for run in by_recent:
        if run.get("state") in ("failed", "terminated") and len(alerts.failed_recent) < FAILED_SHOWN:
            alerts.failed_recent.append(FailedRun(
                run_id=run["id"], workspace=run["workspace"], stage=run.get("stage"), state=run["state"],
                cause=run.get("cause"), error=(run.get("error") or "")[:300] or None,
                age=_age(run.get("finished_at"), now)))
    notified = {d["id"]: set(d.get("keys", [])) for d in project.store.table(NOTIFIED_TABLE).iter_raw()}
    fresh: dict[str, list[str]] = {}
    for run in by_recent:
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
    alerts.regressions = _regressions(project, runs)
    active = [
        ActiveRun(run_id=r["id"], workspace=r["workspace"], stage=r.get("stage"), state=r.get("state", "?"),
                  elapsed=_age(r.get("started_at") or r.get("created_at"), now), reason=r.get("reason_summary"))
        for r in sorted(runs, key=lambda r: str(r.get("created_at") or ""))
        if r.get("state") not in TERMINAL
    ]
    mounts = sorted(project.store.table("mounts").docs(), key=lambda d: d["id"])
    workspaces = {d["id"]: d for d in project.store.table("workspaces").iter_raw()}
    dirty = {s.slot: s.dirty for s in project.workspaces.slot_status() if s.workspace}
    mounted = [MountedWorkspace(slot=m["id"], workspace=m["workspace"],
                                goal=(str(workspaces.get(m["workspace"], {}).get("goal") or "")[:80] or None),
                                dirty=dirty.get(m["id"]))
               for m in mounts if m.get("workspace")]
    pending: dict[str, PendingFinalization] = {}
    for m in mounted:
        waiting = unfinalized_runs(project, m.workspace)
        if waiting:
            first = waiting[0]
            auto = first.get("results_auto") or {}
            example = f"'{(first.get('reason_summary') or first.get('stage') or '')[:60]}' -> " \
                      f"{auto.get('primary_metric', 'metric')}={auto.get('value')}"
            pending[m.workspace] = PendingFinalization(count=len(waiting), example=example,
                                                       run_ids=[r["id"] for r in waiting[:5]])
    result = DashboardResult(
        message=_message(active, alerts, pending),
        alerts=alerts, active=active, pending_finalization=pending, mounted=mounted,
        unmounted_count=max(0, len(workspaces) - len(mounted)),
        source_count=project.store.table("sources").count_raw(),
        pending_patterns=sum(1 for d in project.store.table("patterns").iter_raw() if d.get("status") == "pending"),
    )
    if mark_notified and fresh:
        _mark(project, fresh)
    return result


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
        parts.append(f"{len(alerts.failed_recent)} recent failure(s)")
    if alerts.svs_findings:
        parts.append(f"{len(alerts.svs_findings) + alerts.svs_findings_more} new SVS finding(s)")
    if pending:
        total = sum(p.count for p in pending.values())
        parts.append(f"{total} run(s) awaiting finalize_run in {', '.join(sorted(pending))}")
    return "; ".join(parts) + "."
