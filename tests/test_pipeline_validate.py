"""validate_pipeline: graph, contracts across edges, modules, stage configs, datasets, profiles."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from goldfish.errors import InvalidInput
from goldfish.pipelines.validate import ValidationReport, validate_pipeline
from goldfish.pipelines.model import Pipeline, load_pipeline, parse_pipeline
from goldfish.pipelines.schema_compat import compare_schemas
from goldfish.pipelines.signal_schema import parse_contract
from tests.pipeline_helpers import SEED_PIPELINE, issue_at, make_project, tree_digest

TENSOR = {"kind": "tensor", "shape": [None, 768], "dtype": "float32"}


def check(
    root: Path,
    doc: dict[str, Any] | str,
    *,
    configs: dict[str, Any] | None = None,
    modules: bool = True,
    **kwargs: Any,
) -> ValidationReport:
    make_project(root, doc, configs=configs, modules=modules)
    report = validate_pipeline(load_pipeline(root), root, **kwargs)
    for issue in report.errors + report.warnings:
        assert issue.location and issue.message and issue.fix, issue
    return report


def two_stage(
    produced: Any = TENSOR,
    wanted: Any = TENSOR,
    *,
    out_type: str = "npy",
    in_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "stages": [
            {"name": "prep", "outputs": {"features": {"type": out_type, "schema": produced}}},
            {
                "name": "train",
                "inputs": {"features": {"from_stage": "prep", "schema": wanted, **(in_extra or {})}},
                "outputs": {"model": {"schema": None}},
            },
        ]
    }


# --- the seed example ------------------------------------------------------------------------------
def test_seed_pipeline_validates(tmp_path: Path) -> None:
    report = check(tmp_path, SEED_PIPELINE)
    assert report.errors == [] and report.ok
    assert report.stages == ["preprocess", "train", "evaluate"]
    warned = {w.location for w in report.warnings}
    # null schemas are allowed with a warning; missing stage configs are warnings
    assert {
        "stages[1].outputs.model.schema",
        "stages[2].inputs.model.schema",
        "stages[2].outputs.metrics.schema",
        "configs/train.yaml",
    } <= warned
    assert any("no contract" in w.message for w in report.warnings)
    report.raise_for_errors()


def test_seed_pipeline_with_registered_source(tmp_path: Path) -> None:
    source = {
        "kind": "tabular",
        "row_count": 10,
        "columns": ["price", "volume", "ts"],
        "dtypes": {"price": "float32", "volume": "int64", "ts": "string"},
    }
    report = check(tmp_path, SEED_PIPELINE, source_schemas={"sales_v1": source}.get)
    assert report.errors == []
    report = check(tmp_path, SEED_PIPELINE, source_schemas={"sales_v2": source}.get)
    issue = issue_at(report.errors, "stages[0].inputs.raw_data.dataset")
    assert "not a registered source" in issue.message and "register_source first" in (issue.fix or "")


# --- graph -----------------------------------------------------------------------------------------
def dag_doc(n: int, edges: set[tuple[int, int]], order: list[int]) -> dict[str, Any]:
    """Stages s0..s{n-1} declared in ``order``; edge (u, v) means s{v} reads s{u}'s output."""
    stages = []
    for v in order:
        inputs = {
            f"in_{u}": {"from_stage": f"s{u}", "signal": "out", "schema": None}
            for (u, w) in sorted(edges)
            if w == v
        }
        stages.append(
            {
                "name": f"s{v}",
                "inputs": inputs,
                "outputs": {"out": {"type": "npy", "schema": {"kind": "tensor", "dtype": "float32"}}},
            }
        )
    return {"stages": stages}


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, set[tuple[int, int]], list[int]]:
    n = draw(st.integers(min_value=1, max_value=7))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    edges = set(draw(st.lists(st.sampled_from(pairs), unique=True))) if pairs else set()
    order = draw(st.permutations(range(n)))
    return n, edges, list(order)


