"""Stage config merging, Goldfish keys, override normalisation and schema placeholders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goldfish.errors import InvalidInput
from goldfish.pipelines.model import Pipeline, load_pipeline
from goldfish.pipelines.signal_schema import TensorSchema, parse_contract
from goldfish.pipelines.stage_config import (
    check_stage_config,
    deep_merge,
    merge_stage_config,
    normalize_input_overrides,
    normalize_overrides,
    resolve_placeholders,
)
from tests.pipeline_helpers import issue_at, make_project, tree_digest


def project(
    root: Path,
    defaults: dict[str, Any] | None = None,
    config: Any = None,
    config_schema: dict[str, Any] | None = None,
) -> Pipeline:
    stage: dict[str, Any] = {"name": "train", "outputs": {"model": {"schema": None}}}
    if defaults is not None:
        stage["defaults"] = defaults
    if config_schema is not None:
        stage["config_schema"] = config_schema
    make_project(root, {"stages": [stage]}, configs={"train": config} if config is not None else None)
    return load_pipeline(root)


def test_precedence_and_deep_merge(tmp_path: Path) -> None:
    p = project(
        tmp_path,
        defaults={
            "lr": 0.1,
            "epochs": 5,
            "opt": {"name": "adam", "betas": [0.9, 0.99]},
            "compute": {"profile": "local", "max_runtime_seconds": 600},
        },
        config={"lr": 0.01, "opt": {"betas": [0.8]}, "compute": {"profile": "cpu-small"}},
    )
    cfg = merge_stage_config(p, "train", tmp_path, {"epochs": 9, "opt": {"name": "sgd"}})
    assert cfg.values == {
        "lr": 0.01,
        "epochs": 9,
        "opt": {"name": "sgd", "betas": [0.8]},  # nested dicts merge, lists replace
        "compute": {"profile": "cpu-small", "max_runtime_seconds": 600},
    }
    assert (cfg.profile, cfg.max_runtime_seconds, cfg.config_file) == ("cpu-small", 600, "configs/train.yaml")
    assert cfg.origin("lr") == "configs/train.yaml"
    assert cfg.origin("epochs") == "config_override.train"
    assert cfg.origin("opt.name") == "config_override.train"
    assert cfg.origin("opt.betas") == "configs/train.yaml"
    assert cfg.origin("compute.max_runtime_seconds") == "pipeline.yaml:stages[0].defaults"


def test_missing_config_file_is_a_warning_not_an_error(tmp_path: Path) -> None:
    p = project(tmp_path, defaults={"lr": 0.1})
    result = check_stage_config(p, "train", tmp_path)
    assert result.errors == [] and result.config is not None and result.config.values == {"lr": 0.1}
    assert "does not exist" in issue_at(result.warnings, "configs/train.yaml").message
    assert merge_stage_config(p, "train", tmp_path, None).config_file is None


def test_goldfish_keys_extracted(tmp_path: Path) -> None:
    p = project(
        tmp_path,
        config={
            "compute": {
                "heartbeat_timeout_seconds": 300,
                "capacity_wait_seconds": 900,
                "log_sync_interval": 10,
            },
            "environment": {"OMP_NUM_THREADS": 4, "DEBUG": True, "NAME": "x"},
            "dashboard_metrics": ["train/loss", "val/acc"],
            "hints": {"expect": "slow"},
        },
    )
    cfg = merge_stage_config(p, "train", tmp_path, None)
    assert cfg.environment == {"OMP_NUM_THREADS": "4", "DEBUG": "true", "NAME": "x"}
    assert cfg.dashboard_metrics == ["train/loss", "val/acc"]
    assert (cfg.heartbeat_timeout_seconds, cfg.capacity_wait_seconds, cfg.log_sync_interval) == (300, 900, 10)
    assert cfg.hints == {"expect": "slow"} and cfg.profile is None


@pytest.mark.parametrize(
    "config,location,needle",
    [
        (
            {"environment": {"GOLDFISH_STAGE": "x"}},
            "configs/train.yaml:environment.GOLDFISH_STAGE",
            "reserved",
        ),
        (
            {"environment": {"goldfish_lower": "x"}},
            "configs/train.yaml:environment.goldfish_lower",
            "reserved",
        ),
        (
            {"environment": {"1BAD": "x"}},
            "configs/train.yaml:environment.1BAD",
            "not an environment variable",
        ),
        ({"environment": {"A": [1]}}, "configs/train.yaml:environment.A", "not a scalar"),
        ({"environment": "A=1"}, "configs/train.yaml:environment", "must map"),
        ({"compute": {"profil": "x"}}, "configs/train.yaml:compute.profil", 'Did you mean "profile"'),
        (
            {"compute": {"max_runtime_seconds": -5}},
            "configs/train.yaml:compute.max_runtime_seconds",
            "greater than 0",
        ),
        (
            {"compute": {"max_runtime_seconds": True}},
            "configs/train.yaml:compute.max_runtime_seconds",
            "integer",
        ),
        ({"compute": {"profile": 3}}, "configs/train.yaml:compute.profile", "profile name"),
        ({"compute": "cpu-small"}, "configs/train.yaml:compute", "mapping"),
        ({"dashboard_metrics": ["ok", "bad name"]}, "configs/train.yaml:dashboard_metrics[1]", "metric name"),
        ("[1, 2]", "configs/train.yaml", "not a mapping"),
    ],
)
def test_bad_stage_config_values(tmp_path: Path, config: Any, location: str, needle: str) -> None:
    p = project(tmp_path, config=config)
    before = tree_digest(tmp_path)
    with pytest.raises(InvalidInput) as info:
        merge_stage_config(p, "train", tmp_path, None)
    issue = issue_at(info.value.details["issues"], location)
    assert needle in issue["message"] and issue["fix"]
    assert tree_digest(tmp_path) == before


def test_yaml_error_in_config_file_names_the_line(tmp_path: Path) -> None:
    p = project(tmp_path, config="lr: 0.1\nopt: {name: adam\n")
    with pytest.raises(InvalidInput) as info:
        merge_stage_config(p, "train", tmp_path, None)
    assert "configs/train.yaml line 3" in info.value.details["issues"][0]["location"]


def test_config_schema_enforced_by_merge(tmp_path: Path) -> None:
    p = project(
        tmp_path,
        defaults={"lr": 1},
        config={"batch": 32.5},
        config_schema={
            "lr": "float",
            "batch": "int",
            "name": {"type": "str", "required": True},
            "flags": "list",
            "extra": "dict",
            "n": "number",
        },
    )
    with pytest.raises(InvalidInput) as info:
        merge_stage_config(p, "train", tmp_path, {"flags": "a", "extra": [], "n": False})
    issues = info.value.details["issues"]
    assert "declares int" in issue_at(issues, "configs/train.yaml:batch")["message"]
    assert "requires name" in issue_at(issues, "configs/train.yaml:name")["message"]
    assert "declares list" in issue_at(issues, "config_override.train:flags")["message"]
    assert "declares dict" in issue_at(issues, "config_override.train:extra")["message"]
    assert "true/false are not numbers" in issue_at(issues, "config_override.train:n")["fix"]
    cfg = merge_stage_config(
        p, "train", tmp_path, {"batch": 32, "name": "x", "flags": [], "extra": {}, "n": 2}
    )
    assert cfg.values["lr"] == 1


def test_reserved_keys_warn(tmp_path: Path) -> None:
    p = project(tmp_path, config={"inputs": 3})
    result = check_stage_config(p, "train", tmp_path)
    assert result.errors == []
    assert "replaced by Goldfish" in issue_at(result.warnings, "configs/train.yaml:inputs").message


# --- override normalisation ------------------------------------------------------------------------
def test_normalize_overrides_forms() -> None:
    assert normalize_overrides(None, ["a", "b"]) == {"a": {}, "b": {}}
    assert normalize_overrides({}, ["a"]) == {"a": {}}
    assert normalize_overrides({"lr": 1}, ["train"]) == {"train": {"lr": 1}}
    assert normalize_overrides({"a": {"lr": 1}}, ["a", "b"]) == {"a": {"lr": 1}, "b": {}}
    # a single stage whose config has a key named like a stage (value not a mapping) stays flat
    assert normalize_overrides({"train": 3}, ["train"]) == {"train": {"train": 3}}


def test_flat_override_for_several_stages_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_overrides({"lr": 0.1, "epochs": 3}, ["prep", "train"])
    assert "2 stages" in info.value.message
    assert "Key it by stage name" in (info.value.fix or "") and "'prep': {...}" in (info.value.fix or "")


def test_override_misspelled_stage_and_mixed_forms() -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_overrides({"trian": {"lr": 1}}, ["prep", "train"])
    assert 'Did you mean "train"' in info.value.message
    with pytest.raises(InvalidInput) as info:
        normalize_overrides({"train": {"lr": 1}, "epochs": 3}, ["train"])
    assert "mixes" in info.value.message
    with pytest.raises(InvalidInput) as info:
        normalize_overrides(["lr", 1], ["train"])
    assert "mapping" in info.value.message and info.value.fix


def test_override_entry_for_a_stage_outside_the_run() -> None:
    # without the pipeline's stage list a single-stage flat override cannot tell; with it, it can
    assert normalize_overrides({"prep": {"lr": 1}}, ["train"]) == {"train": {"prep": {"lr": 1}}}
    with pytest.raises(InvalidInput) as info:
        normalize_overrides({"prep": {"lr": 1}}, ["train"], all_stages=["prep", "train"])
    assert "outside this run" in info.value.message


def test_normalize_input_overrides() -> None:
    assert normalize_input_overrides({"features": "stage-1a2b3c4d"}, ["train"]) == {
        "train": {"features": "stage-1a2b3c4d"}
    }
    keyed = {"train": {"features": {"from_run": "stage-1a2b3c4d", "signal": "x"}}, "eval": {"model": "src"}}
    assert normalize_input_overrides(keyed, ["train", "eval"]) == keyed
    with pytest.raises(InvalidInput) as info:
        normalize_input_overrides({"features": "sales_v1"}, ["train", "eval"])
    assert "inputs_override" in info.value.message and "Key it by stage name" in (info.value.fix or "")
    with pytest.raises(InvalidInput):
        normalize_input_overrides("stage-1a2b3c4d", ["train"])


stage_names = st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=1, max_size=4, unique=True)


@settings(max_examples=80, deadline=None)
@given(stages=stage_names, data=st.data())
def test_property_keyed_overrides_round_trip(stages: list[str], data: st.DataObject) -> None:
    chosen = data.draw(st.lists(st.sampled_from(stages), unique=True, min_size=1))
    values = st.dictionaries(st.sampled_from(["lr", "epochs", "seed"]), st.integers(), max_size=3)
    keyed = {s: data.draw(values) for s in chosen}
    result = normalize_overrides(keyed, stages)
    assert set(result) == set(stages)
    for s in stages:
        assert result[s] == keyed.get(s, {})


@settings(max_examples=80, deadline=None)
@given(
    stages=stage_names,
    flat=st.dictionaries(st.sampled_from(["lr", "epochs", "seed"]), st.integers(), min_size=1),
)
def test_property_flat_override_only_for_one_stage(stages: list[str], flat: dict[str, int]) -> None:
    if len(stages) == 1:
        assert normalize_overrides(flat, stages) == {stages[0]: flat}
    else:
        with pytest.raises(InvalidInput):
            normalize_overrides(flat, stages)


# --- placeholders ----------------------------------------------------------------------------------
def test_resolve_placeholders_dict_and_model() -> None:
    raw = {"kind": "tensor", "shape": ["{batch}", "{hidden}"], "dtype": "{dtype}", "note": "x{hidden}"}
    assert resolve_placeholders(raw, {"batch": None, "hidden": 768, "dtype": "float32"}) == {
        "kind": "tensor",
        "shape": [None, 768],
        "dtype": "float32",
        "note": "x{hidden}",
    }  # whole strings only
    model = parse_contract({"kind": "tensor", "shape": [None, "{hidden}"], "dtype": "float32"})
    resolved = resolve_placeholders(model, {"hidden": 512})
    assert isinstance(resolved, TensorSchema) and resolved.shape == [None, 512]
    assert resolve_placeholders(None, {}) is None


def test_resolve_placeholders_errors() -> None:
    with pytest.raises(InvalidInput) as info:
        resolve_placeholders({"kind": "tensor", "shape": ["{a}", "{b}"]}, {"a": 1})
    issue = issue_at(info.value.details["issues"], "schema.shape[1]")
    assert "'b'" in issue["message"] and "b: <value>" in issue["fix"]
    model = parse_contract({"kind": "tensor", "dtype": "{dtype}"})
    with pytest.raises(InvalidInput) as info:
        resolve_placeholders(model, {"dtype": "floaty"})
    assert issue_at(info.value.details["issues"], "schema.dtype")


@settings(max_examples=60, deadline=None)
@given(
    values=st.dictionaries(
        st.from_regex(r"[a-z_]{1,5}", fullmatch=True),
        st.integers(min_value=0, max_value=9),
        min_size=1,
        max_size=4,
    ),
    data=st.data(),
)
def test_property_placeholders_replaced_by_top_level_values(
    values: dict[str, int], data: st.DataObject
) -> None:
    keys = data.draw(st.lists(st.sampled_from(sorted(values)), max_size=5))
    schema = {"kind": "tensor", "shape": [f"{{{k}}}" for k in keys]}
    assert resolve_placeholders(schema, values)["shape"] == [values[k] for k in keys]


def test_deep_merge_does_not_alias_inputs() -> None:
    base = {"a": {"b": [1]}}
    over = {"a": {"c": {"d": 1}}}
    merged = deep_merge(base, over)
    merged["a"]["c"]["d"] = 2
    assert over == {"a": {"c": {"d": 1}}} and base == {"a": {"b": [1]}}
