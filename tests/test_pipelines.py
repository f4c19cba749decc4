"""pipeline.yaml parsing: models, defaults, every document error with its location and fix, graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from goldfish.errors import InvalidInput, NotFound
from goldfish.pipelines.model import Pipeline, load_pipeline, parse_pipeline
from goldfish.pipelines.signal_schema import TabularSchema, TensorSchema, parse_contract
from tests.pipeline_helpers import SEED_PIPELINE, issue_at, make_project, tree_digest


def parse_dict(doc: dict[str, Any], source: str = "pipeline.yaml") -> Pipeline:
    return parse_pipeline(yaml.safe_dump(doc, sort_keys=False), source)


def problems(doc: str | dict[str, Any]) -> list[dict[str, Any]]:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    with pytest.raises(InvalidInput) as info:
        parse_pipeline(text, "pipeline.yaml")
    issues = info.value.details["issues"]
    assert issues, "an invalid pipeline must list its issues"
    for issue in issues:
        assert issue["location"] and issue["message"] and issue["fix"], issue
    return issues


def out(schema: Any = None, **extra: Any) -> dict[str, Any]:
    return {"schema": schema, **extra}


TENSOR = {"kind": "tensor", "shape": [None, 768], "dtype": "float32"}


# --- the seed example ------------------------------------------------------------------------------
def test_seed_pipeline_parses_with_defaults_resolved() -> None:
    p = parse_pipeline(SEED_PIPELINE, "pipeline.yaml")
    assert p.name == "pipeline" and p.description == ""
    assert p.stage_names == ["preprocess", "train", "evaluate"]
    raw = p.stage("preprocess").inputs["raw_data"]
    assert (raw.type, raw.dataset, raw.from_stage, raw.format) == ("dataset", "sales_v1", None, None)  # source decides
    assert isinstance(raw.contract, TabularSchema) and raw.contract.columns == ["price", "volume"]
    features = p.stage("preprocess").outputs["features"]
    assert isinstance(features.contract, TensorSchema) and features.contract.shape == [None, 768]
    assert (features.type, features.format, features.artifact) == ("npy", "npy", False)
    # evaluate.model declares no type: it inherits the upstream output's (directory)
    model_in = p.stage("evaluate").inputs["model"]
    assert (model_in.type, model_in.format, model_in.signal, model_in.contract) == (
        "directory",
        "directory",
        "model",
        None,
    )
    assert p.stage("train").outputs["model"].contract is None
    assert p.dependencies() == {
        "preprocess": set(),
        "train": {"preprocess"},
        "evaluate": {"preprocess", "train"},
    }
    assert p.topological_order() == ["preprocess", "train", "evaluate"]
    assert p.stage("train").module_path == "modules/train.py"


def test_load_pipeline_default_and_named(tmp_path: Path) -> None:
    make_project(tmp_path, SEED_PIPELINE)
    assert load_pipeline(tmp_path).source == "pipeline.yaml"
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "train_only.yaml").write_text(
        "description: just training\nstages:\n  - name: train\n    outputs:\n      model: {schema: null}\n"
    )
    named = load_pipeline(tmp_path, "train_only")
    assert named.name == "train_only"  # default name: the file stem
    assert named.description == "just training"
    assert named.stage("train").outputs["model"].type == "directory"  # output default type


def test_explicit_name_wins_over_stem() -> None:
    p = parse_pipeline("name: sweep\nstages:\n  - name: a\n", "pipelines/other.yaml")
    assert p.name == "sweep"


def test_missing_pipeline_file_names_path_and_fix(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as info:
        load_pipeline(tmp_path)
    assert str(tmp_path / "pipeline.yaml") in info.value.message
    assert "Create pipeline.yaml" in (info.value.fix or "")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "train_eval.yaml").write_text("stages: [{name: a}]\n")
    with pytest.raises(NotFound) as info:
        load_pipeline(tmp_path, "train_evl")
    assert 'Did you mean "train_eval"' in info.value.message
    assert "train_eval" in (info.value.fix or "")


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", "x" * 70, "-lead"])
def test_bad_pipeline_name_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_pipeline(tmp_path, bad)
    assert info.value.fix


# --- the schema key --------------------------------------------------------------------------------
def test_missing_schema_key_is_an_error_at_its_location() -> None:
    doc = {
        "stages": [
            {"name": "a", "outputs": {"features": {"type": "npy"}}},
            {"name": "b", "inputs": {"features": {"from_stage": "a"}}, "outputs": {"x": out()}},
        ]
    }
    issues = problems(doc)
    assert len(issues) == 2  # both reported at once
    for location in ("stages[0].outputs.features.schema", "stages[1].inputs.features.schema"):
        issue = issue_at(issues, location)
        assert "schema" in issue["message"]
        assert "schema: null" in issue["fix"] and "opt out" in issue["fix"]


def test_schema_null_is_allowed() -> None:
    p = parse_dict({"stages": [{"name": "a", "outputs": {"x": out(None)}}]})
    assert p.stage("a").outputs["x"].contract is None


def test_bare_shorthands_are_rejected_with_a_fix() -> None:
    issues = problems("stages:\n  - name: a\n    inputs:\n      raw: sales_v1\n    outputs:\n      - model\n")
    raw = issue_at(issues, "stages[0].inputs.raw")
    assert "dataset: sales_v1" in raw["fix"] and "schema" in raw["fix"]
    assert "name" in issue_at(issues, "stages[0].outputs[0]")["fix"]


def test_list_form_equals_mapping_form() -> None:
    listed = parse_pipeline(
        "stages:\n  - name: a\n    outputs:\n      - {name: x, type: npy, schema: null}\n"
        "  - name: b\n    inputs:\n      - {name: x, from_stage: a, schema: null}\n",
        "p.yaml",
    )
    mapped = parse_dict(
        {
            "stages": [
                {"name": "a", "outputs": {"x": {"type": "npy", "schema": None}}},
                {"name": "b", "inputs": {"x": {"from_stage": "a", "schema": None}}},
            ]
        },
        "p.yaml",
    )
    assert listed.model_dump() == mapped.model_dump()
    assert listed.stage("b").inputs["x"].type == "npy"


def test_duplicate_names_in_list_form() -> None:
    issues = problems(
        "stages:\n  - name: a\n    outputs:\n      - {name: x, schema: null}\n"
        "      - {name: x, schema: null}\n"
    )
    assert "twice" in issue_at(issues, "stages[0].outputs[1]")["message"]


# --- types, keys, did-you-mean ---------------------------------------------------------------------
def test_bad_type_name_suggests_the_right_one() -> None:
    issues = problems({"stages": [{"name": "a", "outputs": {"x": out(None, type="npyy")}}]})
    issue = issue_at(issues, "stages[0].outputs.x.type")
    assert 'Did you mean "npy"' in issue["message"]
    assert "npy" in issue["fix"] and "directory" in issue["fix"]


def test_unknown_keys_at_every_level_suggest_fixes() -> None:
    issues = problems(
        {
            "nmae": "x",
            "stages": [
                {
                    "name": "a",
                    "runtme": "python",
                    "outputs": {"x": {"schema": None, "artefact": True}},
                    "inputs": {"y": {"from_stag": "b", "schema": None}},
                }
            ],
        }
    )
    assert 'Did you mean "name"' in issue_at(issues, "nmae")["message"]
    assert 'Did you mean "runtime"' in issue_at(issues, "stages[0].runtme")["message"]
    assert 'Did you mean "artifact"' in issue_at(issues, "stages[0].outputs.x.artefact")["message"]
    assert 'Did you mean "from_stage"' in issue_at(issues, "stages[0].inputs.y.from_stag")["message"]


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_pipeline("stages:\n  - name: a\n   outputs: [\n", "pipeline.yaml")
    issue = info.value.details["issues"][0]
    assert "line 3" in issue["location"] and "line 3" in issue["fix"]


def test_duplicate_yaml_key_is_refused() -> None:
    text = "stages:\n  - name: a\n    outputs:\n      x: {schema: null}\n      x: {type: npy, schema: null}\n"
    with pytest.raises(InvalidInput) as info:
        parse_pipeline(text, "pipeline.yaml")
    assert "duplicate key 'x'" in info.value.message and "line 5" in info.value.message


@pytest.mark.parametrize(
    "text,location",
    [
        ("", "pipeline.yaml"),
        ("- a\n- b\n", "pipeline.yaml"),
        ("stages: []\n", "stages"),
        ("description: x\n", "stages"),
    ],
)
def test_degenerate_documents(text: str, location: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_pipeline(text, "pipeline.yaml")
    assert info.value.fix
    assert info.value.details["issues"][0]["location"] == location


def test_duplicate_stage_names() -> None:
    issues = problems({"stages": [{"name": "a"}, {"name": "b"}, {"name": "a"}]})
    assert "stages[0]" in issue_at(issues, "stages[2].name")["message"]


@pytest.mark.parametrize("bad", ["has space", "../x", "", "a" * 65])
def test_bad_stage_and_signal_names(bad: str) -> None:
    problems({"stages": [{"name": bad}]})
    issues = problems({"stages": [{"name": "a", "outputs": {bad: out()}}]})
    assert any("signal name" in i["message"] for i in issues)


def test_input_source_rules() -> None:
    issues = problems(
        {
            "stages": [
                {
                    "name": "a",
                    "inputs": {
                        "both": {"from_stage": "b", "dataset": "s", "schema": None},
                        "alias": {"signal": "x", "schema": None},
                    },
                }
            ]
        }
    )
    assert "both" in issue_at(issues, "stages[0].inputs.both")["message"]
    assert "from_stage" in issue_at(issues, "stages[0].inputs.alias.signal")["fix"]


def test_signal_aliasing_defaults_to_input_name() -> None:
    p = parse_dict(
        {
            "stages": [
                {"name": "pre", "outputs": {"features": out(None, type="npy")}},
                {
                    "name": "train",
                    "inputs": {
                        "X": {"from_stage": "pre", "signal": "features", "schema": None},
                        "features": {"from_stage": "pre", "schema": None},
                    },
                },
            ]
        }
    )
    assert p.stage("train").inputs["X"].signal == "features"
    assert p.stage("train").inputs["features"].signal == "features"
    assert p.stage("train").inputs["X"].type == "npy"


def test_signal_type_must_suit_schema_kind() -> None:
    issues = problems(
        {
            "stages": [
                {
                    "name": "a",
                    "outputs": {
                        "t": out({"kind": "tabular", "columns": ["a"]}, type="npy"),
                        "c": out(TENSOR, type="csv"),
                        "j": out(TENSOR, type="json"),
                    },
                }
            ]
        }
    )
    for name, kind in (("t", "tensor"), ("c", "tabular"), ("j", "json")):
        assert kind in issue_at(issues, f"stages[0].outputs.{name}.schema")["fix"]
    # file and directory accept any kind
    parse_dict(
        {
            "stages": [
                {
                    "name": "a",
                    "outputs": {"f": out({"kind": "json"}, type="file"), "d": out(TENSOR, type="directory")},
                }
            ]
        }
    )


# --- runtime, entrypoint, config_schema ------------------------------------------------------------
def test_rust_stage_entrypoint_rules() -> None:
    p = parse_dict(
        {
            "stages": [
                {"name": "encode", "runtime": "rust"},
                {"name": "fast", "runtime": "rust", "entrypoint": "entrypoints/bin/fast"},
            ]
        }
    )
    assert p.stage("encode").module_path == "modules/encode.rs"
    assert p.stage("encode").binary_path == "entrypoints/encode"
    assert p.stage("fast").binary_path == "entrypoints/bin/fast"
    for bad in ("/abs/x", "entrypoints/../x", "bin/x", "entrypoints", "entrypoints\\x"):
        issues = problems({"stages": [{"name": "e", "runtime": "rust", "entrypoint": bad}]})
        assert "entrypoints/" in issue_at(issues, "stages[0].entrypoint")["fix"]
    issues = problems({"stages": [{"name": "p", "entrypoint": "entrypoints/p"}]})
    assert "rust" in issue_at(issues, "stages[0].entrypoint")["message"]
    issues = problems({"stages": [{"name": "p", "runtime": "go"}]})
    assert "python, rust" in issue_at(issues, "stages[0].runtime")["fix"]


def test_config_schema_forms_and_bad_type() -> None:
    p = parse_dict(
        {
            "stages": [
                {
                    "name": "a",
                    "config_schema": {
                        "lr": "float",
                        "epochs": {"type": "int", "required": True},
                        "optim.momentum": "number",
                    },
                }
            ]
        }
    )
    cs = p.stage("a").config_schema
    assert (cs["lr"].type, cs["lr"].required) == ("float", False)
    assert (cs["epochs"].type, cs["epochs"].required) == ("int", True)
    issues = problems(
        {"stages": [{"name": "a", "config_schema": {"lr": "flaot", "n": {"type": "int", "required": "yes"}}}]}
    )
    assert 'Did you mean "float"' in issue_at(issues, "stages[0].config_schema.lr.type")["message"]
    issue_at(issues, "stages[0].config_schema.n.required")


# --- schema contracts -------------------------------------------------------------------------------
def schema_problems(schema: Any) -> list[dict[str, Any]]:
    return problems({"stages": [{"name": "a", "outputs": {"x": out(schema, type="file")}}]})


@pytest.mark.parametrize(
    "schema,location,needle",
    [
        ({"kind": "tensor", "shape": [None, -2]}, "schema.shape[1]", "null / -1"),
        ({"kind": "tensor", "shape": [True]}, "schema.shape[0]", "integer"),
        ({"kind": "tensor", "shape": "768"}, "schema.shape", "list"),
        ({"kind": "tensor", "dtype": "flot32"}, "schema.dtype", 'Did you mean "float32"'),
        ({"kind": "tensor", "shape": [1, 2], "rank": 3}, "schema.rank", "rank 3"),
        ({"kind": "tensor", "rank": -1}, "schema.rank", ">= 0"),
        ({"kind": "tensor", "vocab_size": 0}, "schema.vocab_size", "> 0"),
        (
            {"kind": "tensor", "arrays": {"x": {"shape": [1], "dtype": "int8"}}, "primary_array": "y"},
            "schema.primary_array",
            "not one of the arrays",
        ),
        ({"kind": "tensor", "arrays": {"x": {"dtype": "int8"}}, "dtype": "int8"}, "schema", "not both"),
        ({"kind": "tensor", "primary_array": "x"}, "schema.primary_array", "no arrays"),
        ({"kind": "tensor", "arrays": {"x": {"shpe": [1]}}}, "schema.arrays.x.shpe", 'Did you mean "shape"'),
        ({"kind": "tabular", "columns": ["a"], "dtypes": {"b": "int64"}}, "schema.dtypes", "not in columns"),
        ({"kind": "tabular", "columns": ["a", "a"]}, "schema.columns[1]", "twice"),
        ({"kind": "tensr"}, "schema.kind", 'Did you mean "tensor"'),
        ({"shape": [1]}, "schema", "kind"),
        ("tensor", "schema", "mapping"),
        ({"kind": "file", "content_type": ""}, "schema.content_type", "non-empty"),
        ({"kind": "json", "shape": [1]}, "schema.shape", "unknown key"),
    ],
)
def test_bad_schemas_are_reported_at_their_location(schema: Any, location: str, needle: str) -> None:
    issue = issue_at(schema_problems(schema), f"stages[0].outputs.x.{location}")
    assert needle in issue["message"] + issue["fix"]


def test_schema_forms_accepted() -> None:
    tab = parse_contract({"columns": ["a", "b"], "dtypes": {"a": "float32"}})
    assert isinstance(tab, TabularSchema)  # kind inferred
    multi = parse_contract(
        {
            "kind": "tensor",
            "arrays": {
                "ids": {"shape": [None, 128], "dtype": "int64", "role": "features"},
                "mask": {
                    "shape": [None, 128],
                    "dtype": "bool",
                    "feature_names": {"kind": "none", "reason": "x"},
                },
            },
            "primary_array": "ids",
            "vocab_size": 50000,
        }
    )
    assert (
        isinstance(multi, TensorSchema) and multi.arrays is not None and set(multi.arrays) == {"ids", "mask"}
    )
    held = parse_contract(
        {
            "kind": "tensor",
            "shape": ["{batch}", -1, "{hidden}"],
            "dtype": "{dtype}",
            "rank": "{rank}",
            "vocab_size": "{vocab}",
        }
    )
    assert isinstance(held, TensorSchema) and held.shape == ["{batch}", -1, "{hidden}"]
    assert parse_contract({"kind": "tabular", "columns": "{cols}", "dtypes": {"a": "{t}"}}) is not None
    assert parse_contract({"kind": "tensor", "dtype": "<f4"}) is not None


dims = st.one_of(st.none(), st.just(-1), st.integers(min_value=0, max_value=10**6))
bad_dims = st.one_of(
    st.integers(max_value=-2), st.booleans(), st.floats(allow_nan=False), st.text(max_size=3)
)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(dims, max_size=6), dtype=st.sampled_from(["float32", "int64", "uint8", "bool", "<f8"]))
def test_property_valid_tensor_schemas_round_trip(shape: list[Any], dtype: str) -> None:
    contract = parse_contract({"kind": "tensor", "shape": shape, "dtype": dtype, "rank": len(shape)})
    assert isinstance(contract, TensorSchema)
    assert contract.shape == shape and contract.dtype == dtype


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(dims, max_size=4), bad=bad_dims, where=st.integers(min_value=0, max_value=4))
def test_property_invalid_dimension_is_rejected_at_its_index(shape: list[Any], bad: Any, where: int) -> None:
    if isinstance(bad, str) and bad.startswith("{"):
        return
    position = min(where, len(shape))
    shape.insert(position, bad)
    with pytest.raises(ValidationError) as info:
        parse_contract({"kind": "tensor", "shape": shape})
    assert info.value.errors()[0]["ctx"]["sub"] == f"[{position}]"


# --- stage lookup and the graph ---------------------------------------------------------------------
def chain(*edges: tuple[str, str], names: list[str] | None = None) -> Pipeline:
    """A pipeline whose stages read ``x`` from the named upstream (consumer, producer) pairs."""
    order = names or sorted({n for e in edges for n in e})
    stages = []
    for name in order:
        inputs = {
            f"from_{up}": {"from_stage": up, "signal": "x", "schema": None}
            for consumer, up in edges
            if consumer == name
        }
        stages.append({"name": name, "inputs": inputs, "outputs": {"x": out()}})
    return Pipeline.model_validate({"stages": stages})


def test_stage_lookup_suggests() -> None:
    p = parse_pipeline(SEED_PIPELINE, "pipeline.yaml")
    with pytest.raises(NotFound) as info:
        p.stage("trian")
    assert 'Did you mean "train"' in info.value.message and "preprocess" in (info.value.fix or "")


def test_topological_order_follows_edges_not_declaration() -> None:
    # declared consumer-first: a forward reference is fine
    p = chain(("train", "prep"), ("eval", "train"), ("eval", "prep"), names=["eval", "train", "prep"])
    assert p.topological_order() == ["prep", "train", "eval"]
    assert p.topological_order(["eval", "prep"]) == ["prep", "eval"]
    assert p.closure(["train"]) == {"train", "prep"}
    assert p.closure(["train"], direction="downstream") == {"train", "eval"}
    with pytest.raises(InvalidInput):
        p.topological_order(["train", "train"])
    with pytest.raises(NotFound):
        p.topological_order(["trian"])


def test_topological_order_refuses_cycles_naming_them() -> None:
    p = chain(("a", "c"), ("b", "a"), ("c", "b"), ("d", "d"))
    assert p.find_cycles() == [["a", "b", "c", "a"]]
    with pytest.raises(InvalidInput) as info:
        p.topological_order()
    assert "a -> b -> c -> a" in info.value.message and "d -> d" in info.value.message


def test_parsing_writes_nothing(tmp_path: Path) -> None:
    make_project(tmp_path, "stages:\n  - name: a\n    outputs: {x: {type: npyy}}\n")
    before = tree_digest(tmp_path)
    with pytest.raises(InvalidInput):
        load_pipeline(tmp_path)
    assert tree_digest(tmp_path) == before


def test_pipeline_file_symlinked_out_of_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(SEED_PIPELINE)
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pipeline.yaml").symlink_to(outside)
    with pytest.raises(InvalidInput) as info:
        load_pipeline(root)
    assert "outside" in info.value.message and info.value.fix
