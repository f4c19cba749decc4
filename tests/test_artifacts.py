"""promote_artifact and the auto-registration of artifact outputs, on real output files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from goldfish.sources.artifacts import default_source_name
from goldfish.errors import Conflict, GoldfishError, InvalidInput, NotFound
from goldfish.pipelines.model import parse_pipeline
from goldfish.project import Project
from tests.source_helpers import REASON, csv_meta, new_project, npy_meta, output_row, put_run, snapshot, write_npy

RUN = "stage-1a2b3c4d"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project(tmp_path)


def outputs_dir(project: Project, run_id: str = RUN) -> Path:
    return project.runs_dir / run_id / "outputs"


def completed_run(project: Project, *, state: str = "completed", run_id: str = RUN) -> tuple[Path, int]:
    """A run whose declared output ``features`` is a real npy in its outputs dir; it read source raw."""
    path = outputs_dir(project, run_id) / "features.npy"
    size = write_npy(path)
    inputs = {"raw": {"kind": "source", "source": "raw", "location": "/data/raw.npy", "type": "npy",
                      "format": "npy"},
              "prev": {"kind": "stage", "run_id": "stage-99999999", "source": None, "location": "/x",
                       "type": "npy", "format": "npy"}}
    put_run(project, run_id, state=state, outputs={"features": output_row(path, "npy")}, inputs=inputs)
    return path, size


def promote(project: Project, meta: dict[str, Any], **kw: Any) -> Any:
    args = {"job_id": RUN, "output_name": "features", "source_name": "feat_promoted", "reason": REASON,
            "metadata": meta, **kw}
    return project.sources.promote_artifact(**args)


def refused(project: Project, exc: type[GoldfishError], call: Any, *needles: str) -> None:
    before = snapshot(project)
    with pytest.raises(exc) as info:
        call()
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    assert snapshot(project) == before


def test_promote_from_completed_run(project: Project) -> None:
    path, size = completed_run(project)
    result = promote(project, npy_meta(None), description=npy_meta(None)["description"], format="npy")
    row = project.sources.row("feat_promoted")
    assert row is not None
    assert row["location"] == str(path.resolve()) and row["created_by"] == f"run:{RUN}"
    assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and row["size_bytes"] == size
    assert row["lineage"] == {"parent_sources": ["raw"], "run_id": RUN, "output_name": "features",
                              "workspace": "ws1", "stage": "train"}
    assert result.lineage.parent_sources == ["raw"] and result.lineage.run_id == RUN
    event = project.store.read_events("audit")[0][-1]
    assert event["op"] == "promote_artifact" and event["workspace"] == "ws1" and event["reason"] == REASON
    lineage = project.sources.manage_sources("lineage", name="feat_promoted").lineage
    assert lineage is not None and lineage.produced_by_run is not None
    assert lineage.produced_by_run.run_id == RUN and lineage.produced_by_run.state == "completed"
    assert lineage.output_name == "features"
    assert [(p.name, p.exists) for p in lineage.parents] == [("raw", False)]
    assert project.sources.manage_sources("list", created_by=f"run:{RUN}").total == 1
    assert project.sources.verify("feat_promoted") is None


@pytest.mark.parametrize("state", ["running", "post_run", "failed", "canceled"])
def test_promote_refused_unless_completed(project: Project, state: str) -> None:
    completed_run(project, state=state)
    fix = "Wait for it" if state in ("running", "post_run") else "fix the stage"
    refused(project, InvalidInput, lambda: promote(project, npy_meta(None)), f"is {state}, not completed", fix)


def test_promote_refusals_change_nothing(project: Project, tmp_path: Path) -> None:
    path, size = completed_run(project)
    meta = npy_meta(None)
    refused(project, NotFound, lambda: promote(project, meta, job_id="stage-00000000"), "not found")
    refused(project, InvalidInput, lambda: promote(project, meta, job_id="job-1"), "stage run id")
    refused(project, InvalidInput, lambda: promote(project, meta, output_name="featurs"),
            "declares no output 'featurs'", 'Did you mean "features"')
    refused(project, InvalidInput, lambda: promote(project, meta, reason="short"), "reason")
    refused(project, InvalidInput, lambda: promote(project, npy_meta(size + 1)), f"is {size} bytes")
    refused(project, InvalidInput, lambda: promote(project, meta, description="Another description entirely"),
            "differs from the description argument")
    refused(project, InvalidInput, lambda: promote(project, csv_meta(None)), "declared as 'npy'")
    refused(project, InvalidInput, lambda: promote(project, meta, source_name="bad name"), "source name")
    promote(project, meta, source_name="taken")
    refused(project, Conflict, lambda: promote(project, meta, source_name="taken"), "already exists")

    def with_output(out: dict[str, Any]) -> None:
        put_run(project, RUN, outputs={"features": out})

    with_output({**output_row(path, "npy"), "exists": False})
    refused(project, InvalidInput, lambda: promote(project, meta), "did not write output")
    outside = tmp_path / "secret.npy"
    write_npy(outside)
    with_output(output_row(outputs_dir(project) / ".." / ".." / ".." / ".." / outside.name, "npy"))
    refused(project, InvalidInput, lambda: promote(project, meta), "outside the run's outputs")
    link = outputs_dir(project) / "link.npy"
    os.symlink(outside, link)
    with_output(output_row(link, "npy"))
    refused(project, InvalidInput, lambda: promote(project, meta), "symbolic link")
    folder = outputs_dir(project) / "shards"
    folder.mkdir()
    (folder / "a.npy").write_bytes(b"x")
    with_output({**output_row(folder, "directory"), "size_bytes": 1})
    refused(project, InvalidInput, lambda: promote(project, meta), "Directory sources are rejected", "npz")


# --------------------------------------------------------------------------- auto-registration

PIPELINE = """
stages:
  - name: train
    outputs:
      features:
        type: npy
        schema: null
        artifact: true
        metadata: {meta}
      table:
        type: csv
        schema: null
        artifact: true
        source_name: fixed_table
        metadata: {csv}
      bare:
        type: npy
        schema: null
        artifact: true
      broken:
        type: npy
        schema: null
        artifact: true
        metadata: {{"schema_version": 1, "description": "short"}}
      plain:
        type: npy
        schema: null
