"""Which stage carries the result, and the warnings when no stage logs the primary metric
(run(dry_run=True) and validate_config); nothing here runs a stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldfish.errors import InvalidInput
from goldfish.pipelines.config_check import validate_config
from goldfish.runs.service import DryRunResult
from tests.run_helpers import REASON, SPEC, file_stage, make_env

PREP = "from goldfish.io import get_output_path\nget_output_path('out').write_text('rows')\n"
FIT = ("from goldfish.io import get_output_path, load_input\nfrom modules.scoring import score\n"
       "load_input('x')\nscore()\nget_output_path('out').write_text('model')\n")
SCORING = "from goldfish.metrics import log_metric\n\n\ndef score():\n    log_metric('f1', 0.7)\n"
REPORT = ("from goldfish.io import get_output_path, load_input\nload_input('m')\n"
          "get_output_path('out').write_text('report')\n")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    env = make_env(tmp_path, monkeypatch)
    env.configure(pre_run_review={"enabled": True})
    env.write([file_stage("prep"), file_stage("fit", inputs={"x": "prep"}), file_stage("report", inputs={"m": "fit"})],
              {"prep": PREP, "fit": FIT, "report": REPORT})
    (env.slot / "modules" / "scoring.py").write_text(SCORING)
    return env


def dry(env, **kw) -> DryRunResult:  # type: ignore[no-untyped-def]
    result = env.project.runs.run("w1", reason=REASON, dry_run=True, **kw)
    assert isinstance(result, DryRunResult)
    return result


def test_the_result_stage_is_the_last_that_logs_the_metric(env) -> None:  # type: ignore[no-untyped-def]
    f1 = {**SPEC, "primary_metric": "f1"}
    result = dry(env, results_spec=f1)
    assert result.valid, result.errors
    assert result.result_stage == "fit"  # through the helper module it imports; report never logs f1
    assert not [w for w in result.warnings if w.location == "results_spec.primary_metric"]
    assert dry(env, results_spec={**f1, "stage": "report"}).result_stage == "report"


def test_no_stage_mentions_the_metric_is_a_warning(env) -> None:  # type: ignore[no-untyped-def]
    result = dry(env, results_spec={**SPEC, "primary_metric": "f_one"})
    assert result.result_stage == "report"  # falls back to the last stage of the run
    [warning] = [w for w in result.warnings if w.location == "results_spec.primary_metric"]
    assert "no stage of this run mentions 'f_one'" in warning.message and "results_spec.stage" in (warning.fix or "")
    only_prep = dry(env, stages=["prep"], results_spec={**SPEC, "primary_metric": "f1"})
    [elsewhere] = [w for w in only_prep.warnings if w.location == "results_spec.primary_metric"]
    assert "only fit (not in this run) does" in elsewhere.message


def test_a_result_stage_outside_the_run_is_refused(env) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as err:
        env.project.runs.run("w1", stages=["prep"], reason=REASON, results_spec={**SPEC, "stage": "fit"})
    assert "results_spec.stage" in err.value.message or "results_spec.stage" in str(err.value.details)
    assert not list(env.project.runs_dir.glob("stage-*"))


def test_validate_config_warns_about_a_saved_spec_no_stage_logs(env) -> None:  # type: ignore[no-untyped-def]
    project = env.project
    clean = validate_config(project, "w1", review=project.runs.review_slot)
    assert clean.valid, clean.errors
    project.records.save_results_spec("exp", "fit", {**SPEC, "primary_metric": "f_one"})
    warned = validate_config(project, "w1", review=project.runs.review_slot)
    assert warned.valid and any("'f_one'" in w.message and w.location.startswith("w1/") for w in warned.warnings)
