"""finalize_run and the finalization queue (the gate's list).

Finalizing records the agent's judgement of a pipeline run's result: ``results_final``,
``ml_outcome`` (set nowhere else), who and when, and a comparison with the previous result and the
best. The result lives on the run's result stage (``goldfish.records.roles``); finalizing it (by
its stage run id, its record id or the ``prun-`` id) also settles the supporting stages as
``finalized (supporting prun-…)`` with no value of their own. A run still active is refused;
finalizing again keeps the earlier result in ``results_history``. A run that produced no value
(crashed, preempted, or it never logged the metric) is finalized with ``value: null`` and
ml_outcome miss or unknown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from goldfish import names
from goldfish.records.comparison import compare
from goldfish.errors import Conflict, GoldfishError, InvalidInput
from goldfish.runs.gate import BLOCKING_OUTCOMES, result_outcome
from goldfish.records.journal import audit, refresh_state_md
from goldfish.records.models import (
    FinalizedRun,
    FinalizeResult,
    NotFinalized,
    PreviousFinal,
    SupportingRun,
    UnfinalizedResult,
    UnfinalizedRun,
)
from goldfish.records.roles import RESULT, SUPPORTING, role_of
from goldfish.records.refs import locate_run, part, resolve_record
from goldfish.records.view import workspace_view
from goldfish.records.results_spec import FinalResults, ResultsSpec, ml_outcome_hint, validate_final_results
from goldfish.timefmt import age, now_iso

if TYPE_CHECKING:
    from goldfish.project import Project

TERMINAL = frozenset({"completed", "failed", "terminated", "canceled", "skipped"})


# ----------------------------------------------------------------------------- the queue


def unfinalized(project: Project, workspace: str) -> list[UnfinalizedRun]:
    """Results of ``workspace`` that block run() until finalized, oldest first."""
    view = workspace_view(project, workspace)
    out = []
    for run in view.blocking_oldest_first:
        record = view.record(str(run.get("record_id") or ""))
        supporting = [str(r.get("stage_run_id")) for r in view.supporting(record)] if record else []
        out.append(_queue_entry(run, supporting))
    return out


def queue_result(project: Project, workspace: str) -> UnfinalizedResult:
    runs = unfinalized(project, workspace)
    if runs:
        message = (f"{len(runs)} result(s) in {workspace} need finalize_run() before run() can start another: "
                   f"{', '.join(r.stage_run_id for r in runs[:5])}{' …' if len(runs) > 5 else ''}. Review each "
                   "(inspect_record(id, include=['results', 'comparison'])), then make its finalize_call with "
                   "your own value, outcome and notes; it settles the supporting stages of the same pipeline run.")
    else:
        message = f"Nothing to finalize in {workspace}; run() is not blocked by the finalization gate."
    return UnfinalizedResult(workspace=workspace, count=len(runs), runs=runs, message=message)


def _queue_entry(run: Mapping[str, Any], supporting: list[str] | None = None) -> UnfinalizedRun:
    return UnfinalizedRun(
        stage_run_id=str(run["id"]), record_id=run.get("record_id"), pipeline_run_id=run.get("pipeline_run_id"),
        stage=str(run.get("stage")), state=str(run.get("state")), infra_outcome=str(run.get("infra_outcome")),
        outcome=result_outcome(dict(run)), cause=run.get("cause"), results_auto=run.get("results_auto"),
        finished_at=run.get("finished_at"), age=age(run.get("finished_at") or run.get("created_at")),
        finalize_call=finalize_call(run), supporting=list(supporting or []),
    )


def finalize_call(run: Mapping[str, Any]) -> str:
    """The finalize_run(...) call for a run, filled from its spec and auto results (value null when
    the run produced none: nothing to invent)."""
    spec = run.get("results_spec") or {}
    auto = run.get("results_auto") or {}
    metric = spec.get("primary_metric") or auto.get("primary_metric")
    value = auto.get("value")
    outcome = auto.get("ml_outcome_hint")
    if outcome is None and spec and value is not None:
        outcome = ml_outcome_hint(ResultsSpec.model_validate(spec), float(value))
    ended = result_outcome(dict(run))
    if value is None:
        outcome = "miss" if ended in ("crashed", "preempted") else "unknown"
    body = {
        "primary_metric": metric or "<the metric you judge it on>",
        "direction": spec.get("direction") or auto.get("direction") or "<maximize|minimize>",
        "value": value,
        "dataset_split": spec.get("dataset_split") or auto.get("dataset_split") or "val",
        "ml_outcome": outcome or "unknown",
        "notes": "<what happened and why this outcome (at least 15 characters)>",
    }
    return f"finalize_run({json.dumps(run['id'])}, {json.dumps(body, ensure_ascii=False)})"


# ----------------------------------------------------------------------------- finalize


@dataclass
class Targets:
    workspace: str
    prun_id: str | None
    results: list[dict[str, Any]]  # result stage runs to finalize (one per pipeline run)
    supporting: list[dict[str, Any]] = field(default_factory=list)  # settled with them, no value
    left: list[NotFinalized] = field(default_factory=list)


def _pipeline_docs(project: Project, workspace: str, prun_id: str) -> list[dict[str, Any]]:
    prun = project.store.table("pipeline_runs", part(workspace)).require(prun_id, what="pipeline run")
    runs = project.store.table("runs", part(workspace))
    return [runs.require(rid, what="stage run") for rid in (prun.get("stage_runs") or {}).values()]


def _split(docs: list[dict[str, Any]], results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[NotFinalized]]:
    """(supporting runs to settle, runs left alone) among the other stage runs of a pipeline run."""
    chosen = {r["id"] for r in results}
    supporting = [d for d in docs if d["id"] not in chosen and role_of(d) == SUPPORTING
                  and d.get("infra_outcome") in BLOCKING_OUTCOMES]
    taken = chosen | {d["id"] for d in supporting}
    left = [NotFinalized(stage_run_id=d["id"], stage=str(d.get("stage")), state=str(d.get("state")),
                         infra_outcome=d.get("infra_outcome"),
                         why=f"{d.get('infra_outcome')}: nothing ran to judge; finalize it by its own id if you want "
                             "a result recorded" if role_of(d) == RESULT else
                             f"{d.get('infra_outcome')}: a supporting stage that never ran")
            for d in docs if d["id"] not in taken]
    return supporting, left


def _targets(project: Project, ref: object) -> Targets:
    if isinstance(ref, str) and names.PIPELINE_RUN_RE.fullmatch(ref.strip()):
        prun_id = ref.strip()
        workspace, _ = locate_run(project, prun_id)
        docs = _pipeline_docs(project, workspace, prun_id)
        _refuse_active(docs)
        results = [d for d in docs if role_of(d) == RESULT and result_outcome(d) in BLOCKING_OUTCOMES]
        if not results:
            raise Conflict(f"{prun_id} has no result to finalize: its result stage was canceled, blocked or skipped "
                           "before anything ran that needs judging.",
                           fix="Nothing blocks run(); to record a result anyway, finalize its result stage run by its id.")
        supporting, left = _split(docs, results)
        return Targets(workspace, prun_id, results, supporting, left)
    found = resolve_record(project, ref)
    if found.run is None:
        raise InvalidInput(f"Record {found.record_id} is a checkpoint ({found.record.get('version')}); only run "
                           "records have results to finalize.",
                           fix="Pass a stage run id or a run record id (list_history(workspace, record_type='run')).")
    run = found.run
    prun_ref = run.get("pipeline_run_id")
    stored = project.store.table("pipeline_runs", part(found.workspace)).has(str(prun_ref)) if prun_ref else False
    docs = _pipeline_docs(project, found.workspace, str(prun_ref)) if stored else [run]
    _refuse_active([run])
    if role_of(run) == SUPPORTING:
        result = next((d for d in docs if role_of(d) == RESULT), None)
        target = f"its result stage {result.get('stage')} ({result['id']})" if result else "its result stage"
        raise InvalidInput(
            f"{run['id']} ({run.get('stage')}) is a supporting stage of {prun_ref}: the pipeline run's result is on "
            f"{target}, and supporting stages carry no value of their own.",
            fix=f"finalize_run({(result or {}).get('id') or prun_ref!r}, results) or finalize_run({prun_ref!r}, results):"
                " it settles this stage as supporting.")
    _refuse_active(docs)
    supporting, _ = _split(docs, [run])
    return Targets(found.workspace, None, [run], supporting, [])


def _refuse_active(runs: list[dict[str, Any]]) -> None:
    active = [r for r in runs if r.get("state") not in TERMINAL]
    if active:
        shown = ", ".join(f"{r['id']} ({r.get('stage')}, {r.get('state')})" for r in active)
        first = active[0]["id"]
        raise Conflict(
            f"Cannot finalize while still active: {shown}. Results are judged once a run has ended.",
            fix=f"Wait for it: inspect_run('{first}') / logs('{first}', follow=True) show progress; or cancel it with "
                f"cancel('{first}', reason). Then finalize.",
        )


def _check_spec(runs: list[dict[str, Any]], final: FinalResults) -> None:
    problems: list[str] = []
    for run in runs:
        spec = run.get("results_spec") or {}
        metric, direction = spec.get("primary_metric"), spec.get("direction")
        if metric is not None and metric != final.primary_metric:
            problems.append(f"{run['id']}: results.primary_metric is {final.primary_metric!r} but its results_spec "
                            f"declared {metric!r}")
        if direction is not None and direction != final.direction:
            problems.append(f"{run['id']}: results.direction is {final.direction!r} but its results_spec declared "
                            f"{direction!r}")
    if problems:
        spec = runs[0].get("results_spec") or {}
        raise InvalidInput(
            "The results do not match the run's results_spec: " + "; ".join(problems) + ".",
            fix=f"Judge the run on the metric it declared: primary_metric={spec.get('primary_metric')!r}, "
                f"direction={spec.get('direction')!r} (report other metrics under results.secondary).",
            details={"problems": problems},
        )


def _check_value(runs: list[dict[str, Any]], final: FinalResults) -> None:
    """A null value only for a run that produced none; never for one that logged the metric."""
    if final.value is not None:
        return
    logged = []
    for run in runs:
        auto = run.get("results_auto") or {}
        value = auto.get("value")
        if result_outcome(run) == "completed" and isinstance(value, (int, float)) and not isinstance(value, bool):
            logged.append(f"{run['id']} completed and logged {auto.get('primary_metric')}={value:g}")
    if logged:
        raise InvalidInput(
            "value is null, but " + "; ".join(logged) + ".",
            fix="Pass the value you judge it on (the logged one, or your own evaluation); null is for a run that "
                "produced no value (crashed, preempted, or never logged the metric).")


def _warnings(run: dict[str, Any], final: FinalResults) -> tuple[list[str], str | None]:
    warnings: list[str] = []
    hint: str | None = None
    spec_doc = run.get("results_spec")
    if final.value is None:
        return warnings, None
    if spec_doc:
        spec = ResultsSpec.model_validate(spec_doc)
        hint = ml_outcome_hint(spec, final.value)
        clash = outcome_contradiction(spec, final.ml_outcome, final.value)
        if clash:
            warnings.append(f"{run['id']}: ml_outcome {final.ml_outcome!r} contradicts the results_spec: {clash}. "
                            f"The thresholds suggest {hint!r}; re-finalize if that was a slip, otherwise the notes "
                            "should say why.")
        if spec.dataset_split != final.dataset_split:
            warnings.append(f"{run['id']}: measured on {final.dataset_split!r}, but the results_spec declared "
                            f"{spec.dataset_split!r}; comparisons with other runs may not be like for like.")
    logged = _logged_value(run, final.primary_metric)
    if logged is None:
        if result_outcome(run) == "completed":
            warnings.append(f"{run['id']}: the run never logged {final.primary_metric}; you recorded {final.value!r}. "
                            "Fine if it comes from your own evaluation: say how in the notes.")
    elif not within_printed_precision(logged, final.value):
        warnings.append(f"{run['id']}: you recorded {final.primary_metric}={final.value!r}, which differs from what "
                        f"the run logged last ({logged!r}). Fine if you evaluated differently, otherwise check for "
                        "a typo.")
    return warnings, hint


def _own_example(project: Project, ref: object) -> str | None:
    """The results this run's own results_spec calls for, as JSON (for the fix of a bad call)."""
    try:
        run = _targets(project, ref).results[0]
    except (GoldfishError, IndexError):
        return None
    spec_doc = run.get("results_spec") or {}
    try:
        spec = ResultsSpec.model_validate(spec_doc)
    except ValueError:
        return None
    value = _logged_value(run, spec.primary_metric)
    example = {
        "primary_metric": spec.primary_metric, "direction": spec.direction,
        "value": value if value is not None and math.isfinite(value) else spec.goal_value,
        "dataset_split": spec.dataset_split,
        "ml_outcome": ml_outcome_hint(spec, value if value is not None else spec.goal_value),
        "notes": "What the value says about the hypothesis, and how it was judged.",
    }
    return json.dumps(example)


