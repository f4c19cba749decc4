"""History (``project.records.list_history``) and the comparison of two records (``inspect_record``).

The history screen asks the records service exactly what the MCP tool ``list_history`` asks it:
the same filters, sorts (created, metric) and pages (at most 200 records), so the person and the
agent see the same list in the same order.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, get_args

from goldfish.errors import GoldfishError, InvalidInput
from goldfish.records.models import RecordType, SortBy
from tui.format import parse_ts
from tui.viewmodels import CompareView, ConfigChange, HistoryPage, HistoryQuery, HistoryRow, MetricDelta

if TYPE_CHECKING:
    from goldfish.project import Project
    from goldfish.records.models import HistoryRecord, RecordDetail

SORT_KEYS: tuple[str, ...] = get_args(SortBy)
MAX_CONFIG_CHANGES = 200
FILTER_KEYS = {"stage": "stage", "type": "record_type", "tag": "tagged", "metric": "metric", "min": "min_value",
               "group": "experiment_group"}
FILTER_FLAGS = {"finalized": ("finalized_only", True), "tagged": ("tagged", True), "untagged": ("tagged", False),
                "pruned": ("include_pruned", True), "supporting": ("include_supporting", True)}
FILTER_HELP = ("stage=NAME type=run|checkpoint tag=NAME metric=NAME min=NUMBER group=NAME finalized tagged untagged "
               "pruned supporting")


def history_row(rec: HistoryRecord) -> HistoryRow:
    pm = rec.primary_metric
    return HistoryRow(
        key=rec.record_id, record_id=rec.record_id, type=rec.type, run_id=rec.stage_run_id, stage=rec.stage,
        version=rec.version, created=parse_ts(rec.created_at), state=rec.state, results_status=rec.results_status,
        ml_outcome=rec.ml_outcome, metric_name=pm.name if pm else None, metric_value=pm.value if pm else None,
        tags=tuple(rec.tags or ()), reason=rec.reason, experiment_group=rec.experiment_group,
        supporting=len(rec.supporting or ()), role=rec.role,
    )


def parse_filter(text: str) -> dict[str, Any]:
    """The filter line as list_history arguments: ``stage=train tag=best min=0.8 finalized``.

    Every problem is named at once (InvalidInput); nothing is half applied.
    """
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"Filter: {exc}.", fix="Close the quote, e.g. group='lstm width'.") from exc
    out: dict[str, Any] = {}
    problems: list[str] = []
    from goldfish.names import did_you_mean

    for token in tokens:
        key, sep, value = token.partition("=")
        key = key.strip().lower()
        if not sep:
            if key in FILTER_FLAGS:
                field, flag = FILTER_FLAGS[key]
                out[field] = flag
            else:
                problems.append(f"{token!r} is not a filter{did_you_mean(key, [*FILTER_FLAGS, *FILTER_KEYS])}")
            continue
        if key not in FILTER_KEYS:
            problems.append(f"unknown filter key {key!r}{did_you_mean(key, list(FILTER_KEYS))}")
            continue
        if not value:
            problems.append(f"{key}= needs a value")
            continue
        field = FILTER_KEYS[key]
        if field == "record_type" and value not in get_args(RecordType):
            problems.append(f"type must be run or checkpoint, got {value!r}")
        elif field == "min_value":
            try:
                number = float(value)
            except ValueError:
                problems.append(f"min must be a number, got {value!r}")
                continue
            if not math.isfinite(number):
                problems.append(f"min must be a finite number, got {value!r}")
                continue
            out[field] = number
        else:
            out[field] = value
    if problems:
        raise InvalidInput("Filter: " + "; ".join(problems) + ".", fix=f"Use any of: {FILTER_HELP}.",
                           details={"problems": problems})
    return out


def load_history(project: Project, q: HistoryQuery) -> HistoryPage:
    """One page of ``list_history`` for the query (its arguments checked by the service)."""
    result = project.records.list_history(
        q.workspace, record_type=q.record_type, stage=q.stage, tagged=q.tagged, metric=q.metric,
        min_value=q.min_value, experiment_group=q.experiment_group, sort_by=q.sort_by, desc=q.descending,
        include_pruned=q.include_pruned, finalized_only=q.finalized_only, limit=q.limit, offset=q.offset,
        include_supporting=q.include_supporting,
    )
    return HistoryPage(query=q, rows=tuple(history_row(r) for r in result.records), total=result.total)


# ----------------------------------------------------------------------------- compare


def config_changes(left: Any, right: Any) -> list[ConfigChange]:
    """Changed config keys, as finalize_run's comparison reports them (``comparison.config_diff``)."""
    from goldfish.records.comparison import config_diff

    diff = config_diff(left if isinstance(left, dict) else None, right if isinstance(right, dict) else None)
    return [ConfigChange(key=k, left=a, right=b) for k, (a, b) in list(diff.items())[:MAX_CONFIG_CHANGES]]


