"""``goldfish status``: slots, active runs, the finalization queue and the best result per workspace.

One model (``ProjectStatus``) feeds both the text and ``--json``, so scripts and people read the same
facts. Times are absolute (UTC): the output may be read long after it was printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from goldfish.project import Project


class SlotLine(BaseModel):
    slot: str
    workspace: str | None = Field(default=None, description="Mounted workspace (null: empty slot)")
    version: str | None = Field(default=None, description="Latest version of the mounted workspace")
    state: Literal["empty", "clean", "dirty", "unknown"]
    changed_files: int = Field(default=0, description="Unsaved files in the slot")


class ActiveLine(BaseModel):
    run_id: str
    workspace: str
    stage: str | None = None
    state: str
    started_at: str | None = Field(default=None, description="UTC, ISO 8601")


class QueueLine(BaseModel):
    workspace: str
    count: int = Field(description="Runs awaiting finalize_run")
    run_ids: list[str] = Field(description="Up to 5, oldest first")


class BestLine(BaseModel):
    workspace: str
    metric: str
    value: float
    direction: str
    stage_run_id: str
    source: Literal["tag", "finalized"] = Field(
        description="tag: the newest best/best-* tag; finalized: the best finalized value (no best tag yet)")
    tag: str | None = None


class ProjectStatus(BaseModel):
    project_name: str
    project_root: str
    dev_repo: str
    backend: str
    slots: list[SlotLine]
    active_runs: list[ActiveLine]
    finalization_queue: list[QueueLine]
    best: list[BestLine] = Field(description="One per workspace with a finalized result")


def _best(project: Project, workspace: str) -> BestLine | None:
    from goldfish.records.history import best_and_trend
    from goldfish.records.view import workspace_view

    best_run, _trend = best_and_trend(project, workspace)
    if best_run is not None and best_run.stage_run_id:
        return BestLine(workspace=workspace, metric=best_run.metric, value=best_run.value,
                        direction=best_run.direction, stage_run_id=best_run.stage_run_id, source="tag",
                        tag=best_run.tag)
    chosen: tuple[float, Mapping[str, Any]] | None = None
    metric = None
    for run in workspace_view(project, workspace).results_newest_first:
        final = run.get("results_final") or {}
        value = final.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        metric = metric or final.get("primary_metric")
        if final.get("primary_metric") != metric:
            continue  # only results of the newest result's metric compare
        minimize = final.get("direction") == "minimize"
        if chosen is None or (value < chosen[0] if minimize else value > chosen[0]):
            chosen = (float(value), run)
    if chosen is None:
        return None
    value, run = chosen
    final = run.get("results_final") or {}
    return BestLine(workspace=workspace, metric=str(final.get("primary_metric")), value=value,
                    direction=str(final.get("direction")), stage_run_id=str(run["id"]), source="finalized")


def project_status(project: Project) -> ProjectStatus:
    from goldfish.records.view import workspace_view
    from goldfish.runs.dashboard import _active

    slots = []
    for info in project.workspaces.slot_status():
        if info.workspace is None:
            slots.append(SlotLine(slot=info.slot, state="empty"))
            continue
        state: Literal["clean", "dirty", "unknown"] = (
            "dirty" if info.dirty else ("clean" if info.dirty is False else "unknown"))
        slots.append(SlotLine(slot=info.slot, workspace=info.workspace, version=info.current_version, state=state,
                              changed_files=info.changed_count or 0))
    active = [ActiveLine(run_id=str(r["id"]), workspace=str(r["workspace"]), stage=r.get("stage"),
                         state=str(r.get("state", "?")), started_at=r.get("started_at") or r.get("created_at"))
              for r in _active(project)]
    workspaces = sorted(str(d["id"]) for d in project.store.table("workspaces").iter_raw() if not d.get("deleted_at"))
    queue, best = [], []
    for ws in workspaces:
        waiting = workspace_view(project, ws).blocking_oldest_first
        if waiting:
            queue.append(QueueLine(workspace=ws, count=len(waiting), run_ids=[str(r["id"]) for r in waiting[:5]]))
        line = _best(project, ws)
        if line is not None:
            best.append(line)
    cfg = project.config
    return ProjectStatus(project_name=cfg.project_name, project_root=str(project.root), dev_repo=str(project.dev_path),
                         backend=cfg.jobs.backend, slots=slots, active_runs=active, finalization_queue=queue, best=best)


def render_status_text(project: Project) -> str:
    return render_text(project_status(project))


def render_text(status: ProjectStatus) -> str:
    lines = [
        f"Goldfish project {status.project_name}",
        f"  project:  {status.project_root}",
        f"  dev repo: {status.dev_repo}",
        f"  backend:  {status.backend}",
        "  slots:",
    ]
    for s in status.slots:
        if s.workspace is None:
            lines.append(f"    {s.slot}: (empty)")
        else:
            state = f"dirty ({s.changed_files} files)" if s.state == "dirty" else s.state
            lines.append(f"    {s.slot}: {s.workspace} {s.version or '(no versions)'} {state}")
    lines.append(f"  active runs: {len(status.active_runs) or 'none'}")
    for a in status.active_runs:
        since = f" since {a.started_at} UTC" if a.started_at else ""
        lines.append(f"    {a.run_id} {a.workspace}/{a.stage or '?'} {a.state}{since}")
    lines.append(f"  awaiting finalize_run: {sum(q.count for q in status.finalization_queue) or 'none'}")
    for q in status.finalization_queue:
        lines.append(f"    {q.workspace}: {q.count} ({', '.join(q.run_ids)})")
    lines.append(f"  best result per workspace: {'' if status.best else 'none finalized yet'}".rstrip())
    for b in status.best:
        how = f"@{b.tag}" if b.tag else "best finalized"
        lines.append(f"    {b.workspace}: {b.metric}={b.value:g} ({b.direction}, {how}, {b.stage_run_id})")
    return "\n".join(lines)