def _logged_value(run: Mapping[str, Any], metric: str) -> float | None:
    auto = run.get("results_auto") or {}
    value = auto.get("value")
    if auto.get("primary_metric") != metric or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def within_printed_precision(logged: float, value: float) -> bool:
    """True when ``value`` is ``logged`` rounded to the digits ``value`` is written with (0.8123 for
    0.81234567): a rounding, not a different value."""
    if not (math.isfinite(logged) and math.isfinite(value)):
        return logged == value or (math.isnan(logged) and math.isnan(value))
    exponent = Decimal(repr(value)).as_tuple().exponent
    step = 10.0 ** exponent if isinstance(exponent, int) else 0.0
    return abs(logged - value) <= step / 2 + 1e-12 * max(1.0, abs(value))


def outcome_contradiction(spec: ResultsSpec, outcome: str, value: float) -> str | None:
    """Why ``outcome`` contradicts the results_spec's min_value / goal_value for ``value``, or None."""
    if math.isnan(value):
        return None if outcome in ("miss", "unknown") else "the value is NaN (the run diverged)"
    up = spec.direction == "maximize"

    def reaches(target: float) -> bool:
        return value >= target if up else value <= target

    short = "below" if up else "above"
    past = "above" if up else "below"
    if outcome == "success" and not reaches(spec.goal_value):
        near = (f", within its tolerance {spec.tolerance:g}" if abs(value - spec.goal_value) <= spec.tolerance
                else "")
        return f"{value:g} is {short} goal_value {spec.goal_value:g} ({spec.direction}){near}"
    if outcome == "partial" and not reaches(spec.min_value):
        return f"{value:g} is {short} min_value {spec.min_value:g} ({spec.direction})"
    if outcome in ("partial", "miss") and reaches(spec.goal_value):
        return f"{value:g} reaches goal_value {spec.goal_value:g} ({spec.direction})"
    if outcome == "miss" and reaches(spec.min_value):
        return f"{value:g} is {past} min_value {spec.min_value:g} ({spec.direction})"
    return None