def validate_doc(root: Path, doc: dict[str, Any]) -> ValidationReport:
    pipeline = Pipeline.model_validate(doc)
    return validate_pipeline(pipeline, root)


@pytest.fixture(scope="module")
def modules_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dag")
    (root / "modules").mkdir()
    for i in range(8):
        (root / "modules" / f"s{i}.py").write_text("")
    return root


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dag=dags())
def test_property_random_dags_are_accepted(
    modules_root: Path, dag: tuple[int, set[tuple[int, int]], list[int]]
) -> None:
    n, edges, order = dag
    report = validate_doc(modules_root, dag_doc(n, edges, order))
    assert report.errors == []
    position = {name: i for i, name in enumerate(report.stages)}
    assert sorted(position) == sorted(f"s{i}" for i in range(n))
    for u, v in edges:
        assert position[f"s{u}"] < position[f"s{v}"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dag=dags(), data=st.data())
def test_property_injected_cycles_are_always_named(
    modules_root: Path, dag: tuple[int, set[tuple[int, int]], list[int]], data: st.DataObject
) -> None:
    n, edges, order = dag
    # close a cycle: pick a path u -> ... -> w along existing edges (or u == w for a self reference)
    succ = {i: sorted(v for (u, v) in edges if u == i) for i in range(n)}
    path = [data.draw(st.integers(min_value=0, max_value=n - 1))]
    while succ[path[-1]] and data.draw(st.booleans()):
        path.append(data.draw(st.sampled_from(succ[path[-1]])))
    back = (path[-1], path[0])
    assume(back not in edges)
    report = validate_doc(modules_root, dag_doc(n, edges | {back}, order))
    named = [e for e in report.errors if "cycle" in e.message]
    assert named, report.errors
    all_edges = edges | {back}
    for error in named:
        chain = error.message.split(": ", 1)[1].rstrip(".").split(" -> ")
        chain[0] = chain[0].split()[-1]
        assert chain[0] == chain[-1]
        for a, b in itertools.pairwise(chain):
            assert (int(a[1:]), int(b[1:])) in all_edges, (chain, all_edges)
    with pytest.raises(InvalidInput):
        Pipeline.model_validate(dag_doc(n, edges | {back}, order)).topological_order()


def test_longer_cycle_and_self_reference(tmp_path: Path) -> None:
    doc = {
        "stages": [
            {
                "name": "a",
                "inputs": {"x": {"from_stage": "c", "signal": "x", "schema": None}},
                "outputs": {"x": {"schema": None}},
            },
            {
                "name": "b",
                "inputs": {"x": {"from_stage": "a", "schema": None}},
                "outputs": {"x": {"schema": None}},
            },
            {
                "name": "c",
                "inputs": {"x": {"from_stage": "b", "schema": None}},
                "outputs": {"x": {"schema": None}},
            },
            {
                "name": "d",
                "inputs": {"x": {"from_stage": "d", "schema": None}},
                "outputs": {"x": {"schema": None}},
            },
        ]
    }
    report = check(tmp_path, doc)
    cycle = issue_at(report.errors, "stages[0]")
    assert "a -> b -> c -> a" in cycle.message and "from_stage" in (cycle.fix or "")
    assert "d -> d" in issue_at(report.errors, "stages[3].inputs.x.from_stage").message
    assert report.stages == ["a", "b", "c", "d"]  # declaration order when cyclic


def test_forward_reference_is_fine(tmp_path: Path) -> None:
    doc = two_stage()
    doc["stages"].reverse()
    report = check(tmp_path, doc)
    assert report.errors == [] and report.stages == ["prep", "train"]


