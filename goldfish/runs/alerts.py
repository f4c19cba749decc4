"""Alerts a person can act on: one definition for ``dashboard()``, ``goldfish tui`` and
``--fail-on-alerts``.

* **failed** (error): a stage run that ended failed or terminated (not blocked, not canceled)
  within ``jobs.alert_window_hours``;
* **blocked** (warning): a stage run stopped by preflight, the pre-run review or its inputs, within
  the same window;
* **stalled** (warning): a running stage whose last heartbeat is older than
  ``jobs.heartbeat_grace_seconds``;
* **regression** (warning): ``get_experiment_context``'s regression alerts — a result finalized
  after the best it is compared with, worse than it beyond its results_spec's tolerance. Nothing else is one.

Every alert has a stable key (``failed:stage-…``, ``blocked:…``, ``stalled:…``,
``regression:…``). ``acknowledge(keys, reason)`` records who set an alert aside and why (table
``alert_acks``, project partition, plus an audit row); an acknowledged alert is no longer listed
or counted. Failures are read from the tail of the ``transitions`` log back to the window's start,
never from every run of every workspace.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from goldfish import names
from goldfish.errors import InvalidInput
from goldfish.runs.state import TRANSITIONS_LOG, ws_partition
from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.project import Project

ACKS_TABLE = "alert_acks"
BLOCKED_CAUSES = frozenset({"preflight", "review_blocked", "input_error", "prepare_error"})
MAX_ACK = 50
AlertKind = Literal["failed", "blocked", "stalled", "regression"]


class Alert(BaseModel):
    """One thing that needs a person: acknowledge it with its key once handled."""

    key: str = Field(description="Stable id, e.g. failed:stage-1a2b3c4d; pass it to dashboard(acknowledge=[...])")
    kind: AlertKind = Field(description="failed, blocked, stalled or regression")
    severity: Literal["error", "warning"]
    workspace: str | None = None
    run_id: str | None = None
    stage: str | None = None
    cause: str | None = Field(default=None, description="Why it failed/was blocked (e.g. exit_nonzero, review_blocked)")
    message: str = Field(description="What happened (first 300 characters)")
    at: str | None = Field(default=None, description="When it happened (UTC ISO time)")
    delta: float | None = Field(default=None, description="Regressions: change vs the best (negative = worse)")
    metric: str | None = Field(default=None, description="Regressions: the primary metric compared")


class AlertSet(BaseModel):
    alerts: list[Alert] = Field(description="Unacknowledged alerts, newest first")
    acknowledged: int = Field(default=0, description="Alerts in the window already acknowledged (not listed)")
    window_hours: float = Field(description="Failed and blocked runs older than this are no longer alerts")


class Acknowledged(BaseModel):
    keys: list[str] = Field(description="Alerts acknowledged by this call")
    reason: str
    message: str


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _acks(project: Project) -> dict[str, dict[str, Any]]:
    return {str(d["id"]): d for d in project.store.table(ACKS_TABLE).iter_raw()}


def recent_runs(project: Project, since: str) -> list[dict[str, Any]]:
    """Stage run docs whose latest transitions happened at or after ``since`` (newest first, each once)."""
    seen: dict[str, dict[str, Any]] = {}
    events = project.store.tail_events(
        TRANSITIONS_LOG, 100_000, predicate=lambda e: str(e.get("run_id") or "").startswith("stage-"),
        stop=lambda e: str(e.get("ts") or "") < since)
    for ev in events:
        rid, ws = str(ev["run_id"]), ev.get("workspace")
        if rid in seen or not isinstance(ws, str):
            continue
        doc = project.store.table("runs", ws_partition(ws)).get_doc(rid)
        if doc is not None:
            seen[rid] = {**doc, "workspace": doc.get("workspace") or ws}
    return list(seen.values())


def _failure(run: dict[str, Any]) -> Alert | None:
    state, cause = run.get("state"), run.get("cause")
    if state not in ("failed", "terminated"):
        return None
    blocked = state == "failed" and cause in BLOCKED_CAUSES
    kind: AlertKind = "blocked" if blocked else "failed"
    what = f"{run.get('stage')} {state}" + (f" ({cause})" if cause else "")
    error = " ".join(str(run.get("error") or "").split())
    return Alert(key=f"{kind}:{run['id']}", kind=kind, severity="warning" if blocked else "error",
                 workspace=run.get("workspace"), run_id=run["id"], stage=run.get("stage"), cause=cause,
                 message=(f"{what}: {error}" if error else what)[:300], at=run.get("finished_at"))


def _stalled(project: Project, now: float) -> list[Alert]:
    grace = float(project.config.jobs.heartbeat_grace_seconds)
    out = []
    for entry in project.store.table("active_pipelines").iter_raw():
        ws = str(entry.get("workspace"))
        prun = project.store.table("pipeline_runs", ws_partition(ws)).get_doc(str(entry["id"]))
        runs = project.store.table("runs", ws_partition(ws))
        for rid in ((prun or {}).get("stage_runs") or {}).values():
            doc = runs.get_doc(rid) or {}
            if doc.get("state") != "running":
                continue
            beat = _heartbeat(project, rid)
            if beat is not None and now - beat > grace:
                out.append(Alert(key=f"stalled:{rid}", kind="stalled", severity="warning", workspace=ws, run_id=rid,
                                 stage=doc.get("stage"), at=_iso(beat),
                                 message=f"{doc.get('stage')} has not sent a heartbeat for {int(now - beat)}s"))
    return out


def _heartbeat(project: Project, run_id: str) -> float | None:
    try:
        beat = json.loads((project.runs_dir / run_id / "outputs" / ".goldfish" / "heartbeat").read_text())
    except (OSError, ValueError):
        return None
    ts = beat.get("timestamp") if isinstance(beat, dict) else None
    return float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None


def _regressions(project: Project) -> list[Alert]:
    from goldfish.records.history import best_and_trend, regressions

    out = []
    for row in project.store.table("workspaces").iter_raw():
        if row.get("deleted_at"):
            continue
        ws = str(row["id"])
        best, trend = best_and_trend(project, ws)
        stages = {p.stage_run_id: p.stage for p in trend}
        for alert in regressions(best, trend):
            out.append(Alert(key=f"regression:{alert.stage_run_id}", kind="regression", severity="warning",
                             workspace=ws, run_id=alert.stage_run_id, stage=stages.get(alert.stage_run_id),
                             message=alert.message[:300], at=alert.finalized_at, delta=alert.delta,
                             metric=best.metric if best else None))
    return out


def current(project: Project, now: float | None = None, *, recent: list[dict[str, Any]] | None = None,
            include_acknowledged: bool = False) -> AlertSet:
    """Every alert that holds now (``recent``: ``recent_runs`` of the window, when the caller has it)."""
    now = time.time() if now is None else now
    hours = float(project.config.jobs.alert_window_hours)
    since = _iso(now - hours * 3600)
    runs = recent if recent is not None else recent_runs(project, since)
    found = [a for a in (_failure(r) for r in runs) if a is not None and (a.at or "") >= since]
    found += _stalled(project, now)
    found += _regressions(project)
    found.sort(key=lambda a: a.at or "", reverse=True)
    acks = _acks(project)
    listed = [a for a in found if include_acknowledged or a.key not in acks]
    return AlertSet(alerts=listed, acknowledged=sum(1 for a in found if a.key in acks), window_hours=hours)


def acknowledge(project: Project, keys: list[str], reason: str, *, now: float | None = None) -> Acknowledged:
    """Set alerts aside (audited with ``reason``); every key must be an alert that holds now."""
    text = names.reason(reason, project.config.audit.min_reason_length, what="acknowledge reason")
    if not isinstance(keys, list) or not keys or len(keys) > MAX_ACK or not all(isinstance(k, str) for k in keys):
        raise InvalidInput(f"acknowledge takes a list of 1-{MAX_ACK} alert keys, got {keys!r}.",
                           fix="Pass the key of each alert shown by dashboard(), e.g. ['failed:stage-1a2b3c4d'].")
    alerts = {a.key: a for a in current(project, now, include_acknowledged=True).alerts}
    unknown = [k for k in keys if k not in alerts]
    if unknown:
        shown = ", ".join(list(alerts)[:10]) or "(there are none)"
        raise InvalidInput(f"Not a current alert: {', '.join(unknown)}.",
                           fix=f"Acknowledge keys dashboard() lists now: {shown}.")
    with project.store.transaction() as tx:
        table = tx.table(ACKS_TABLE)
        for key in keys:
            alert = alerts[key]
            table.put(key, {"reason": text, "by": project.source, "at": now_iso(), "kind": alert.kind,
                            "run_id": alert.run_id, "workspace": alert.workspace})
        journal = getattr(project, "journal", None)
        details = {"keys": keys}
        if journal is not None:
            journal.record(tx, "acknowledge_alert", reason=text, workspace=alerts[keys[0]].workspace, details=details)
        else:
            tx.append_event("audit", {"ts": now_iso(), "op": "acknowledge_alert", "source": project.source,
                                      "workspace": alerts[keys[0]].workspace, "slot": None, "reason": text,
                                      "details": details})
    return Acknowledged(keys=list(keys), reason=text,
                        message=f"Acknowledged {len(keys)} alert(s): {', '.join(keys)}. They are no longer listed "
                                "or counted by --fail-on-alerts; the audit log keeps why.")


def since_iso(project: Project, now: float) -> str:
    """The start of the alert window (UTC ISO), for callers that read ``recent_runs`` themselves."""
    return _iso(now - float(project.config.jobs.alert_window_hours) * 3600)


__all__ = ["ACKS_TABLE", "Acknowledged", "Alert", "AlertSet", "acknowledge", "current", "recent_runs", "since_iso"]