def finalize_run(project: Project, record_or_run_id: object, results: object) -> FinalizeResult:
    """Validate, then record ``results`` on the pipeline run's result (its supporting stages settled)."""
    try:
        final = validate_final_results(results)
    except InvalidInput:
        validate_final_results(results, example=_own_example(project, record_or_run_id))
        raise
    targets = _targets(project, record_or_run_id)
    workspace = targets.workspace
    _check_spec(targets.results, final)
    _check_value(targets.results, final)
    warnings: list[str] = []
    hint: str | None = None
    for run in targets.results:
        more, hint = _warnings(run, final)
        warnings += more
    finalized: list[FinalizedRun] = []
    settled: list[SupportingRun] = []
    now = now_iso()
    final_doc = final.model_dump(mode="json", exclude_none=True)
    final_doc["value"] = final.value  # null is an answer ("no value"), not a missing key
    with project.store.transaction() as tx:
        runs = tx.table("runs", part(workspace))
        current = [runs.require(r["id"], what="stage run") for r in targets.results]
        support = [runs.require(r["id"], what="stage run") for r in targets.supporting]
        _refuse_active(current + support)  # it cannot have become active again, but never trust a stale read
        # The lock is held and nothing is patched yet: the committed view is the current state.
        view = workspace_view(project, workspace)
        done = {r["id"] for r in current}
        remaining = [rid for rid in view.blocking_ids() if rid not in done]
        for run in current:
            comparison, notes = compare(project, workspace, run, final, view.previous_result(run))
            warnings += notes
            previous = None
            history = list(run.get("results_history") or [])
            if run.get("results_status") == "finalized" and run.get("results_final"):
                previous = PreviousFinal(results=run["results_final"], ml_outcome=str(run.get("ml_outcome")),
                                         finalized_at=run.get("finalized_at"), finalized_by=run.get("finalized_by"))
                history.append({**previous.model_dump(), "comparison": run.get("comparison")})
            runs.patch(run["id"], {
                "results_final": final_doc, "ml_outcome": final.ml_outcome, "results_status": "finalized",
                "finalized_at": now, "finalized_by": project.source,
                "comparison": comparison.model_dump(mode="json"), "results_history": history,
            })
            finalized.append(FinalizedRun(
                record_id=str(run.get("record_id")), stage_run_id=run["id"], workspace=workspace,
                stage=str(run.get("stage")), ml_outcome=final.ml_outcome, value=final.value, comparison=comparison,
                refinalized=previous is not None, previous=previous,
            ))
        prun_of = {r["id"]: str(r.get("pipeline_run_id") or "") for r in current}
        for run in support:
            prun = str(run.get("pipeline_run_id") or "")
            result_id = next((rid for rid, p in prun_of.items() if p == prun), None)
            runs.patch(run["id"], supporting_patch(run, prun, result_id, now, project.source))
            settled.append(SupportingRun(stage_run_id=run["id"], record_id=run.get("record_id"),
                                         stage=str(run.get("stage")), infra_outcome=run.get("infra_outcome"),
                                         supporting=prun))
        audit(tx, project, "finalize_run", workspace=workspace, reason=final.notes, details={
            "ref": record_or_run_id, "stage_runs": [f.stage_run_id for f in finalized],
            "supporting": [s.stage_run_id for s in settled],
            "ml_outcome": final.ml_outcome, "primary_metric": final.primary_metric, "value": final.value,
            "refinalized": [f.stage_run_id for f in finalized if f.refinalized],
        })
        refresh_state_md(tx, project)
    return _result(workspace, targets.prun_id, finalized, settled, targets.left, warnings, hint, remaining)