def test_unknown_upstream_stage_and_signal(tmp_path: Path) -> None:
    doc = two_stage()
    doc["stages"][1]["inputs"]["features"]["from_stage"] = "prepp"
    issue = issue_at(check(tmp_path, doc).errors, "stages[1].inputs.features.from_stage")
    assert 'Did you mean "prep"' in issue.message
    doc = two_stage(in_extra={"signal": "featurs"})
    doc["stages"][0]["outputs"]["stats"] = {"type": "json", "schema": None}
    issue = issue_at(check(tmp_path, doc).errors, "stages[1].inputs.features.signal")
    assert 'Did you mean "features"' in issue.message and "features, stats" in issue.message
    assert "signal:" in (issue.fix or "")
    doc = two_stage()
    doc["stages"][1]["inputs"]["feats"] = doc["stages"][1]["inputs"].pop("features")
    issue = issue_at(check(tmp_path, doc).errors, "stages[1].inputs.feats.signal")
    assert "defaults to the input name" in issue.message


def test_type_mismatch_across_edge(tmp_path: Path) -> None:
    report = check(tmp_path, two_stage(in_extra={"type": "npz"}))
    issue = issue_at(report.errors, "stages[1].inputs.features.type")
    assert "npz" in issue.message and "npy" in issue.message and "type: npy" in (issue.fix or "")
    # type: dataset on a from_stage input is a mismatch too
    report = check(tmp_path, two_stage(wanted=None, in_extra={"type": "dataset"}))
    issue_at(report.errors, "stages[1].inputs.features.type")


# --- contracts across edges -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "produced,wanted,needle",
    [
        (
            {"kind": "tensor", "shape": [None, 512], "dtype": "float32"},
            TENSOR,
            "dim 1: produced 512, expected 768",
        ),
        ({"kind": "tensor", "shape": [None, 768], "dtype": "float64"}, TENSOR, "dtype differs"),
        ({"kind": "tensor", "shape": [None, 768, 1], "dtype": "float32"}, TENSOR, "rank differs"),
        ({"kind": "tensor", "rank": 3}, TENSOR, "rank differs"),
        ({"kind": "json"}, TENSOR, "kind differs"),
        ({"kind": "tensor", "arrays": {"a": {"shape": [3]}, "b": {"shape": [3]}}}, TENSOR, "primary_array"),
        (
            {"kind": "tensor", "arrays": {"a": {"dtype": "int64"}}},
            {"kind": "tensor", "arrays": {"b": {"dtype": "int64"}}},
            "'b' is not produced",
        ),
        ({"kind": "tensor", "vocab_size": 100}, {"kind": "tensor", "vocab_size": 200}, "vocab_size"),
    ],
)
def test_schema_mismatch_across_edge(tmp_path: Path, produced: Any, wanted: Any, needle: str) -> None:
    report = check(tmp_path, two_stage(produced, wanted, out_type="directory"))
    issue = issue_at(report.errors, "stages[1].inputs.features.schema")
    assert needle in issue.message
    assert "stages[0].outputs.features.schema" in (issue.fix or "")


@pytest.mark.parametrize(
    "produced,wanted",
    [
        ({"kind": "tensor", "shape": [32, -1], "dtype": "f4"}, TENSOR),
        (
            {
                "kind": "tensor",
                "arrays": {"x": {"shape": [None, 768], "dtype": "float32"}},
                "primary_array": "x",
            },
            TENSOR,
        ),
        (TENSOR, {"kind": "tensor", "arrays": {"x": {"shape": [7, 768]}}}),
        (TENSOR, None),
        ({"kind": "tensor"}, TENSOR),
    ],
)
def test_compatible_contracts_pass(tmp_path: Path, produced: Any, wanted: Any) -> None:
    assert check(tmp_path, two_stage(produced, wanted, out_type="directory")).errors == []


def test_tabular_contracts(tmp_path: Path) -> None:
    produced = {"kind": "tabular", "columns": ["a", "b", "c"], "dtypes": {"a": "float32", "b": "int64"}}
    ok = {"kind": "tabular", "columns": ["b", "a"], "dtypes": {"a": "float32"}}
    assert check(tmp_path, two_stage(produced, ok, out_type="csv")).errors == []
    bad = {"kind": "tabular", "columns": ["a", "b", "z"], "dtypes": {"b": "float64"}}
    issue = issue_at(
        check(tmp_path, two_stage(produced, bad, out_type="csv")).errors, "stages[1].inputs.features.schema"
    )
    assert "columns z are not produced" in issue.message and "column 'b' dtype differs" in issue.message


