"""Preflight: pipeline/config validation of one stage, source metadata from the store, input errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from goldfish.issues import Issue
from goldfish.sources.metadata import infer_size_and_hash
from goldfish.svs.preflight import preflight
from tests.svs_helpers import make_project, write_app

PIPELINE = """\
stages:
  - name: preprocess
    inputs:
      raw: {dataset: sales, schema: {kind: tabular, columns: [price, volume], dtypes: {price: float32}}}
    outputs:
      features: {type: npy, schema: null}
  - name: train
    config_schema: {lr: {type: float, required: true}}
    inputs:
      features: {from_stage: preprocess, schema: null}
    outputs:
      model: {type: directory, schema: null}
"""
SALES = {"kind": "tabular", "columns": ["price", "volume"], "dtypes": {"price": "float32", "volume": "int64"}}


def setup(tmp_path: Path, metadata: dict[str, Any] | None, **svs: Any) -> tuple[Any, Path, Any]:
    project = make_project(tmp_path, svs=svs)
    if metadata is not None:
        data = tmp_path / "sales.csv"
        data.write_text("price,volume\n1.5,10\n")
        size, digest = infer_size_and_hash(data)
        with project.store.transaction() as tx:
            tx.table("sources").add({"name": "sales", "location": str(data), "format": "csv", "size_bytes": size, "sha256": digest,
                                     "metadata": metadata}, doc_id="sales")
    app = tmp_path / "app"
    pipeline = write_app(app, PIPELINE, {"preprocess": "def main():\n    pass\n", "train": "def main():\n    pass\n"},
                         configs={"train": {"lr": 0.1}, "preprocess": {}})
    return project, app, pipeline


def test_clean_stage_passes_with_warnings(tmp_path: Path) -> None:
    project, app, pipeline = setup(tmp_path, SALES)
    result = preflight(project, app_dir=app, pipeline=pipeline, stage="preprocess")
    assert result.ok
    assert any("no contract" in w.message for w in result.warnings)
    assert [f.severity for f in result.findings("preprocess")] == ["warning"] * len(result.warnings)


def test_unregistered_source_and_schema_mismatch(tmp_path: Path) -> None:
    project, app, pipeline = setup(tmp_path, None)
    result = preflight(project, app_dir=app, pipeline=pipeline, stage="preprocess")
    assert not result.ok and "register_source first" in (result.errors[0].fix or "")
    mismatch = {**SALES, "columns": ["price"], "dtypes": {"price": "float64"}}
    project, app, pipeline = setup(tmp_path / "b", mismatch)
    result = preflight(project, app_dir=app, pipeline=pipeline, stage="preprocess")
    assert [e.location for e in result.errors] == ["stages[0].inputs.raw.schema"]
    assert "registered source sales" in result.errors[0].message
    assert "Preflight found 1 error(s)" in result.error_message()


def test_changed_source_file_is_an_error(tmp_path: Path) -> None:
    project, app, pipeline = setup(tmp_path, SALES)
    (tmp_path / "sales.csv").write_text("price,volume\n1.5,10\n2.5,20\n")
    result = preflight(project, app_dir=app, pipeline=pipeline, stage="preprocess")
    assert [e.location for e in result.errors] == ["stages[0].inputs.raw"]
    assert "changed since registration" in result.errors[0].message


def test_config_errors_and_overrides(tmp_path: Path) -> None:
    project, app, pipeline = setup(tmp_path, SALES)
    bad = preflight(project, app_dir=app, pipeline=pipeline, stage="train", config_override={"lr": "fast"})
    assert not bad.ok and any("lr" in e.location for e in bad.errors)
    good = preflight(project, app_dir=app, pipeline=pipeline, stage="train", config_override={"lr": 0.5})
    assert good.ok


def test_input_errors_are_added(tmp_path: Path) -> None:
    project, app, pipeline = setup(tmp_path, SALES)
    result = preflight(project, app_dir=app, pipeline=pipeline, stage="train",
                       input_errors=["no completed run of preprocess to read features from",
                                     Issue(location="inputs_override.features", message="stage-00000009 failed")],
                       input_warnings=[{"message": "features comes from an older run", "fix": "rerun preprocess"}])
    assert [e.location for e in result.errors] == ["stages[train].inputs", "inputs_override.features"]
    assert result.warnings[-1].fix == "rerun preprocess"


def test_preflight_runs_with_svs_disabled(tmp_path: Path) -> None:
    """An invalid pipeline cannot run: switching SVS off does not skip these checks."""
    project, app, pipeline = setup(tmp_path, None, enabled=False)
    result = preflight(project, app_dir=app, pipeline=pipeline, stage="preprocess")
    assert not result.ok and "register_source first" in (result.errors[0].fix or "")
