"""Bad run() requests: a clear error naming the fix, and nothing created anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from goldfish.errors import GoldfishError, InvalidInput, NotFound
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, create_workspace, file_stage, make_env, snapshot

BAD: list[tuple[str, dict[str, Any], type[GoldfishError], list[str]]] = [
    ("unknown stage", {"stages": ["trian"]}, InvalidInput, ["no stage 'trian'", 'Did you mean "train"']),
    ("duplicate stage", {"stages": ["prep", "prep"]}, InvalidInput, ["requested twice"]),
    ("stages not a list", {"stages": "prep"}, InvalidInput, ["must be a list"]),
    ("override not a mapping", {"config_override": ["lr", 1]}, InvalidInput, ["config_override must be a mapping"]),
    ("flat override, two stages", {"config_override": {"lr": 0.1}}, InvalidInput, ["Key it by stage name"]),
    ("unknown run id", {"stages": ["train"], "inputs_override": {"x": "stage-00000000"}}, InvalidInput,
     ["stage-00000000 does not exist"]),
    ("missing path", {"stages": ["train"], "inputs_override": {"x": "/nope/data.npy"}}, InvalidInput,
     ["does not exist"]),
    ("unknown input", {"stages": ["train"], "inputs_override": {"y": "/tmp"}}, InvalidInput, ["has no input 'y'"]),
    ("upstream never ran", {"stages": ["train"]}, InvalidInput, ["Add 'prep' to stages"]),
    ("spec missing keys", {"results_spec": {"primary_metric": "acc"}}, InvalidInput,
     ["results_spec.direction", "required key is missing"]),
    ("no spec", {"results_spec": None}, InvalidInput, ["results_spec"]),
    ("short reason", {"reason": "too short"}, InvalidInput, ["reason is too short"]),
    ("reason of wrong type", {"reason": 42}, InvalidInput, ["reason must be a string or an object"]),
    ("bad group", {"experiment_group": "a\nb"}, InvalidInput, ["experiment_group"]),
    ("bad pipeline name", {"pipeline": "../etc"}, InvalidInput, ["Invalid pipeline name"]),
    ("missing named pipeline", {"pipeline": "other"}, NotFound, ["No pipeline 'other'"]),
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("prep"), file_stage("train", inputs={"x": "prep"})],
              {"prep": WRITE_OUTPUTS, "train": WRITE_OUTPUTS})
    return env


def test_bad_requests_create_nothing(env) -> None:
    project = env.project
    before = snapshot(env)
    for label, changes, error, fragments in BAD:
        kwargs: dict[str, Any] = {"reason": REASON, "results_spec": SPEC, **changes}
        with pytest.raises(error) as caught:
            project.runs.run("w1", **kwargs)
        text = str(caught.value)
        for fragment in fragments:
            assert fragment in text, f"{label}: {fragment!r} not in {text!r}"
        assert "Fix:" in text or caught.value.fix, label
        assert snapshot(env) == before, f"{label} changed something"


def test_every_problem_is_reported_at_once(env) -> None:
    with pytest.raises(InvalidInput) as caught:
        env.project.runs.run("w1", stages=["prep", "nope"], reason="short", results_spec={"direction": "up"})
    issues = {i["location"] for i in caught.value.details["issues"]}
    assert {"stages[1]", "reason", "results_spec.primary_metric", "results_spec.direction"} <= issues


def test_workspace_must_be_mounted(env) -> None:
    project = env.project
    create_workspace(env, "other")
    before = snapshot(env)
    with pytest.raises(InvalidInput) as caught:
        project.runs.run("other", reason=REASON, results_spec=SPEC)
    assert "not mounted" in str(caught.value) and "mount(" in str(caught.value)
    with pytest.raises(NotFound, match="empty"):
        project.runs.run("w2", reason=REASON, results_spec=SPEC)
    with pytest.raises(InvalidInput, match="Invalid workspace name"):
        project.runs.run("bad name;rm", reason=REASON, results_spec=SPEC)
    assert snapshot(env) == before


def test_dry_run_reports_without_writing(env) -> None:
    project = env.project
    (env.slot / "modules" / "train.py").unlink()
    before = snapshot(env)
    dry = project.runs.run("w1", dry_run=True, config_override={"prep": {"lr": 1}})
    assert not dry.valid and dry.stages == ["prep", "train"]
    assert any("modules/train.py" in i.location for i in dry.errors)
    assert any("configs/prep.yaml" in i.location for i in dry.warnings)
    assert snapshot(env) == before