def supporting_patch(run: Mapping[str, Any], prun_id: str, result_run_id: str | None, now: str,
                     source: str) -> dict[str, Any]:
    """The fields of a supporting stage run settled with its pipeline run's result: finalized, no value.
    A value it carried before (an earlier finalization) moves to ``results_history``."""
    history = list(run.get("results_history") or [])
    if run.get("results_final"):
        history.append({"results": run["results_final"], "ml_outcome": run.get("ml_outcome"),
                        "finalized_at": run.get("finalized_at"), "finalized_by": run.get("finalized_by"),
                        "comparison": run.get("comparison")})
    return {"results_status": "finalized", "results_final": None, "ml_outcome": "unknown", "comparison": None,
            "finalized_at": now, "finalized_by": source, "results_history": history,
            "supporting": prun_id, "result_run_id": result_run_id}


def _result(workspace: str, prun_id: str | None, finalized: list[FinalizedRun], settled: list[SupportingRun],
            left: list[NotFinalized], warnings: list[str], hint: str | None, remaining: list[str]) -> FinalizeResult:
    one = finalized[0] if len(finalized) == 1 else None
    what = ", ".join(f"{f.stage_run_id} ({f.stage})" for f in finalized)
    value = ""
    if one is not None:
        value = f" = {one.value:g}" if one.value is not None else " with no value"
    again = " (re-finalized; the earlier result is kept in results_history)" if any(f.refinalized for f in finalized) else ""
    support = (f" Supporting stages settled with it (no value of their own): "
               f"{', '.join(f'{s.stage_run_id} ({s.stage})' for s in settled)}." if settled else "")
    gate = (f" Still unfinalized in {workspace}: {', '.join(remaining[:5])}." if remaining
            else f" The finalization gate of {workspace} is clear.")
    return FinalizeResult(
        record_id=one.record_id if one else None, stage_run_id=one.stage_run_id if one else None,
        pipeline_run_id=prun_id, ml_outcome=finalized[0].ml_outcome, comparison=one.comparison if one else None,
        refinalized=any(f.refinalized for f in finalized), previous=one.previous if one else None,
        runs=finalized, supporting=settled, not_finalized=left, outcome_hint=hint, warnings=warnings,
        unfinalized_remaining=remaining,
        message=f"Finalized {what} as {finalized[0].ml_outcome}{value}{again}.{support}{gate}",
    )