shape_dims = st.one_of(st.none(), st.just(-1), st.integers(min_value=0, max_value=4))


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.tuples(shape_dims, shape_dims), max_size=5), extra=st.integers(min_value=0, max_value=1)
)
def test_property_shapes_compatible_iff_dims_match_or_wildcard(
    pairs: list[tuple[Any, Any]], extra: int
) -> None:
    produced = [a for a, _ in pairs]
    wanted = [b for _, b in pairs] + [1] * extra
    problems = compare_schemas(
        parse_contract({"kind": "tensor", "shape": produced}),
        parse_contract({"kind": "tensor", "shape": wanted}),
    )
    wild = (None, -1)
    expected = extra == 0 and all(a in wild or b in wild or a == b for a, b in pairs)
    assert (problems == []) == expected, (produced, wanted, problems)
    if extra:
        assert "rank differs" in problems[0]


def test_edge_check_once_through_validate_with_wildcards(tmp_path: Path) -> None:
    ok = check(
        tmp_path, two_stage({"kind": "tensor", "shape": [-1, 768]}, {"kind": "tensor", "shape": [64, None]})
    )
    assert ok.errors == []


# --- modules ---------------------------------------------------------------------------------------
def test_missing_module(tmp_path: Path) -> None:
    report = check(tmp_path, SEED_PIPELINE, modules=False)
    issue = issue_at(report.errors, "modules/train.py")
    assert "does not exist" in issue.message and "Create modules/train.py" in (issue.fix or "")
    assert len([e for e in report.errors if e.location.startswith("modules/")]) == 3


def test_rust_module_and_runtime_hint(tmp_path: Path) -> None:
    doc = {"stages": [{"name": "encode", "runtime": "rust", "outputs": {"x": {"schema": None}}}]}
    assert check(tmp_path, doc).errors == []
    (tmp_path / "modules" / "encode.rs").rename(tmp_path / "modules" / "encode.py")
    issue = issue_at(validate_pipeline(load_pipeline(tmp_path), tmp_path).errors, "modules/encode.rs")
    assert "runtime: python" in (issue.fix or "")


def test_module_symlink_out_of_root_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("")
    root = tmp_path / "ws"
    make_project(root, two_stage())
    (root / "modules" / "train.py").unlink()
    (root / "modules" / "train.py").symlink_to(outside)
    issue = issue_at(validate_pipeline(load_pipeline(root), root).errors, "modules/train.py")
    assert "outside" in issue.message


# --- stage configs, placeholders, config_schema ------------------------------------------------------
def test_config_yaml_error_and_missing_file(tmp_path: Path) -> None:
    report = check(tmp_path, two_stage(), configs={"prep": "lr: [1, 2\n"})
    issue = next(e for e in report.errors if e.location.startswith("configs/prep.yaml"))
    assert "line" in issue.location and "YAML" in issue.message
    assert "does not exist" in issue_at(report.warnings, "configs/train.yaml").message


def test_config_schema_checked_against_merged_config(tmp_path: Path) -> None:
    doc = two_stage()
    doc["stages"][1]["config_schema"] = {
        "lr": "float",
        "epochs": {"type": "int", "required": True},
        "opt.momentum": "number",
        "use_amp": "bool",
        "tag": "str",
    }
    doc["stages"][1]["defaults"] = {"lr": 1, "opt": {"momentum": True}}
    report = check(tmp_path, doc, configs={"train": {"use_amp": "yes", "tag": "x"}})
    errs = report.errors
    assert not any(e.location.endswith(":lr") for e in errs)  # an int is a float
    momentum = issue_at(errs, "pipeline.yaml:stages[1].defaults:opt.momentum")
    assert "number" in momentum.message and "true/false are not numbers" in (momentum.fix or "")
    assert "bool" in issue_at(errs, "configs/train.yaml:use_amp").message
    required = issue_at(errs, "configs/train.yaml:epochs")
    assert "requires epochs" in required.message and "configs/train.yaml" in (required.fix or "")
    fixed = check(tmp_path, doc, configs={"train": {"use_amp": True, "epochs": 3, "opt": {"momentum": 0.9}}})
    assert fixed.errors == []


