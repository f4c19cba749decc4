"""History (records of a workspace joined with their runs) and the comparison of two records."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from goldfish.errors import GoldfishError, NotFound
from tui.data import metric_value, ws_partition
from tui.format import parse_ts
from tui.viewmodels import CompareView, ConfigChange, HistoryPage, HistoryQuery, HistoryRow, MetricDelta

if TYPE_CHECKING:
    from goldfish.project import Project

SORT_KEYS = ("created", "metric", "stage", "version", "state")
MAX_CONFIG_CHANGES = 200


def history_row(record: Mapping[str, Any], run: Mapping[str, Any] | None) -> HistoryRow:
    run = run or {}
    name, value = metric_value(run) if run else (None, None)
    reason = run.get("reason_summary")
    return HistoryRow(
        key=str(record["id"]), record_id=str(record["id"]), type=str(record.get("type") or "run"),
        run_id=record.get("stage_run_id"), stage=record.get("stage") or run.get("stage"),
        version=record.get("version") or run.get("version"), created=parse_ts(record.get("created_at")),
        state=run.get("state"), results_status=run.get("results_status"), ml_outcome=run.get("ml_outcome"),
        metric_name=name, metric_value=value, tags=tuple(record.get("tags") or ()),
        reason=str(reason) if reason else None, experiment_group=record.get("experiment_group"),
    )


def _version_number(version: str | None) -> int:
    if version and version[1:].isdigit():
        return int(version[1:])
    return -1


def _matches(row: HistoryRow, q: HistoryQuery) -> bool:
    if q.stage and row.stage != q.stage:
        return False
    if q.finalized_only and row.results_status != "finalized":
        return False
    if q.tagged_only and not row.tags:
        return False
    if q.text:
        needle = q.text.lower()
        hay = " ".join(str(x) for x in (row.record_id, row.run_id, row.stage, row.version, row.reason,
                                         row.state, row.ml_outcome, *row.tags) if x)
        return needle in hay.lower()
    return True


def _sort_key(q: HistoryQuery) -> Any:
    if q.sort_by == "metric":
        # Nulls last in either direction.
        sign = -1.0 if q.descending else 1.0
        return lambda r: (r.metric_value is None, sign * r.metric_value if r.metric_value is not None else 0.0,
                          r.record_id)
    if q.sort_by == "stage":
        return lambda r: (r.stage or "", r.record_id)
    if q.sort_by == "version":
        return lambda r: (_version_number(r.version), r.record_id)
    if q.sort_by == "state":
        return lambda r: (r.state or "", r.record_id)
    return lambda r: (r.created or 0.0, r.record_id)


def all_history_rows(project: Project, workspace: str) -> list[HistoryRow]:
    part = ws_partition(workspace)
    runs = {r["id"]: r for r in project.store.table("runs", part).iter_raw()}
    return [history_row(rec, runs.get(rec.get("stage_run_id") or "")) for rec in
            project.store.table("records", part).iter_raw()]


def load_history(project: Project, q: HistoryQuery) -> HistoryPage:
    rows = [r for r in all_history_rows(project, q.workspace) if _matches(r, q)]
    reverse = q.descending and q.sort_by != "metric"
    rows.sort(key=_sort_key(q), reverse=reverse)
    page = rows[q.offset : q.offset + q.limit]
    return HistoryPage(query=q, rows=tuple(page), total=len(rows))


# ----------------------------------------------------------------------------- compare


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (lists stay values)."""
    if not isinstance(value, dict):
        return {prefix or "(value)": value}
    out: dict[str, Any] = {}
    for k in sorted(value, key=str):
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(value[k], dict) and value[k]:
            out.update(flatten(value[k], key))
        else:
            out[key] = value[k]
    return out


def config_changes(left: Any, right: Any) -> list[ConfigChange]:
    lf, rf = flatten(left or {}), flatten(right or {})
    out = []
    for key in sorted(set(lf) | set(rf)):
        a, b = lf.get(key, _MISSING), rf.get(key, _MISSING)
        if a != b:
            out.append(ConfigChange(key=key, left=None if a is _MISSING else a, right=None if b is _MISSING else b))
    return out[:MAX_CONFIG_CHANGES]


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def _metric_lasts(run: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, s in (run.get("metrics_summary") or {}).items():
        v = s.get("last") if isinstance(s, dict) else None
        out[name] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
    return out


def _record_and_run(project: Project, workspace: str, record_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    part = ws_partition(workspace)
    rec = project.store.table("records", part).get_doc(record_id)
    if rec is None:
        raise NotFound(f"Record {record_id} not found in workspace {workspace}.", fix="Pick records from the history.")
    run = project.store.table("runs", part).get_doc(rec.get("stage_run_id") or "") or {}
    return rec, run


def load_compare(project: Project, workspace: str, left_id: str, right_id: str) -> CompareView:
    """Config diff, code diff (the workspaces diff service), metric deltas and outcomes of two records."""
    lrec, lrun = _record_and_run(project, workspace, left_id)
    rrec, rrun = _record_and_run(project, workspace, right_id)
    left, right = history_row(lrec, lrun), history_row(rrec, rrun)
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
    outcomes = tuple(
        (label, str(a or ""), str(b or ""))
        for label, a, b in (
            ("state", left.state, right.state),
            ("infra_outcome", lrun.get("infra_outcome"), rrun.get("infra_outcome")),
            ("results_status", left.results_status, right.results_status),
            ("ml_outcome", left.ml_outcome, right.ml_outcome),
            ("notes", (lrun.get("results_final") or {}).get("notes"), (rrun.get("results_final") or {}).get("notes")),
        )
    )
    return CompareView(
        workspace=workspace, left=left, right=right,
        config_changes=tuple(config_changes(lrun.get("config"), rrun.get("config"))),
        metric_deltas=tuple(deltas), code_summary=code_summary, code_diff=code_diff, outcomes=outcomes,
    )
