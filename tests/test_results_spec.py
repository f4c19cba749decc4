"""results_spec, finalize results and run reasons: the seed's examples pass; every bad field is named."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goldfish.errors import InvalidInput
from goldfish.records.results_spec import (
    FinalResults,
    ResultsSpec,
    RunReason,
    compare_values,
    ml_outcome_hint,
    parse_run_reason,
    validate_final_results,
    validate_results_spec,
)

Doc = dict[str, Any]

# --------------------------------------------------------------------------- seed examples
# Verbatim from "Starting a New Experiment" in the Goldfish skill.

SEED_REASON = {
    "description": "Baseline LSTM training",
    "hypothesis": "LSTM should achieve 85%+ accuracy",
}
SEED_SPEC = {
    "primary_metric": "dir_acc_binary",
    "direction": "maximize",
    "min_value": 0.60,
    "goal_value": 0.63,
    "dataset_split": "val",
    "tolerance": 0.003,
    "context": "Baseline LSTM, 25M params. Focus on directional accuracy.",
}
SEED_FINAL = {
    "primary_metric": "dir_acc_binary",
    "direction": "maximize",
    "value": 0.631,
    "dataset_split": "val",
    "ml_outcome": "success",
    "notes": "Achieved target; preempted but results are valid.",
}


def test_seed_run_example() -> None:
    reason = parse_run_reason(copy.deepcopy(SEED_REASON))
    assert reason.summary == "Baseline LSTM training | H: LSTM should achieve 85%+ accuracy"
    spec = validate_results_spec(copy.deepcopy(SEED_SPEC))
    assert spec.model_dump(exclude_defaults=True) == SEED_SPEC
    assert spec.secondary_metrics == [] and spec.baseline_run is None


def test_seed_finalize_example() -> None:
    results = validate_final_results(copy.deepcopy(SEED_FINAL))
    assert results.model_dump(exclude_defaults=True) == SEED_FINAL
    # The seed's 0.631 against its own spec is the success it reports.
    assert ml_outcome_hint(validate_results_spec(SEED_SPEC), results.value) == "success"


# --------------------------------------------------------------------------- helpers


def errors_of(fn: Any, obj: object) -> InvalidInput:
    before = copy.deepcopy(obj)
    with pytest.raises(InvalidInput) as info:
        fn(obj)
    assert obj == before  # never modified (a NaN compares equal to itself by identity here)
    err = info.value
    count = err.details["error_count"]
    assert err.message.startswith(f"{count} validation error{'s' if count != 1 else ''}: ")
    assert err.fix
    return err


def fields(err: InvalidInput) -> list[str]:
    return [e["field"] for e in err.details["errors"]]


# --------------------------------------------------------------------------- generated documents

FINITE = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
TEXT15 = st.text(min_size=15, max_size=120).filter(lambda s: len(s.strip()) >= 15)
NONBLANK = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() != "")


@st.composite
def specs(draw: st.DrawFn) -> Doc:
    direction = draw(st.sampled_from(["maximize", "minimize"]))
    low, goal = sorted([draw(FINITE), draw(FINITE)])
    if direction == "minimize":
        low, goal = goal, low
    spec: Doc = {
        "primary_metric": draw(NONBLANK),
        "direction": direction,
        "min_value": low,
        "goal_value": goal,
        "dataset_split": draw(st.sampled_from(["train", "val", "test", "other"])),
        "tolerance": draw(st.one_of(st.integers(0, 10), st.floats(0, 1))),
        "context": draw(TEXT15),
    }
    optional: Doc = {
        "secondary_metrics": draw(st.lists(NONBLANK, max_size=4)),
        "baseline_run": draw(st.one_of(st.none(), st.just("@best"), st.just("stage-1a2b3c4d"))),
        "failure_threshold": draw(FINITE),
        "known_caveats": draw(st.lists(NONBLANK, max_size=3)),
    }
    keys = draw(st.lists(st.sampled_from(sorted(optional)), unique=True))
    spec.update({k: optional[k] for k in keys})
    return spec


@st.composite
def finals(draw: st.DrawFn) -> Doc:
    results: Doc = {
        "primary_metric": draw(NONBLANK),
        "direction": draw(st.sampled_from(["maximize", "minimize"])),
        "value": draw(FINITE),
        "dataset_split": draw(st.sampled_from(["train", "val", "test", "other"])),
        "ml_outcome": draw(st.sampled_from(["success", "partial", "miss", "unknown"])),
        "notes": draw(TEXT15),
    }
    optional: Doc = {
        "unit": draw(st.one_of(st.none(), st.just("%"), st.just("nats"))),
        "step": draw(st.integers(0, 10**9)),
        "epoch": draw(st.integers(0, 1000)),
        "secondary": draw(st.dictionaries(NONBLANK, FINITE, max_size=4)),
        "termination": {"infra_outcome": draw(st.sampled_from(
            ["completed", "preempted", "crashed", "canceled", "unknown"]))},
    }
    keys = draw(st.lists(st.sampled_from(sorted(optional)), unique=True))
    results.update({k: optional[k] for k in keys})
    return results


@given(specs())
def test_valid_specs_are_accepted(spec: Doc) -> None:
    model = validate_results_spec(spec)
    assert isinstance(model, ResultsSpec)
    assert model.direction == spec["direction"] and model.context == spec["context"]
    assert model.min_value == spec["min_value"] and model.goal_value == spec["goal_value"]


@given(finals())
def test_valid_final_results_are_accepted(results: Doc) -> None:
    model = validate_final_results(results)
    assert isinstance(model, FinalResults)
    assert model.value == results["value"]
    if "termination" in results:
        assert model.termination is not None
        assert model.termination.infra_outcome == results["termination"]["infra_outcome"]


# --------------------------------------------------------------------------- field mutations

NOT_NUMBERS = [True, False, float("nan"), float("inf"), float("-inf"), "0.6", None, [0.6]]
NOT_TEXT = [None, 3, True, ["text"]]

SPEC_BREAKS: list[tuple[str, Any]] = [
    *[("primary_metric", v) for v in ["", "   ", *NOT_TEXT]],
    *[("direction", v) for v in ["max", "maximise", "MAXIMIZE", None, 1]],
    *[("min_value", v) for v in NOT_NUMBERS],
    *[("goal_value", v) for v in NOT_NUMBERS],
    *[("dataset_split", v) for v in ["validation", "dev", "", None]],
    *[("tolerance", v) for v in [*NOT_NUMBERS, -0.001, -1]],
    *[("context", v) for v in ["too short", " " * 20 + "short" + " " * 20, *NOT_TEXT]],
    *[("secondary_metrics", v) for v in ["loss", {"loss": 1}, 3]],
    *[("baseline_run", v) for v in ["", 5, ["@best"]]],
    *[("failure_threshold", v) for v in [v for v in NOT_NUMBERS if v is not None]],
    *[("known_caveats", v) for v in ["one caveat", 7]],
]
SPEC_ITEM_BREAKS: list[tuple[str, Any]] = [
    ("secondary_metrics", ""), ("secondary_metrics", 3), ("secondary_metrics", None),
    ("known_caveats", " "), ("known_caveats", False),
]


@pytest.mark.parametrize(("key", "value"), SPEC_BREAKS, ids=[f"{k}={v!r}" for k, v in SPEC_BREAKS])
@settings(max_examples=10)
@given(spec=specs())
def test_one_bad_spec_field_is_named(spec: Doc, key: str, value: Any) -> None:
    spec[key] = value
    err = errors_of(validate_results_spec, spec)
    assert fields(err) == [key], err.message
    assert f"{key}: " in err.message


@pytest.mark.parametrize(("key", "value"), SPEC_ITEM_BREAKS)
@given(spec=specs(), good=st.lists(NONBLANK, max_size=3), position=st.integers(0, 3))
@settings(max_examples=10)
def test_bad_list_item_is_named_by_index(spec: Doc, good: list[str], position: int, key: str, value: Any) -> None:
    position = min(position, len(good))
    spec[key] = [*good[:position], value, *good[position:]]
    assert fields(errors_of(validate_results_spec, spec)) == [f"{key}[{position}]"]


@pytest.mark.parametrize("key", ["primary_metric", "direction", "min_value", "goal_value", "dataset_split",
                                 "tolerance", "context"])
def test_each_required_spec_key(key: str) -> None:
    spec = copy.deepcopy(SEED_SPEC)
    del spec[key]
    err = errors_of(validate_results_spec, spec)
    assert fields(err) == [key]
    assert f"{key}: required key is missing" in err.message


@pytest.mark.parametrize(("key", "hint"), [
    ("goal", "goal_value"), ("primary-metric", "primary_metric"), ("split", "dataset_split"),
    ("tolerence", "tolerance"), ("secondary", "secondary_metrics"), ("caveats", "known_caveats"),
])
def test_unknown_spec_key_suggests(key: str, hint: str) -> None:
    spec = {**SEED_SPEC, key: 1}
    err = errors_of(validate_results_spec, spec)
    assert fields(err) == [key]
    assert f'Did you mean "{hint}"?' in err.message


def test_choice_suggests() -> None:
    err = errors_of(validate_results_spec, {**SEED_SPEC, "dataset_split": "validation", "direction": "maximise"})
    assert 'Did you mean "val"?' in err.message and 'Did you mean "maximize"?' in err.message


@settings(max_examples=60)
@given(spec=specs(), data=st.data())
def test_every_spec_error_is_listed_at_once(spec: Doc, data: st.DataObject) -> None:
    breaks = data.draw(st.lists(st.sampled_from(SPEC_BREAKS), min_size=2, max_size=6, unique_by=lambda b: b[0]))
    # goal_value vs min_value ordering only applies when both are numbers; keep it out of the picture.
    breaks = [b for b in breaks if b[0] not in ("min_value", "goal_value")] or breaks[:1]
    for key, value in breaks:
        spec[key] = value
    extra = data.draw(st.sampled_from(["extra", "notes", "goal"]))
    spec[extra] = 1
    err = errors_of(validate_results_spec, spec)
    assert sorted(fields(err)) == sorted([k for k, _ in breaks] + [extra])
    assert err.message.startswith(f"{len(breaks) + 1} validation errors: ")


@pytest.mark.parametrize(("direction", "low", "goal", "bad"), [
    ("maximize", 0.6, 0.5, True), ("maximize", 0.6, 0.6, False), ("maximize", -1, 0, False),
    ("minimize", 0.2, 0.3, True), ("minimize", 0.2, 0.2, False), ("minimize", 5, 1, False),
])
def test_goal_must_be_on_the_right_side_of_min(direction: str, low: float, goal: float, bad: bool) -> None:
    spec = {**SEED_SPEC, "direction": direction, "min_value": low, "goal_value": goal}
    if not bad:
        validate_results_spec(spec)
        return
    err = errors_of(validate_results_spec, spec)
    assert fields(err) == ["goal_value"]
    assert "swap them" in err.message and direction in err.message


@pytest.mark.parametrize("value", [None, "spec", ["a"], 3, True])
def test_spec_must_be_an_object(value: object) -> None:
    err = errors_of(validate_results_spec, value)
    assert fields(err) == ["results_spec"]
    assert '"primary_metric": "val_accuracy"' in (err.fix or "")  # a neutral example when nothing else is known


def test_spec_example_is_drawn_from_the_callers_own_spec() -> None:
    own = {"primary_metric": "val_r2", "direction": "minimize", "tolerance": -1, "context": "R^2 on held-out rows"}
    err = errors_of(validate_results_spec, own)
    example = json.loads((err.fix or "").split("e.g. ", 1)[1].split("; optional", 1)[0])
    assert example["primary_metric"] == "val_r2" and example["direction"] == "minimize"
    assert example["context"] == "R^2 on held-out rows" and example["tolerance"] >= 0
    assert example["goal_value"] <= example["min_value"]  # ordered for minimize
    earlier = {**own, "tolerance": 0.01, "min_value": 0.5, "goal_value": 0.2}
    err = errors_of(lambda obj: validate_results_spec(obj, like=earlier), "not an object")
    assert '"primary_metric": "val_r2"' in (err.fix or "") and '"goal_value": 0.2' in (err.fix or "")


def test_optional_nulls_mean_not_given() -> None:
    spec = validate_results_spec({**SEED_SPEC, "secondary_metrics": None, "baseline_run": None,
                                  "failure_threshold": None, "known_caveats": None})
    assert spec.secondary_metrics == [] and spec.failure_threshold is None
    results = validate_final_results({**SEED_FINAL, "unit": None, "step": None, "secondary": None,
                                      "termination": None})
    assert results.secondary == {} and results.termination is None


# --------------------------------------------------------------------------- finalize results

FINAL_BREAKS: list[tuple[str, Any]] = [
    *[("primary_metric", v) for v in ["", *NOT_TEXT]],
    *[("direction", v) for v in ["up", None]],
    *[("value", v) for v in NOT_NUMBERS if v is not None],  # null is "no value" (see test_null_value_*)
    *[("dataset_split", v) for v in ["holdout", 3]],
    *[("ml_outcome", v) for v in ["succeeded", "failure", "", None, True]],
    *[("notes", v) for v in ["ok", "      fine       ", *NOT_TEXT]],
    *[("unit", v) for v in ["", 3, ["%"]]],
    *[("step", v) for v in [-1, True, 1.0, "10", float("nan")]],
    *[("epoch", v) for v in [-2, False, 2.5]],
    *[("secondary", v) for v in [[1, 2], "loss=1", 3]],
    *[("termination", v) for v in ["crashed", ["crashed"], 5]],
]


@pytest.mark.parametrize(("key", "value"), FINAL_BREAKS, ids=[f"{k}={v!r}" for k, v in FINAL_BREAKS])
@settings(max_examples=10)
@given(results=finals())
def test_one_bad_final_field_is_named(results: Doc, key: str, value: Any) -> None:
    results[key] = value
    err = errors_of(validate_final_results, results)
    assert fields(err) == [key], err.message


@pytest.mark.parametrize(("secondary", "field"), [
    ({"loss": True}, "secondary.loss"), ({"loss": float("nan")}, "secondary.loss"),
    ({"val/acc": "0.5"}, 'secondary["val/acc"]'), ({"": 1.0}, "secondary"), ({"x": None}, "secondary.x"),
])
def test_secondary_values_must_be_numbers(secondary: Doc, field: str) -> None:
    assert fields(errors_of(validate_final_results, {**SEED_FINAL, "secondary": secondary})) == [field]


@pytest.mark.parametrize(("termination", "field"), [
    ({"infra_outcome": "died"}, "termination.infra_outcome"),
    ({"infra_outcome": None}, "termination.infra_outcome"),
    ({}, "termination.infra_outcome"),
    ({"infra_outcome": "crashed", "cause": "oom"}, "termination.cause"),
    ({"outcome": "crashed"}, "termination.infra_outcome"),
])
def test_termination_has_exactly_infra_outcome(termination: Doc, field: str) -> None:
    assert field in fields(errors_of(validate_final_results, {**SEED_FINAL, "termination": termination}))


def test_termination_outcomes_accepted() -> None:
    for outcome in ["completed", "preempted", "crashed", "canceled", "unknown"]:
        results = validate_final_results({**SEED_FINAL, "termination": {"infra_outcome": outcome}})
        assert results.termination is not None and results.termination.infra_outcome == outcome


def test_final_unknown_key_and_missing_keys_all_reported() -> None:
    results = {k: v for k, v in SEED_FINAL.items() if k not in ("notes", "ml_outcome")}
    results["outcome"] = "success"
    err = errors_of(validate_final_results, results)
    assert sorted(fields(err)) == ["ml_outcome", "notes", "outcome"]
    assert 'Did you mean "ml_outcome"?' in err.message
    assert err.message.startswith("3 validation errors: ")


@pytest.mark.parametrize("value", [None, "results", [SEED_FINAL]])
def test_final_results_must_be_an_object(value: object) -> None:
    assert fields(errors_of(validate_final_results, value)) == ["results"]


# --------------------------------------------------------------------------- run reason


def test_string_reason() -> None:
    reason = parse_run_reason("  Baseline LSTM on v2 features  ")
    assert reason == RunReason(description="Baseline LSTM on v2 features")
    assert reason.summary == "Baseline LSTM on v2 features"


@pytest.mark.parametrize("text", ["", "short", " " * 30 + "fourteen chars" + " " * 30])
def test_short_string_reason(text: str) -> None:
    with pytest.raises(InvalidInput, match="too short") as info:
        parse_run_reason(text)
    assert "minimum 15" in info.value.message and info.value.fix


def test_min_length_is_configurable() -> None:
    assert parse_run_reason("tiny", min_length=3).description == "tiny"
    with pytest.raises(InvalidInput, match="minimum 40"):
        parse_run_reason("a reason that is not quite long enough", min_length=40)
    with pytest.raises(InvalidInput):
        parse_run_reason({"description": "a reason that is not quite long enough"}, min_length=40)


def test_long_string_reason_is_refused() -> None:
    parse_run_reason("r" * 500)
    with pytest.raises(InvalidInput, match="maximum is 500") as info:
        parse_run_reason("r" * 501)
    assert "hypothesis" in (info.value.fix or "")


def test_missing_reason_asks_for_one() -> None:
    with pytest.raises(InvalidInput, match="A reason is required for run") as info:
        parse_run_reason(None)
    assert "description" in (info.value.fix or "")


@pytest.mark.parametrize("value", [3, True, ["Baseline LSTM training"], 2.5])
def test_other_reason_types_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="must be a string or an object"):
        parse_run_reason(value)


def test_full_reason_object() -> None:
    reason = parse_run_reason({
        "description": "Baseline LSTM training",
        "hypothesis": "h" * 1000,
        "approach": "a" * 1000,
        "min_result": "m" * 500,
        "goal": "g" * 500,
    })
    assert reason.summary == "Baseline LSTM training | H: " + "h" * 1000
    assert reason.goal == "g" * 500


def test_reason_without_hypothesis_summarises_as_description() -> None:
    reason = parse_run_reason({"description": "Baseline LSTM training", "hypothesis": None, "goal": "0.63"})
    assert reason.summary == "Baseline LSTM training"


REASON_BREAKS: list[tuple[str, Any, str]] = [
    ("description", "short", "description"),
    ("description", "d" * 501, "description"),
    ("description", None, "description"),
    ("description", 5, "description"),
    ("hypothesis", "h" * 1001, "hypothesis"),
    ("approach", "a" * 1001, "approach"),
    ("min_result", "m" * 501, "min_result"),
    ("goal", "g" * 501, "goal"),
    ("goal", 0.63, "goal"),
    ("hypothesis", "", "hypothesis"),
    ("hypotheses", "typo", "hypotheses"),
]


@pytest.mark.parametrize(("key", "value", "field"), REASON_BREAKS, ids=[f"{k}-{i}" for i, (k, _, _) in
                                                                       enumerate(REASON_BREAKS)])
def test_bad_reason_fields_are_named(key: str, value: Any, field: str) -> None:
    err = errors_of(parse_run_reason, {**SEED_REASON, key: value})
    assert fields(err) == [field]


def test_all_reason_errors_at_once_with_suggestion() -> None:
    err = errors_of(parse_run_reason, {"descripton": "Baseline LSTM training", "hypothesis": "h" * 1001})
    assert sorted(fields(err)) == ["description", "descripton", "hypothesis"]
    assert 'Did you mean "description"?' in err.message


# --------------------------------------------------------------------------- outcome helpers


def spec_of(direction: str, low: float, goal: float, tolerance: float) -> ResultsSpec:
    return validate_results_spec({**SEED_SPEC, "direction": direction, "min_value": low, "goal_value": goal,
                                  "tolerance": tolerance})


@pytest.mark.parametrize(("value", "outcome"), [
    (0.64, "success"), (0.63, "success"), (0.6271, "success"), (0.6269, "partial"), (0.60, "partial"),
    (0.5999, "miss"), (-1.0, "miss"), (None, "unknown"), (float("nan"), "miss"),
])
def test_hint_maximize(value: float | None, outcome: str) -> None:
    assert ml_outcome_hint(spec_of("maximize", 0.60, 0.63, 0.003), value) == outcome


@pytest.mark.parametrize(("value", "outcome"), [
    (0.1, "success"), (0.2, "success"), (0.21, "success"), (0.2101, "partial"), (0.5, "partial"),
    (0.5001, "miss"), (None, "unknown"),
])
def test_hint_minimize(value: float | None, outcome: str) -> None:
    assert ml_outcome_hint(spec_of("minimize", 0.5, 0.2, 0.01), value) == outcome


BOUND = st.floats(-1e6, 1e6, allow_nan=False)


@given(BOUND, BOUND, st.floats(0, 10), BOUND)
def test_hint_is_mirror_symmetric(a: float, b: float, tolerance: float, value: float) -> None:
    low, goal = min(a, b), max(a, b)
    up = ml_outcome_hint(spec_of("maximize", low, goal, tolerance), value)
    down = ml_outcome_hint(spec_of("minimize", -low, -goal, tolerance), -value)
    assert up == down


@given(BOUND, BOUND, st.floats(0, 10), BOUND, BOUND)
def test_hint_never_worsens_with_a_better_value(a: float, b: float, tolerance: float, v1: float, v2: float) -> None:
    rank = {"miss": 0, "partial": 1, "success": 2}
    spec = spec_of("maximize", min(a, b), max(a, b), tolerance)
    worse, better = sorted([v1, v2])
    assert rank[ml_outcome_hint(spec, worse)] <= rank[ml_outcome_hint(spec, better)]


@given(BOUND, BOUND)
def test_compare_values_positive_means_better(new: float, old: float) -> None:
    up = compare_values("maximize", new, old)
    down = compare_values("minimize", new, old)
    assert up == new - old and down == old - new
    assert (up > 0) == (new > old) and (down > 0) == (new < old)


def test_compare_values_refuses_unknown_direction() -> None:
    with pytest.raises(InvalidInput, match="Unknown direction"):
        compare_values("up", 1.0, 0.0)  # type: ignore[arg-type]


def test_null_value_means_no_value_and_needs_miss_or_unknown() -> None:
    base = {"primary_metric": "acc", "direction": "maximize", "value": None, "dataset_split": "val",
            "notes": "Crashed at epoch 3 before any evaluation."}
    for outcome in ("miss", "unknown"):
        results = validate_final_results({**base, "ml_outcome": outcome})
        assert results.value is None and results.ml_outcome == outcome
    err = errors_of(validate_final_results, {**base, "ml_outcome": "success"})
    assert fields(err) == ["ml_outcome"] and "null" in err.message
    missing = {k: v for k, v in base.items() if k != "value"} | {"ml_outcome": "miss"}
    assert fields(errors_of(validate_final_results, missing)) == ["value"]  # null must be said, not implied
