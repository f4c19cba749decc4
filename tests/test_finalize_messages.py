"""finalize_run's words: a rounding is not a difference, a difference names both values, a value the
run never logged is said so, an ml_outcome that contradicts the thresholds is flagged, and a bad call's
example is this run's own (its metric, direction, split, logged value)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldfish.errors import InvalidInput
from goldfish.project import Project
from goldfish.records.finalize import outcome_contradiction, within_printed_precision
from goldfish.records.results_spec import ResultsSpec
from tests.records_fixture import SPEC, Rows, final, new_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project(tmp_path)


@pytest.fixture
def rows(project: Project) -> Rows:
    r = Rows(project)
    r.workspace("lstm")
    return r


def test_rounded_to_the_printed_digits_is_no_warning(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.6812345678)
    res = project.records.finalize_run(rid, final(0.6812, "partial"))
    assert res.warnings == []


def test_a_different_value_names_both(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.6812345678)
    res = project.records.finalize_run(rid, final(0.6815, "partial"))
    [warning] = res.warnings
    assert "acc=0.6815" in warning and "0.6812345678" in warning and "differs from what the run logged" in warning


def test_a_value_never_logged_is_said_so(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=None)
    res = project.records.finalize_run(rid, final(0.65, "partial", notes="Evaluated offline on the val rows."))
    [warning] = res.warnings
    assert "never logged acc" in warning and "0.65" in warning


def test_success_below_the_goal_is_flagged(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.695)  # goal 0.7, tolerance 0.01: within tolerance, still below the goal
    res = project.records.finalize_run(rid, final(0.695, "success"))
    [warning] = res.warnings
    assert "ml_outcome 'success' contradicts the results_spec: 0.695 is below goal_value 0.7" in warning
    assert "within its tolerance 0.01" in warning


@pytest.mark.parametrize("outcome, value, words", [
    ("success", 0.65, "below goal_value 0.7"),
    ("partial", 0.5, "below min_value 0.6"),
    ("miss", 0.72, "reaches goal_value 0.7"),
    ("partial", 0.75, "reaches goal_value 0.7"),
    ("miss", 0.65, "above min_value 0.6"),
])
def test_contradictions(outcome: str, value: float, words: str) -> None:
    assert words in (outcome_contradiction(ResultsSpec.model_validate(SPEC), outcome, value) or "")


@pytest.mark.parametrize("outcome, value", [("success", 0.7), ("success", 0.8), ("partial", 0.65),
                                            ("miss", 0.5), ("unknown", 0.9)])
def test_consistent_outcomes(outcome: str, value: float) -> None:
    assert outcome_contradiction(ResultsSpec.model_validate(SPEC), outcome, value) is None


def test_minimize_contradiction() -> None:
    spec = ResultsSpec.model_validate({**SPEC, "direction": "minimize", "min_value": 0.5, "goal_value": 0.2})
    assert "above goal_value 0.2" in (outcome_contradiction(spec, "success", 0.3) or "")
    assert outcome_contradiction(spec, "partial", 0.3) is None


def test_printed_precision() -> None:
    assert within_printed_precision(0.81234567, 0.8123)
    assert within_printed_precision(0.81235, 0.8124) and not within_printed_precision(0.81234567, 0.8124)
    assert within_printed_precision(12.4, 12.0) is False and within_printed_precision(12.04, 12.0)
    assert within_printed_precision(1.23456e-05, 1.23e-05)


def test_bad_results_show_this_runs_own_example(project: Project, rows: Rows) -> None:
    rid = rows.run("lstm", value=0.6812)
    with pytest.raises(InvalidInput) as err:
        project.records.finalize_run(rid, {"value": 0.68})
    fix = err.value.fix or ""
    example = json.loads(fix.split("e.g. ", 1)[1].split("; value may be null", 1)[0])
    assert example["primary_metric"] == "acc" and example["direction"] == "maximize"
    assert example["value"] == 0.6812 and example["dataset_split"] == "val" and example["ml_outcome"] == "partial"
    assert "dir_acc_binary" not in fix and "LSTM" not in fix
