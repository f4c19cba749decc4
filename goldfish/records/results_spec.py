"""What a run is trying to achieve (results_spec), what it achieved (finalize results), and why it ran.

run() requires a results_spec and a reason; finalize_run() requires the final results. All three
are agent-written documents, so they are checked strictly and every problem is reported at once.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from goldfish.errors import InvalidInput
from goldfish.fielderrors import FieldErrors, is_int, is_number, join_path, show, suggest, type_name

Direction = Literal["maximize", "minimize"]
DatasetSplit = Literal["train", "val", "test", "other"]
MlOutcome = Literal["success", "partial", "miss", "unknown"]
InfraOutcome = Literal["completed", "preempted", "crashed", "canceled", "unknown"]

DIRECTIONS: tuple[str, ...] = ("maximize", "minimize")
DATASET_SPLITS: tuple[str, ...] = ("train", "val", "test", "other")
ML_OUTCOMES: tuple[str, ...] = ("success", "partial", "miss", "unknown")
INFRA_OUTCOMES: tuple[str, ...] = ("completed", "preempted", "crashed", "canceled", "unknown")

MIN_CONTEXT = 15
MIN_NOTES = 15
MIN_REASON = 15
# Upper bounds of the agent-written text (characters): every answer that shows them stays small.
MAX_CONTEXT = 4000
MAX_NOTES = 8000
MAX_NAME = 256  # metric names, units, the result stage, baseline_run
MAX_CAVEAT = 1000
MAX_LIST = 100  # secondary_metrics, known_caveats
REASON_LIMITS: dict[str, int] = {
    "description": 500,
    "hypothesis": 1000,
    "approach": 1000,
    "min_result": 500,
    "goal": 500,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ResultsSpec(_Strict):
    """Declared before a run: which metric decides, and what counts as good enough."""

    primary_metric: str = Field(description="Metric name the stage logs, e.g. dir_acc_binary")
    direction: Direction = Field(description="Whether larger (maximize) or smaller (minimize) is better")
    min_value: float = Field(description="Worst value still worth keeping (partial success)")
    goal_value: float = Field(description="Value that counts as success")
    dataset_split: DatasetSplit = Field(description="Split the metric is measured on")
    tolerance: float = Field(ge=0, description="Slack when comparing against goal_value")
    context: str = Field(description="What is being tried and why (≥15 characters)")
    secondary_metrics: list[str] = Field(default_factory=list, description="Other metrics worth recording")
    baseline_run: str | None = Field(default=None, description="@tag, record id or stage run id to compare with")
    failure_threshold: float | None = Field(default=None, description="Value beyond which the run is a clear failure")
    known_caveats: list[str] = Field(default_factory=list, description="Known limitations of this measurement")
    stage: str | None = Field(
        default=None, description="The result stage: the stage whose run carries the experiment's result (default: "
                                  "the last stage of the run that mentions primary_metric, else the last stage)")


class Termination(_Strict):
    infra_outcome: InfraOutcome = Field(description="How the run ended as the agent saw it (stored, not applied)")


class FinalResults(_Strict):
    """Authoritative results given to finalize_run()."""

    primary_metric: str = Field(description="Metric the outcome is judged on")
    direction: Direction = Field(description="maximize or minimize")
    value: float | None = Field(
        description="Final value of primary_metric; null only for a run that produced none (crashed, preempted, or "
                    "never logged it), with ml_outcome miss or unknown")
    dataset_split: DatasetSplit = Field(description="Split the value was measured on")
    ml_outcome: MlOutcome = Field(description="success, partial, miss or unknown")
    notes: str = Field(description="What happened and why the outcome is what it is (≥15 characters)")
    unit: str | None = Field(default=None, description="Unit of value, e.g. %")
    step: int | None = Field(default=None, ge=0, description="Training step the value comes from")
    epoch: int | None = Field(default=None, ge=0, description="Epoch the value comes from")
    secondary: dict[str, float] = Field(default_factory=dict, description="Other metric name → value")
    termination: Termination | None = Field(default=None, description="Agent's view of how the run ended")


class RunReason(_Strict):
    """Why a run was started; a plain-string reason becomes the description."""

    description: str = Field(max_length=REASON_LIMITS["description"], description="What this run does")
    hypothesis: str | None = Field(default=None, max_length=REASON_LIMITS["hypothesis"],
                                   description="What is expected to happen")
    approach: str | None = Field(default=None, max_length=REASON_LIMITS["approach"], description="How")
    min_result: str | None = Field(default=None, max_length=REASON_LIMITS["min_result"],
                                   description="Least result that makes the run worthwhile")
    goal: str | None = Field(default=None, max_length=REASON_LIMITS["goal"], description="Hoped-for result")

    @property
    def summary(self) -> str:
        if self.hypothesis:
            return f"{self.description} | H: {self.hypothesis}"
        return self.description


# --------------------------------------------------------------------------- results_spec

_SPEC_REQUIRED = ("primary_metric", "direction", "min_value", "goal_value", "dataset_split", "tolerance", "context")
_SPEC_OPTIONAL = ("secondary_metrics", "baseline_run", "failure_threshold", "known_caveats", "stage")
_SPEC_EXAMPLE: dict[str, Any] = {
    "primary_metric": "val_accuracy", "direction": "maximize", "min_value": 0.8, "goal_value": 0.9,
    "dataset_split": "val", "tolerance": 0.005,
    "context": "What is measured, on which rows, and why these thresholds.",
}
_SPEC_FIX = (
    "Pass results_spec with every required key, e.g. {example}; "
    "optional: secondary_metrics [names], baseline_run (@tag or run id, or null), failure_threshold (number), "
    "known_caveats [text], stage (the result stage, when it is not the last stage that logs primary_metric). "
    "Numbers must be finite and not booleans."
)


def spec_example(given: object = None) -> str:
    """An example results_spec as JSON: the well-formed parts of ``given`` (the caller's own spec, or an
    earlier run's) over neutral defaults, so the example reads like the caller's experiment."""
    example = dict(_SPEC_EXAMPLE)
    if isinstance(given, dict):
        for key, default in _SPEC_EXAMPLE.items():
            value = given.get(key)
            if key == "direction":
                ok = value in DIRECTIONS
            elif key == "dataset_split":
                ok = value in DATASET_SPLITS
            elif isinstance(default, str):
                ok = isinstance(value, str) and bool(value.strip())
            else:
                ok = is_number(value) and math.isfinite(value) and (key != "tolerance" or value >= 0)
            if ok:
                example[key] = value
        low, goal = example["min_value"], example["goal_value"]
        if (example["direction"] == "maximize") == (goal < low):
            example["min_value"], example["goal_value"] = goal, low
    return json.dumps(example)


def validate_results_spec(obj: object, like: object = None) -> ResultsSpec:
    """Check a results_spec; raise one InvalidInput listing every problem. The fix's example is built
    from ``obj`` itself, else from ``like`` (e.g. the workspace's previous spec)."""
    errors = FieldErrors("results_spec")
    doc = _as_object(obj, "results_spec", errors, "run() needs one to judge the run later")
    if doc is not None:
        errors.exact_keys(doc, "", _SPEC_REQUIRED, _SPEC_OPTIONAL)
        _text(doc, "primary_metric", errors, max_length=MAX_NAME)
        _choice(doc, "direction", DIRECTIONS, errors)
        _number(doc, "min_value", errors)
        _number(doc, "goal_value", errors)
        _choice(doc, "dataset_split", DATASET_SPLITS, errors)
        _number(doc, "tolerance", errors, minimum=0)
        _text(doc, "context", errors, min_length=MIN_CONTEXT, max_length=MAX_CONTEXT)
        _text_list(doc, "secondary_metrics", errors, max_length=MAX_NAME)
        _text(doc, "baseline_run", errors, optional=True, max_length=MAX_NAME)
        _number(doc, "failure_threshold", errors, optional=True)
        _text_list(doc, "known_caveats", errors, max_length=MAX_CAVEAT)
        _text(doc, "stage", errors, optional=True, max_length=MAX_NAME)
        _check_goal_order(doc, errors)
    if errors.count:
        base = obj if isinstance(obj, dict) and any(k in obj for k in _SPEC_EXAMPLE) else like
        errors.raise_if_any(_SPEC_FIX.format(example=spec_example(base)))
    return ResultsSpec.model_validate(_present(doc or {}))


def _check_goal_order(obj: dict[str, Any], errors: FieldErrors) -> None:
    direction, low, goal = obj.get("direction"), obj.get("min_value"), obj.get("goal_value")
    if direction not in DIRECTIONS or not is_number(low) or not is_number(goal):
        return
    if direction == "maximize" and goal < low:
        errors.add("goal_value", f"{goal} is below min_value {low}, but direction is maximize; the goal must be "
                                 "at least min_value (swap them, or use direction minimize)")
    elif direction == "minimize" and goal > low:
        errors.add("goal_value", f"{goal} is above min_value {low}, but direction is minimize; the goal must be "
                                 "at most min_value (swap them, or use direction maximize)")


# --------------------------------------------------------------------------- finalize results

_FINAL_REQUIRED = ("primary_metric", "direction", "value", "dataset_split", "ml_outcome", "notes")
_FINAL_OPTIONAL = ("unit", "step", "epoch", "secondary", "termination")
_FINAL_FIX = (
    "Pass results with every required key, e.g. {example}; value may be null (with ml_outcome miss or unknown) "
    "for a run that produced no value (crashed, preempted, never logged the metric); optional: unit, step, epoch (integers ≥ 0), "
    "secondary {{metric: number}}, termination {{\"infra_outcome\": \"completed|preempted|crashed|canceled|unknown\"}}. "
    "Numbers must be finite and not booleans."
)
_FINAL_EXAMPLE = ('{"primary_metric": "val_accuracy", "direction": "maximize", "value": 0.874, "dataset_split": "val", '
                  '"ml_outcome": "partial", "notes": "Past min_value, short of the goal; judged on the last epoch."}')


def validate_final_results(obj: object, example: str | None = None) -> FinalResults:
    """Check finalize_run() results; raise one InvalidInput listing every problem. ``example``: the
    results this run's own spec calls for (JSON), shown in the fix."""
    errors = FieldErrors("results")
    doc = _as_object(obj, "results", errors, "finalize_run() records them as the authoritative outcome")
    if doc is not None:
        errors.exact_keys(doc, "", _FINAL_REQUIRED, _FINAL_OPTIONAL)
        _text(doc, "primary_metric", errors, max_length=MAX_NAME)
        _choice(doc, "direction", DIRECTIONS, errors)
        _number(doc, "value", errors, optional=True)
        _choice(doc, "dataset_split", DATASET_SPLITS, errors)
        _choice(doc, "ml_outcome", ML_OUTCOMES, errors)
        if doc.get("value", 0) is None and doc.get("ml_outcome") not in (None, "miss", "unknown"):
            errors.add("ml_outcome", f"must be miss or unknown when value is null (no result to call "
                                     f"{show(doc.get('ml_outcome'))})")
        _text(doc, "notes", errors, min_length=MIN_NOTES, max_length=MAX_NOTES)
        _text(doc, "unit", errors, optional=True, max_length=MAX_NAME)
        _count(doc, "step", errors)
        _count(doc, "epoch", errors)
        _secondary(doc, errors)
        _termination(doc, errors)
    if errors.count:
        errors.raise_if_any(_FINAL_FIX.format(example=example or _FINAL_EXAMPLE))
    return FinalResults.model_validate({**_present(doc or {}), "value": (doc or {}).get("value")})


def _count(obj: dict[str, Any], key: str, errors: FieldErrors) -> None:
    value = obj.get(key)
    if value is not None and (not is_int(value) or value < 0):
        errors.add(key, f"must be an integer ≥ 0 (or null), got {type_name(value)} {show(value)}")


def _secondary(obj: dict[str, Any], errors: FieldErrors) -> None:
    value = obj.get("secondary")
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add("secondary", f"must be an object mapping metric name → number, got {type_name(value)}")
        return
    for name, number in value.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            errors.add("secondary", f"metric names must be non-empty strings of at most {MAX_NAME} characters, "
                                    f"got {show(name)}")
        elif not is_number(number):
            errors.add(join_path("secondary", name), _not_number(number))


def _termination(obj: dict[str, Any], errors: FieldErrors) -> None:
    value = obj.get("termination")
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add("termination", f'must be an object {{"infra_outcome": ...}}, got {type_name(value)}')
        return
    errors.exact_keys(value, "termination", ("infra_outcome",))
    if "infra_outcome" in value and value["infra_outcome"] not in INFRA_OUTCOMES:
        errors.add("termination.infra_outcome", _not_choice(value["infra_outcome"], INFRA_OUTCOMES))


# --------------------------------------------------------------------------- run reason


def parse_run_reason(reason: object, min_length: int = MIN_REASON) -> RunReason:
    """A string (≥ min_length characters) or a RunReason object; anything else is refused."""
    example = ('reason="Halve the learning rate: the loss oscillates after epoch 10" or reason={"description": '
               '"Halve the learning rate", "hypothesis": "The loss stops oscillating and val_accuracy rises"}')
    limit = REASON_LIMITS["description"]
    if reason is None:
        raise InvalidInput("A reason is required for run().",
                           fix=f"Say why this run is worth doing (≥{min_length} characters): {example}.")
    if isinstance(reason, str):
        text = reason.strip()
        if len(text) < min_length:
            raise InvalidInput(f"reason is too short ({len(text)} characters, minimum {min_length}).",
                               fix=f"Say what the run tests and why: {example}.")
        if len(text) > limit:
            raise InvalidInput(f"reason is {len(text)} characters; the maximum is {limit}.",
                               fix="Keep the description short and move detail into the object form's "
                                   "hypothesis / approach / min_result / goal keys.")
        return RunReason(description=text)
    if not isinstance(reason, dict):
        raise InvalidInput(f"reason must be a string or an object, got {type_name(reason)}.", fix=f"Use {example}.")
    errors = FieldErrors("reason")
    errors.exact_keys(reason, "", ("description",), tuple(k for k in REASON_LIMITS if k != "description"))
    _text(reason, "description", errors, min_length=min_length)
    for key, most in REASON_LIMITS.items():
        value = reason.get(key)
        if key != "description":
            _text(reason, key, errors, optional=True)
        if isinstance(value, str) and len(value.strip()) > most:
            errors.add(key, f"is {len(value.strip())} characters; the maximum is {most}")
    errors.raise_if_any(f"Use {example}; only description is required.")
    return RunReason.model_validate(
        {k: v.strip() for k, v in reason.items() if isinstance(v, str)}
    )


# --------------------------------------------------------------------------- outcome helpers


def ml_outcome_hint(spec: ResultsSpec, value: float | None) -> MlOutcome:
    """Suggested outcome for a value: success within tolerance of the goal, partial past min_value, else miss."""
    if value is None:
        return "unknown"
    if math.isnan(value):
        return "miss"  # a NaN primary metric means the run diverged
    if spec.direction == "maximize":
        if value >= spec.goal_value - spec.tolerance:
            return "success"
        return "partial" if value >= spec.min_value else "miss"
    if value <= spec.goal_value + spec.tolerance:
        return "success"
    return "partial" if value <= spec.min_value else "miss"


def compare_values(direction: Direction, new: float, old: float) -> float:
    """Improvement of ``new`` over ``old``: positive is better whichever the direction."""
    if direction == "maximize":
        return new - old
    if direction == "minimize":
        return old - new
    raise InvalidInput(f"Unknown direction {show(direction)}.", fix="Use maximize or minimize.")


# --------------------------------------------------------------------------- field checks


def _as_object(obj: object, what: str, errors: FieldErrors, why: str) -> dict[str, Any] | None:
    if obj is None:
        errors.add(what, f"is required: {why}")
        return None
    if not isinstance(obj, dict):
        errors.add(what, f"must be a JSON object, got {type_name(obj)}")
        return None
    return obj


def _not_number(value: object) -> str:
    if isinstance(value, float):
        return f"must be a finite number, got {value!r}"
    return f"must be a number, got {type_name(value)} {show(value)}"


def _not_choice(value: object, choices: tuple[str, ...]) -> str:
    hint = suggest(value, choices)
    return f"must be one of {', '.join(choices)}, got {show(value)}" + (f".{hint}" if hint else "")


def _present(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop optional keys given as null, which mean "not given"."""
    return {k: v for k, v in obj.items() if v is not None}


def _number(obj: dict[str, Any], key: str, errors: FieldErrors, *, minimum: float | None = None,
            optional: bool = False) -> None:
    if key not in obj or (optional and obj[key] is None):
        return
    value = obj[key]
    if not is_number(value):
        errors.add(key, _not_number(value))
    elif minimum is not None and value < minimum:
        errors.add(key, f"must be ≥ {minimum:g}, got {value}")


def _choice(obj: dict[str, Any], key: str, choices: tuple[str, ...], errors: FieldErrors) -> None:
    if key in obj and obj[key] not in choices:
        errors.add(key, _not_choice(obj[key], choices))


def _text(obj: dict[str, Any], key: str, errors: FieldErrors, *, min_length: int = 1,
          optional: bool = False, max_length: int | None = None) -> None:
    if key not in obj or (optional and obj[key] is None):
        return
    value = obj[key]
    tail = " (or null)" if optional else ""
    if not isinstance(value, str):
        errors.add(key, f"must be a string{tail}, got {type_name(value)}")
    elif len(value.strip()) < min_length:
        if min_length == 1:
            errors.add(key, f"must not be empty{' (use null instead)' if optional else ''}")
        else:
            errors.add(key, f"is {len(value.strip())} characters; write at least {min_length}")
    elif max_length is not None and len(value) > max_length:
        errors.add(key, f"is {len(value):,} characters; the maximum is {max_length:,}")


def _text_list(obj: dict[str, Any], key: str, errors: FieldErrors, *, max_length: int) -> None:
    value = obj.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        errors.add(key, f"must be a list of strings, got {type_name(value)}")
        return
    if len(value) > MAX_LIST:
        errors.add(key, f"has {len(value):,} items; the maximum is {MAX_LIST}")
        return
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            errors.add(join_path(key, i), f"must be a non-empty string, got {show(item)}")
        elif len(item) > max_length:
            errors.add(join_path(key, i), f"is {len(item):,} characters; the maximum is {max_length:,}")