"""


def _pipeline(meta: dict[str, Any], csv: dict[str, Any]) -> Any:
    import json

    return parse_pipeline(PIPELINE.format(meta=json.dumps(meta), csv=json.dumps(csv)), "pipeline.yaml")


def test_auto_register_outputs(project: Project) -> None:
    from tests.source_helpers import write_csv

    out = outputs_dir(project)
    paths = {name: out / f"{name}.npy" for name in ("features", "bare", "broken", "plain")}
    for p in paths.values():
        write_npy(p)
    write_csv(out / "table.csv")
    outputs = {n: output_row(p, "npy") for n, p in paths.items()}
    outputs["table"] = output_row(out / "table.csv", "csv")
    run = put_run(project, RUN, outputs=outputs, inputs={})
    stage = _pipeline(npy_meta(None), csv_meta(None)).stage("train")

    findings = project.sources.auto_register_outputs(run, stage)
    by_output = {f["signal"]: f for f in findings}
    auto_name = default_source_name("ws1", "train", "features", RUN)
    assert auto_name == "ws1-train-features-1a2b3c4d"
    assert by_output["features"]["severity"] == "info" and auto_name in by_output["features"]["message"]
    assert by_output["table"]["severity"] == "info" and project.sources.row("fixed_table") is not None
    assert by_output["bare"]["severity"] == "warning" and "no metadata" in by_output["bare"]["message"]
    assert by_output["broken"]["severity"] == "warning" and "description" in by_output["broken"]["message"]
    assert "plain" not in by_output
    row = project.sources.row(auto_name)
    assert row is not None and row["created_by"] == f"run:{RUN}" and row["lineage"]["output_name"] == "features"

    # The same run again (post_run redone): nothing new, no warning.
    again = project.sources.auto_register_outputs(run, stage)
    assert not [f for f in again if f["signal"] in ("features", "table")]
    # Another run of the stage: its own default name, but the fixed name is taken.
    other = "stage-5e6f7a8b"
    for p in paths.values():
        write_npy(outputs_dir(project, other) / p.name)
    write_csv(outputs_dir(project, other) / "table.csv")
    outputs2 = {n: output_row(outputs_dir(project, other) / Path(o["location"]).name, o["format"])
                for n, o in outputs.items()}
    run2 = put_run(project, other, outputs=outputs2)
    later = {f["signal"]: f for f in project.sources.auto_register_outputs(run2, stage)}
    assert later["features"]["severity"] == "info"
    assert later["table"]["severity"] == "warning" and "already exists" in later["table"]["message"]


def test_auto_register_ignores_unfinished_runs(project: Project) -> None:
    path = outputs_dir(project) / "features.npy"
    write_npy(path)
    run = put_run(project, RUN, state="failed", outputs={"features": output_row(path, "npy")})
    stage = _pipeline(npy_meta(None), csv_meta(None)).stage("train")
    before = snapshot(project)
    assert project.sources.auto_register_outputs(run, stage) == []
    assert snapshot(project) == before


def test_default_name_fits_the_name_rules() -> None:
    from goldfish import names

    name = default_source_name("w" * 64, "s" * 64, "o" * 64, "stage-abcdef12")
    assert len(name) <= 64 and name.endswith("-abcdef12")
    assert names.source_name(name) == name


def test_source_name_needs_artifact() -> None:
    with pytest.raises(InvalidInput, match="artifact: true"):
        parse_pipeline("stages:\n  - name: a\n    outputs:\n      x: {type: npy, schema: null, source_name: y}\n",
                       "pipeline.yaml")


def test_dry_run_validation_warns_about_unregistrable_artifacts(tmp_path: Path) -> None:
    from goldfish.pipelines.validate import validate_pipeline

    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "train.py").write_text("def main():\n    pass\n")
    report = validate_pipeline(_pipeline(npy_meta(None), npy_meta(None)), tmp_path)
    warnings = {w.location: w.message for w in report.warnings}
    assert "no metadata:" in warnings["stages[0].outputs.bare.metadata"]
    assert "invalid" in warnings["stages[0].outputs.broken.metadata"]
    assert "is 'npy' but output table is 'csv'" in warnings["stages[0].outputs.table.metadata.source.format"]
    assert not any(loc.startswith("stages[0].outputs.features.metadata") for loc in warnings)
    assert not any(loc.startswith("stages[0].outputs.plain.metadata") for loc in warnings)


def test_prepare_writes_nothing_and_commit_joins_the_completing_transaction(project: Project) -> None:
    path = outputs_dir(project) / "features.npy"
    write_npy(path)
    run = put_run(project, RUN, state="post_run", outputs={"features": output_row(path, "npy")})
    stage = _pipeline(npy_meta(None), csv_meta(None)).stage("train")
    before = snapshot(project)
    plan = project.sources.prepare_artifacts(run, stage)
    assert snapshot(project) == before
    assert [r["name"] for r in plan.rows] == ["ws1-train-features-1a2b3c4d"]
    with project.store.transaction() as tx:
        tx.table("runs", "ws/ws1").patch(RUN, {"state": "completed"})
        findings = project.sources.commit_artifacts(tx, plan)
    assert [f["severity"] for f in findings if f["signal"] == "features"] == ["info"]
    assert project.sources.row("ws1-train-features-1a2b3c4d") is not None