def _metric_lasts(run: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, s in (run.get("metrics_summary") or {}).items():
        v = s.get("last") if isinstance(s, dict) else None
        out[name] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
    return out


def _record(project: Project, workspace: str, record_id: str) -> tuple[RecordDetail, HistoryRow, dict[str, Any]]:
    """(inspect_record detail, its history row, the stage run's metric summaries)."""
    detail = project.records.inspect_record(record_id, include=["results", "config", "tags"], workspace=workspace)
    results = detail.results
    pm = detail.primary_metric
    row = HistoryRow(
        key=detail.record_id, record_id=detail.record_id, type=detail.type, run_id=detail.stage_run_id,
        stage=detail.stage, version=detail.version, created=parse_ts(detail.created_at), state=detail.state,
        results_status=results.results_status if results else None, ml_outcome=results.ml_outcome if results else None,
        metric_name=pm.name if pm else None, metric_value=pm.value if pm else None, tags=tuple(detail.tags or ()),
        reason=detail.reason, experiment_group=detail.experiment_group,
    )
    run = project.runs.get(detail.stage_run_id) if detail.stage_run_id else {}
    return detail, row, run


def load_compare(project: Project, workspace: str, left_id: str, right_id: str) -> CompareView:
    """Config diff, code diff (the workspaces diff service), metric deltas and outcomes of two records."""
    ldetail, left, lrun = _record(project, workspace, left_id)
    rdetail, right, rrun = _record(project, workspace, right_id)
    lm, rm = _metric_lasts(lrun), _metric_lasts(rrun)
    deltas = [MetricDelta(name=n, left=lm.get(n), right=rm.get(n)) for n in sorted(set(lm) | set(rm))]
    if left.metric_name and left.metric_name == right.metric_name:
        deltas = [d for d in deltas if d.name != left.metric_name]
        deltas.insert(0, MetricDelta(name=f"{left.metric_name} (primary)", left=left.metric_value,
                                     right=right.metric_value))
    code_summary, code_diff = "", ""
    if left.version and right.version and left.version != right.version:
        try:
            result = project.workspaces.diff(f"{workspace}@{right.version}", f"{workspace}@{left.version}")
        except GoldfishError as exc:
            # The config, metric and outcome comparison stands on its own; say why the code is missing.
            code_summary = f"Code diff {left.version} → {right.version} unavailable: {exc}"
        else:
            code_summary, code_diff = result.summary, result.diff_text
    elif left.version == right.version:
        code_summary = f"Same version {left.version}: identical code."

    def notes(detail: RecordDetail) -> Any:
        return ((detail.results.results_final if detail.results else None) or {}).get("notes")

    outcomes = tuple(
        (label, str(a or ""), str(b or ""))
        for label, a, b in (
            ("state", left.state, right.state),
            ("infra_outcome", ldetail.infra_outcome, rdetail.infra_outcome),
            ("results_status", left.results_status, right.results_status),
            ("ml_outcome", left.ml_outcome, right.ml_outcome),
            ("notes", notes(ldetail), notes(rdetail)),
        )
    )
    return CompareView(
        workspace=workspace, left=left, right=right,
        config_changes=tuple(config_changes(ldetail.config, rdetail.config)),
        metric_deltas=tuple(deltas), code_summary=code_summary, code_diff=code_diff, outcomes=outcomes,
    )
