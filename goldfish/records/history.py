"""list_history and get_experiment_context: reads over one workspace's records and runs.

Both answer from the workspace's history index (``goldfish.records.history_index``): it picks the
page and counts the matches, then only the documents of that page are read and become models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, get_args

from goldfish.records.comparison import current_best
from goldfish.errors import InvalidInput
from goldfish.records.finalize import unfinalized
from goldfish.records.models import (
    SupportingStage,
    BestRun,
    ExperimentContext,
    HistoryRecord,
    HistoryResult,
    PrimaryMetric,
    RecordType,
    RegressionAlert,
    SortBy,
    TrendPoint,
)
from goldfish.records.history_index import Filters, reading
from goldfish.records.refs import part, primary_metric, resolve_workspace
from goldfish.records.roles import SUPPORTING, role_of
from goldfish.runs.gate import result_outcome
from goldfish.records.view import WorkspaceView, workspace_view
from goldfish.records.results_spec import compare_values
from goldfish.timefmt import age

if TYPE_CHECKING:
    from goldfish.project import Project

MAX_LIMIT = 200
MAX_OFFSET = 1_000_000
TREND_LENGTH = 10

Doc = Mapping[str, Any]


def _check_args(record_type: object, sort_by: object, tagged: object, min_value: object, limit: object,
                offset: object) -> None:
    problems: list[str] = []
    if record_type is not None and record_type not in get_args(RecordType):
        problems.append(f"record_type must be 'run', 'checkpoint' or null, got {record_type!r}")
    if sort_by not in get_args(SortBy):
        problems.append(f"sort_by must be 'created' or 'metric', got {sort_by!r}")
    if tagged is not None and not isinstance(tagged, (bool, str)):
        problems.append(f"tagged must be true, false, a tag name or null, got {type(tagged).__name__}")
    if min_value is not None and (isinstance(min_value, bool) or not isinstance(min_value, (int, float))):
        problems.append(f"min_value must be a number, got {min_value!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        problems.append(f"limit must be an integer 1..{MAX_LIMIT}, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        problems.append(f"offset must be an integer 0..{MAX_OFFSET}, got {offset!r}")
    if problems:
        raise InvalidInput("list_history: " + "; ".join(problems) + ".",
                           fix="e.g. list_history('w1', stage='train', sort_by='metric', limit=20).",
                           details={"problems": problems})


def list_history(
    project: Project,
    workspace: str,
    record_type: str | None = None,
    stage: str | None = None,
    tagged: bool | str | None = None,
    metric: str | None = None,
    min_value: float | None = None,
    experiment_group: str | None = None,
    sort_by: str = "created",
    desc: bool = True,
    include_pruned: bool = False,
    finalized_only: bool = False,
    limit: int = 20,
    offset: int = 0,
    include_supporting: bool = False,
) -> HistoryResult:
    """Experiment records of a workspace, newest first by default (see the MCP tool for the contract):
    one row per pipeline run (its result) and per checkpoint; supporting stages are listed under
    their result, and as rows of their own only with ``include_supporting``."""
    _check_args(record_type, sort_by, tagged, min_value, limit, offset)
    ws = resolve_workspace(project, workspace)
    with reading(project.store, ws) as index:
        view = WorkspaceView(project, ws, index)
        pruned = frozenset() if include_pruned else _pruned(project, ws)
        filters = Filters(record_type=record_type, stage=stage, tagged=tagged, metric=metric, min_value=min_value,
                          group=experiment_group, finalized_only=finalized_only, pruned=pruned)
        ids, total = index.page(filters, sort_by, desc, include_supporting, offset, limit)
    page = [rec for rec in (view.record(rid) for rid in ids) if rec is not None]
    return HistoryResult(workspace=ws, records=[history_record(r, view.run_of(r), view) for r in page],
                         total=total, has_more=offset + limit < total)


def _pruned(project: Project, ws: str) -> frozenset[str]:
    versions = project.store.table("versions", part(ws))
    return frozenset(str(v["id"]) for v in versions.iter_raw() if v.get("pruned_at"))


def history_record(rec: Doc, run: Doc | None, view: WorkspaceView | None = None) -> HistoryRecord:
    pm = primary_metric(run)
    tags = rec.get("tags")
    if run is None:
        return HistoryRecord(
            record_id=rec["id"], type=rec.get("type", "run"), version=str(rec.get("version")),
            created_at=str(rec.get("created_at")), age=age(rec.get("created_at")), reason=rec.get("message"),
            tags=list(tags) if tags else None, experiment_group=rec.get("experiment_group"),
        )
    return HistoryRecord(
        record_id=rec["id"], type=rec.get("type", "run"), version=str(rec.get("version")),
        created_at=str(rec.get("created_at")), age=age(rec.get("created_at")), stage=rec.get("stage"),
        stage_run_id=run["id"], reason=run.get("reason_summary"),
        primary_metric=PrimaryMetric(name=pm[0], value=pm[1], source=pm[2]) if pm else None,  # type: ignore[arg-type]
        results_status=run.get("results_status"), infra_outcome=run.get("infra_outcome"),
        ml_outcome=run.get("ml_outcome"), state=run.get("state"), tags=list(tags) if tags else None,
        experiment_group=rec.get("experiment_group"), pipeline_run_id=rec.get("pipeline_run_id"),
        **_pipeline_links(rec, view),
    )


def _pipeline_links(rec: Doc, view: WorkspaceView | None) -> dict[str, Any]:
    """A result row lists its supporting stages; a supporting row names its result."""
    if view is None:
        return {}
    if role_of(rec) == SUPPORTING:
        result = view.result_of(rec)
        return {"role": SUPPORTING, "result_record_id": result["id"] if result else None}
    supporting = []
    for other in view.supporting(rec):
        run = view.run_of(other)
        supporting.append(SupportingStage(
            stage=str(other.get("stage")), record_id=str(other["id"]), stage_run_id=other.get("stage_run_id"),
            state=(run or {}).get("state"), infra_outcome=(run or {}).get("infra_outcome"),
            results_status=(run or {}).get("results_status")))
    return {"supporting": supporting or None}


# ----------------------------------------------------------------------------- context


def _final_value(run: Doc) -> float | None:
    value = (run.get("results_final") or {}).get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _spec_number(run: Doc, key: str) -> float | None:
    value = (run.get("results_spec") or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def recent_trend(finalized_newest_first: Iterable[Doc], length: int = TREND_LENGTH) -> list[TrendPoint]:
    """The last ``length`` finalized results with a value, newest first (a result finalized with no
    value — a crash — is not a point)."""
    points = []
    for run in finalized_newest_first:
        value = _final_value(run)
        if value is None:
            continue
        final = run.get("results_final") or {}
        tolerance = (run.get("results_spec") or {}).get("tolerance")
        points.append(TrendPoint(
            record_id=str(run.get("record_id")), stage_run_id=run["id"], stage=str(run.get("stage")), value=value,
            primary_metric=str(final.get("primary_metric")), direction=str(final.get("direction")),
            tolerance=float(tolerance) if isinstance(tolerance, (int, float)) else None,
            ml_outcome=str(run.get("ml_outcome")), created_at=str(run.get("created_at")),
            finalized_at=run.get("finalized_at"), outcome=result_outcome(dict(run)),
            goal_value=_spec_number(run, "goal_value"),
        ))
        if len(points) == length:
            break
    return points


def regressions(best: BestRun | None, trend: list[TrendPoint]) -> list[RegressionAlert]:
    """Results finalized after the best they are compared with (its tag and its finalization), worse
    than it by more than their own results_spec's tolerance (same metric and direction only). A result that
    was already known when the best was chosen is not a regression, nor is a crash given a number."""
    if best is None:
        return []
    since = max(best.tagged_at or "", best.finalized_at or "")
    alerts = []
    for point in trend:
        if point.stage_run_id == best.stage_run_id or point.primary_metric != best.metric:
            continue
        if (point.finalized_at or "") <= since:
            continue
        if point.outcome == "crashed":  # a crash is a failure (the failed-run alert), not a worse result
            continue
        if point.direction != best.direction:
            continue
        tolerance = point.tolerance if point.tolerance is not None else 0.0
        delta = compare_values(best.direction, point.value, best.value)  # type: ignore[arg-type]
        if delta < -tolerance:
            alerts.append(RegressionAlert(
                record_id=point.record_id, stage_run_id=point.stage_run_id, value=point.value, best_value=best.value,
                delta=delta, tolerance=tolerance, finalized_at=point.finalized_at,
                message=f"{point.stage_run_id} ({point.stage}) {best.metric}={point.value:g} is {-delta:g} worse than "
                        f"@{best.tag} ({best.value:g}), beyond its tolerance {tolerance:g}.",
            ))
    return alerts


def regression_alerts(project: Project, workspace: str) -> list[RegressionAlert]:
    """The workspace's regression alerts alone (what dashboard() needs; no queue is built)."""
    best_run, trend = best_and_trend(project, workspace)
    return regressions(best_run, trend)