def test_placeholders_resolved_then_compared(tmp_path: Path) -> None:
    produced = {"kind": "tensor", "shape": [None, "{hidden}"], "dtype": "{dtype}"}
    doc = two_stage(produced, TENSOR)
    doc["stages"][0]["defaults"] = {"dtype": "float32"}
    report = check(tmp_path, doc, configs={"prep": {"hidden": 768}})
    assert report.errors == []
    report = check(tmp_path, doc, configs={"prep": {"hidden": 512}})
    assert "dim 1: produced 512" in issue_at(report.errors, "stages[1].inputs.features.schema").message
    report = check(tmp_path, doc, configs={"prep": {"hiden": 768}})
    issue = issue_at(report.errors, "stages[0].outputs.features.schema.shape[1]")
    assert "hidden" in issue.message and "configs/prep.yaml" in issue.message
    assert "hidden: <value>" in (issue.fix or "")
    report = check(tmp_path, doc, configs={"prep": {"hidden": "wide"}})
    assert (
        "after filling in config params"
        in issue_at(report.errors, "stages[0].outputs.features.schema.shape[1]").message
    )
    # validating only the consumer: the upstream's unresolvable contract is a warning, not its error
    report = check(tmp_path, doc, configs={"prep": {"hiden": 768}}, stages=["train"])
    assert report.errors == []
    assert "could not be resolved" in issue_at(report.warnings, "stages[1].inputs.features.schema").message
    # a config override fills placeholders too
    report = check(
        tmp_path, doc, configs={"prep": {"hidden": 512}}, stages=["prep"], config_override={"hidden": 768}
    )
    assert report.errors == []


def test_goldfish_env_key_is_refused(tmp_path: Path) -> None:
    report = check(
        tmp_path, two_stage(), configs={"train": {"environment": {"GOLDFISH_RUN_ID": "x", "OK": 1}}}
    )
    issue = issue_at(report.errors, "configs/train.yaml:environment.GOLDFISH_RUN_ID")
    assert "reserved" in issue.message and "Rename" in (issue.fix or "")


def test_flat_override_for_several_stages_is_refused(tmp_path: Path) -> None:
    report = check(tmp_path, two_stage(), config_override={"lr": 0.1})
    issue = issue_at(report.errors, "config_override")
    assert "2 stages" in issue.message and "Key it by stage name" in (issue.fix or "")
    assert check(tmp_path, two_stage(), config_override={"train": {"lr": 0.1}}).errors == []
    assert check(tmp_path, two_stage(), stages=["train"], config_override={"lr": 0.1}).errors == []


# --- requests and inputs ---------------------------------------------------------------------------
def test_requested_stages(tmp_path: Path) -> None:
    report = check(tmp_path, SEED_PIPELINE, stages=["evaluate", "trian", "evaluate"])
    assert 'Did you mean "train"' in issue_at(report.errors, "request.stages[1]").message
    assert "twice" in issue_at(report.errors, "request.stages[2]").message
    assert report.stages == ["evaluate"]
    report = check(tmp_path, SEED_PIPELINE, stages=["evaluate", "preprocess"])
    assert report.stages == ["preprocess", "evaluate"] and report.errors == []
    assert issue_at(check(tmp_path, SEED_PIPELINE, stages=[]).errors, "stages")


