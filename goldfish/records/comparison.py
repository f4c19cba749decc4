"""How a finalized result compares: with the previous run of the stage, with the best (or the
results_spec's baseline_run), and which config keys changed. Deltas are signed so positive means better.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import orjson

from goldfish.errors import GoldfishError
from goldfish.records.models import BestComparison, Comparison, PreviousComparison
from goldfish.records.refs import is_best_tag, part, primary_metric, resolve_record
from goldfish.records.results_spec import FinalResults, compare_values
from goldfish.records.roles import RESULT, role_of

if TYPE_CHECKING:
    from goldfish.project import Project

SHOWN_CHARS = 50


def shown(value: Any) -> Any:
    """A config value as shown in a diff: short scalars as they are, anything else as text cut to 50."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def flatten(config: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (``compute.profile``); lists stay values."""
    out: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """``{key: [old, new]}`` for the keys whose value changed (absent = null)."""
    before, after = flatten(old), flatten(new)
    diff: dict[str, list[Any]] = {}
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a != b or type(a) is not type(b):
            diff[key] = [shown(a), shown(b)]
    return diff


def current_best(project: Project, workspace: str) -> tuple[str, dict[str, Any], dict[str, Any], str] | None:
    """(tag, record, run, tagged_at) of the most recently created best/best-* tag on a finalized result
    with a value (a tag on a supporting stage or a value-less result names no best)."""
    store = project.store
    tags = [t for t in store.table("tags", part(workspace)).iter_raw()
            if t.get("record_id") and is_best_tag(str(t["id"]))]
    tags.sort(key=lambda t: (str(t.get("created_at") or ""), str(t["id"])), reverse=True)
    records = store.table("records", part(workspace))
    runs = store.table("runs", part(workspace))
    for tag in tags:
        record = records.get_doc(str(tag["record_id"]))
        run = runs.get_doc(str(record.get("stage_run_id") or "")) if record else None
        if (record is not None and run is not None and run.get("results_status") == "finalized"
                and role_of(run) == RESULT and _number((run.get("results_final") or {}).get("value"))):
            return str(tag["id"]), record, run, str(tag.get("created_at") or "")
    return None


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _delta(direction: str, value: float | None, metric: str, other_metric: str, other: float) -> float | None:
    if metric != other_metric or value is None:
        return None
    return compare_values(direction, value, other)  # type: ignore[arg-type]


def compare(project: Project, workspace: str, run: Mapping[str, Any], results: FinalResults,
            previous: Mapping[str, Any] | None) -> tuple[Comparison, list[str]]:
    """The comparison stored with a finalization (``previous``: the last finalized result with a value
    of the same stage created before this one), and warnings about targets that could not be used."""
    warnings: list[str] = []
    metric, value, direction = results.primary_metric, results.value, results.direction
    comparison = Comparison()
    if previous is not None:
        final = previous.get("results_final") or {}
        prev_value = final.get("value")
        if isinstance(prev_value, (int, float)) and not isinstance(prev_value, bool):
            prev_metric = str(final.get("primary_metric"))
            comparison.vs_previous = PreviousComparison(
                record_id=str(previous.get("record_id")), stage_run_id=str(previous["id"]),
                primary_metric=prev_metric, value=float(prev_value),
                delta=_delta(direction, value, metric, prev_metric, float(prev_value)),
            )
        comparison.config_diff = config_diff(previous.get("config"), run.get("config"))
    comparison.vs_best = _vs_best(project, workspace, run, results, warnings)
    return comparison, warnings


def _vs_best(project: Project, workspace: str, run: Mapping[str, Any], results: FinalResults,
             warnings: list[str]) -> BestComparison | None:
    spec = run.get("results_spec") or {}
    baseline = spec.get("baseline_run")
    tag: str | None
    via: Literal["baseline_run", "best_tag"]
    if baseline:
        try:
            target = resolve_record(project, baseline, workspace)
        except GoldfishError as exc:
            warnings.append(f"results_spec.baseline_run {baseline!r} could not be compared: {exc.message}")
            return None
        if target.run is None:
            warnings.append(f"results_spec.baseline_run {baseline!r} is a checkpoint record, which has no results.")
            return None
        tag, target_run, via = target.tag, target.run, "baseline_run"
    else:
        best = current_best(project, workspace)
        if best is None:
            return None
        tag, _, target_run, _ = best
        via = "best_tag"
    if target_run.get("id") == run.get("id"):
        return None
    found = primary_metric(target_run)
    if found is None or found[1] is None:
        warnings.append(f"{via} {target_run['id']} has no value for its primary metric; vs_best left out.")
        return None
    other_metric, other_value, source = found
    if source == "auto":
        warnings.append(f"{via} {target_run['id']} is not finalized; vs_best uses its auto value.")
    assert other_value is not None
    return BestComparison(
        record_id=str(target_run.get("record_id")), stage_run_id=str(target_run["id"]), tag=tag,
        via=via, primary_metric=other_metric, value=other_value,
        delta=_delta(results.direction, results.value, results.primary_metric, other_metric, other_value),
    )