def best_and_trend(project: Project, ws: str) -> tuple[BestRun | None, list[TrendPoint]]:
    best_run: BestRun | None = None
    best = current_best(project, ws)
    if best is not None:
        tag, record, run, tagged_at = best
        final = run.get("results_final") or {}
        value = _final_value(run)
        if value is not None:
            best_run = BestRun(record_id=record["id"], stage_run_id=run["id"], tag=tag, stage=run.get("stage"),
                               metric=str(final.get("primary_metric")), value=value,
                               direction=str(final.get("direction")), ml_outcome=run.get("ml_outcome"),
                               tagged_at=tagged_at or None, finalized_at=run.get("finalized_at"),
                               goal_value=_spec_number(run, "goal_value"))
    return best_run, recent_trend(workspace_view(project, ws).results_newest_first)


def experiment_context(project: Project, workspace: str,
                       queue: Callable[[Project, str], Any] = unfinalized) -> ExperimentContext:
    ws = resolve_workspace(project, workspace)
    best_run, trend = best_and_trend(project, ws)
    alerts = regressions(best_run, trend)
    waiting = queue(project, ws)
    parts = [f"best @{best_run.tag}: {best_run.metric}={best_run.value:g}" if best_run
             else "no finalized best/best-* tag yet (tag_record(run, 'best') after finalizing a good run)"]
    parts.append(f"{len(waiting)} awaiting finalization" if waiting else "nothing awaiting finalization")
    if alerts:
        parts.append(f"{len(alerts)} regression alert(s)")
    return ExperimentContext(workspace=ws, current_best=best_run, awaiting_finalization=waiting, recent_trend=trend,
                             regression_alerts=alerts, message=f"{ws}: " + "; ".join(parts) + ".")