def test_input_without_source_needs_an_override(tmp_path: Path) -> None:
    doc = {
        "stages": [
            {
                "name": "train",
                "inputs": {"features": {"type": "npy", "schema": TENSOR}},
                "outputs": {"model": {"schema": None}},
            }
        ]
    }
    issue = issue_at(check(tmp_path, doc).errors, "stages[0].inputs.features")
    assert "inputs_override" in (issue.fix or "")
    assert check(tmp_path, doc, overridden_inputs={"features"}).errors == []
    assert check(tmp_path, doc, overridden_inputs={"train": {"features"}}).errors == []
    report = check(tmp_path, doc, overridden_inputs={"train": {"featurs"}})
    assert 'Did you mean "features"' in issue_at(report.errors, "inputs_override.train.featurs").message
    report = check(tmp_path, doc, overridden_inputs={"trian": {"features"}})
    issue_at(report.errors, "inputs_override.trian")


def test_dataset_input_against_source_metadata(tmp_path: Path) -> None:
    doc = {
        "stages": [
            {
                "name": "train",
                "inputs": {
                    "x": {
                        "dataset": "emb",
                        "schema": {"kind": "tensor", "shape": [None, 768], "dtype": "float32"},
                    }
                },
                "outputs": {"m": {"schema": None}},
            }
        ]
    }
    metadata = {
        "schema_version": 1,
        "description": "embeddings of sales text rows",
        "source": {},
        "schema": {
            "kind": "tensor",
            "primary_array": "emb",
            "arrays": {
                "emb": {
                    "role": "embeddings",
                    "shape": [1000, 768],
                    "dtype": "float32",
                    "feature_names": {
                        "kind": "pattern",
                        "template": "e{i}",
                        "start": 0,
                        "count": 768,
                        "sample": [],
                    },
                }
            },
        },
    }
    assert check(tmp_path, doc, source_schemas={"emb": metadata}.get).errors == []
    metadata["schema"]["arrays"]["emb"]["shape"] = [1000, 512]
    issue = issue_at(
        check(tmp_path, doc, source_schemas={"emb": metadata}.get).errors, "stages[0].inputs.x.schema"
    )
    assert "registered source emb" in issue.message and "dim 1" in issue.message
    tabular = {"kind": "tabular", "row_count": 3, "columns": ["a"], "dtypes": {"a": "int64"}}
    issue = issue_at(
        check(tmp_path, doc, source_schemas={"emb": tabular}.get).errors, "stages[0].inputs.x.schema"
    )
    assert "kind differs" in issue.message
    # overridden dataset inputs are not checked against the registry
    assert check(tmp_path, doc, source_schemas=lambda name: None, overridden_inputs={"x"}).errors == []
    # unreadable metadata: a warning, not a crash
    report = check(tmp_path, doc, source_schemas={"emb": {"kind": "tensor", "arrays": 3}}.get)
    assert (
        report.errors == []
        and "could not be read" in issue_at(report.warnings, "stages[0].inputs.x.schema").message
    )


# --- profiles --------------------------------------------------------------------------------------
def test_gpu_profile_on_local_backend(tmp_path: Path) -> None:
    report = check(tmp_path, two_stage(), configs={"train": {"compute": {"profile": "h100-spot"}}})
    issue = issue_at(report.errors, "configs/train.yaml:compute.profile")
    assert issue.message == "h100-spot needs a GPU on the gce backend; this project uses jobs.backend: local."
    assert issue.fix == ("Use compute.profile: local or cpu-small, or switch jobs.backend to docker (with an"
                         " NVIDIA runtime) or gce.")
    assert (
        check(
            tmp_path, two_stage(), configs={"train": {"compute": {"profile": "h100-spot"}}}, backend="gce"
        ).errors
        == []
    )
    assert check(tmp_path, two_stage(), configs={"train": {"compute": {"profile": "cpu-small"}}}).errors == []


def test_profile_rules_per_backend(tmp_path: Path) -> None:
    report = check(tmp_path, two_stage(), configs={"train": {"compute": {"profile": "cpu-smal"}}})
    assert 'Did you mean "cpu-small"' in issue_at(report.errors, "configs/train.yaml:compute.profile").message
    report = check(tmp_path, two_stage(), configs={"train": {"compute": {"profile": "local"}}}, backend="gce")
    issue_at(report.errors, "configs/train.yaml:compute.profile")
    report = check(tmp_path, two_stage(), backend="gce")
    assert "cpu-small" in issue_at(report.warnings, "configs/train.yaml:compute.profile").message
    report = check(
        tmp_path,
        two_stage(),
        backend="local",
        configs={"train": {"compute": {"profile": "my-gpu"}}},
        profile_overrides={
            "my-gpu": {
                "machine_type": "g2-standard-4",
                "zones": ["us-central1-a"],
                "boot_disk": {"type": "pd-ssd", "size_gb": 100},
                "gpu": {"accelerator": "nvidia-l4", "count": 1},
            }
        },
    )
    assert "needs a GPU" in issue_at(report.errors, "configs/train.yaml:compute.profile").message
    report = check(tmp_path, two_stage(), profile_overrides={"custom": {"machine_type": "n2-standard-8"}})
    assert "boot_disk" in issue_at(report.errors, "gce.profile_overrides.custom").message
    report = check(tmp_path, two_stage(), profile_overrides=["cpu-small"])  # type: ignore[arg-type]
    assert issue_at(report.errors, "gce.profile_overrides").fix


def test_validation_writes_nothing(tmp_path: Path) -> None:
    doc = two_stage({"kind": "tensor", "shape": [None, 1]}, TENSOR)
    make_project(
        tmp_path,
        doc,
        configs={"train": {"environment": {"GOLDFISH_X": "1"}, "compute": {"profile": "a100-spot"}}},
    )
    before = tree_digest(tmp_path)
    report = validate_pipeline(
        load_pipeline(tmp_path), tmp_path, config_override={"lr": 1}, source_schemas=lambda n: None
    )
    assert len(report.errors) >= 3
    with pytest.raises(InvalidInput) as info:
        report.raise_for_errors()
    assert len(info.value.details["issues"]) == len(report.errors)
    assert tree_digest(tmp_path) == before


def test_report_for_parsed_text_without_files(tmp_path: Path) -> None:
    pipeline = parse_pipeline(yaml.safe_dump(two_stage()), "pipelines/x.yaml")
    report = validate_pipeline(pipeline, tmp_path)
    assert {e.location for e in report.errors} == {"modules/prep.py", "modules/train.py"}


def test_inferred_type_must_suit_the_input_schema(tmp_path: Path) -> None:
    tabular = {"kind": "tabular", "columns": ["a"]}
    report = check(tmp_path, two_stage(None, tabular))  # the input inherits npy from upstream
    issue = issue_at(report.errors, "stages[1].inputs.features.schema")
    assert "npy" in issue.message and "tensor" in (issue.fix or "")
    report = check(tmp_path, two_stage(TENSOR, tabular))  # with an upstream contract: one error, not two
    assert [e.location for e in report.errors] == ["stages[1].inputs.features.schema"]


def test_override_for_a_stage_outside_the_run(tmp_path: Path) -> None:
    report = check(tmp_path, two_stage(), stages=["train"], config_override={"prep": {"lr": 1}})
    issue = issue_at(report.errors, "config_override")
    assert "outside this run" in issue.message and "prep" in (issue.fix or "")


def test_json_input_may_read_a_json_file_source() -> None:
    json_in = parse_contract({"kind": "json"})
    assert (
        compare_schemas(parse_contract({"kind": "file", "content_type": "application/json"}), json_in) == []
    )
    assert compare_schemas(parse_contract({"kind": "file"}), json_in) == []
    assert compare_schemas(parse_contract({"kind": "file", "content_type": "image/png"}), json_in)
    assert compare_schemas(
        parse_contract({"kind": "file", "content_type": "text/csv"}),
        parse_contract({"kind": "file", "content_type": "image/png"}),
    )
