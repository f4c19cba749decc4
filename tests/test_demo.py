"""``goldfish demo`` end to end: a real subprocess builds the demo project, and the project it leaves
behind is checked through the same services the MCP tools use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from goldfish.cli import main as cli_main
from goldfish.demo.tour import MARKER, fixture_dir
from goldfish.init import init_project
from goldfish.project import Project

REPO = Path(__file__).resolve().parent.parent
EPOCHS = 30  # fixtures/demo/configs/train.yaml


def run_demo(target: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "goldfish", "demo", "--dir", str(target)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240, check=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    base = tmp_path_factory.mktemp("demo")
    target = base / "demo-project"
    proc = run_demo(target, base)
    assert proc.returncode == 0, f"goldfish demo failed:\n{proc.stdout}\n{proc.stderr}"
    return target, proc


def stage_runs(project: Project, workspace: str) -> dict[str, dict[str, Any]]:
    """The newest stage run of each stage in ``workspace``."""
    newest: dict[str, dict[str, Any]] = {}
    for doc in project.store.table("runs", f"ws/{workspace}").docs():
        if doc["stage"] not in newest or doc["created_at"] > newest[doc["stage"]]["created_at"]:
            newest[doc["stage"]] = doc
    return newest


def test_baseline_is_finalized_with_sane_metrics_and_tagged(demo: tuple[Path, Any]) -> None:
    root, _ = demo
    project = Project.open(root)
    runs = stage_runs(project, "digits_mlp")
    assert set(runs) == {"preprocess", "train", "evaluate"}
    assert {r["pipeline_run_id"] for r in runs.values()} == {runs["evaluate"]["pipeline_run_id"]}
    for doc in runs.values():
        assert doc["state"] == "completed", doc.get("error")
        assert doc["results_status"] == "finalized"
        assert doc["svs"]["review"]["decision"] in ("approved", "warned")
    # One result per pipeline run: evaluate carries it; preprocess and train support it, with no value.
    assert [runs[s]["role"] for s in ("preprocess", "train", "evaluate")] == ["supporting", "supporting", "result"]
    assert runs["preprocess"]["results_final"] is None and runs["train"]["results_final"] is None

    evaluate = runs["evaluate"]
    accuracy = evaluate["metrics_summary"]["val/accuracy"]["last"]
    assert 0.85 < accuracy <= 1.0
    assert evaluate["results_final"]["value"] == pytest.approx(accuracy)
    assert evaluate["ml_outcome"] in ("success", "partial")
    loss = runs["train"]["metrics_summary"]["train/loss"]
    assert loss["count"] == EPOCHS and loss["last_step"] == EPOCHS - 1
    assert loss["last"] < loss["max"] / 5  # it learned
    assert runs["train"]["metrics_summary"]["val/accuracy"]["count"] == EPOCHS
    checkpoints = project.objects_dir / "checkpoints" / runs["train"]["id"] / "training_state"
    assert {p.name for p in checkpoints.iterdir() if p.is_dir()} == {f"step_{n}" for n in range(EPOCHS)}

    tagged = project.records.inspect_record("@best-v1", include=["tags", "results"], workspace="digits_mlp")
    assert tagged.stage_run_id == evaluate["id"]
    assert tagged.tags == ["best-v1"]
    assert tagged.results is not None and tagged.results.results_status == "finalized"
    history = project.records.list_history("digits_mlp")
    assert [r.stage for r in history.records] == ["evaluate"]
    assert [s.stage for s in history.records[0].supporting or []] == ["preprocess", "train"]
    assert project.runs.run("w1", dry_run=True).gate.blocked is False  # type: ignore[union-attr]


def test_outputs_follow_their_schemas(demo: tuple[Path, Any]) -> None:
    import numpy as np

    root, _ = demo
    project = Project.open(root)
    runs = stage_runs(project, "digits_mlp")
    pre = Path(runs["preprocess"]["run_dir"]) / "outputs"
    x_train, y_train = np.load(pre / "train_features.npy"), np.load(pre / "train_labels.npy")
    x_val, y_val = np.load(pre / "val_features.npy"), np.load(pre / "val_labels.npy")
    assert x_train.dtype == np.float32 and x_train.shape[1] == 64 and y_train.dtype == np.int64
    assert len(x_train) + len(x_val) == 1797 and len(y_val) == len(x_val)
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0
    assert set(np.unique(y_val)) == set(range(10))  # stratified: every digit is validated
    with np.load(Path(runs["train"]["run_dir"]) / "outputs" / "model.npz") as model:
        assert model["w1"].shape == (64, 64) and model["w2"].shape == (64, 10)
    table = (Path(runs["evaluate"]["run_dir"]) / "outputs" / "per_class.csv").read_text().splitlines()
    assert table[0] == "digit,precision,recall,support" and len(table) == 11
    findings = [f for f in runs["preprocess"]["svs"]["post"]["findings"] if f.get("source") == "contract"]
    assert findings == []
    # preprocess feeds train: the primary metric comes later, so no "never logged" warning for it
    post = runs["preprocess"]["svs"]["post"]
    post_checks = [f.get("check") for f in post["findings"] + post["hook"]["findings"]]
    assert "primary_metric_missing" not in post_checks


def test_broken_variant_is_blocked_by_the_review(demo: tuple[Path, Any]) -> None:
    root, _ = demo
    project = Project.open(root)
    runs = stage_runs(project, "digits_mlp_typo")
    assert set(runs) == {"train"}
    train = runs["train"]
    assert (train["state"], train["cause"], train["infra_outcome"]) == ("failed", "review_blocked", "blocked")
    errors = [f for f in train["svs"]["review"]["findings"] if f["severity"] == "error"]
    assert [f["check"] for f in errors] == ["unknown_signal"]
    assert "'train_feature'" in errors[0]["message"] and errors[0]["file"] == "modules/train.py"
    assert "train_features" in (errors[0].get("fix") or "") + errors[0]["message"]
    assert not Path(train["run_dir"]).exists()  # reviewed before launch: never launched, no run dir
    assert project.records.list_unfinalized_runs("digits_mlp_typo").runs == []
    # The tour acknowledged the blocked branch: the fresh demo has no alert that fails CI.
    from goldfish.runs.alerts import current

    assert current(project).alerts == [] and current(project).acknowledged == 1
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    tui = subprocess.run([sys.executable, "-m", "goldfish", "--project", str(root), "tui", "--headless",
                          "--fail-on-alerts"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert tui.returncode == 0, tui.stdout + tui.stderr
    ws = project.store.table("workspaces").get_doc("digits_mlp_typo")
    assert ws is not None and ws["parent_workspace"] == "digits_mlp"


def test_lineage_reaches_back_to_the_registered_source(demo: tuple[Path, Any]) -> None:
    root, _ = demo
    project = Project.open(root)
    runs = stage_runs(project, "digits_mlp")
    up = project.records.get_lineage(runs["evaluate"]["id"], "upstream")
    assert {p.run_id for p in up.producers} == {runs["train"]["id"], runs["preprocess"]["id"]}
    pre = project.records.get_lineage(runs["preprocess"]["id"], "upstream")
    assert [(p.run_id, p.source) for p in pre.producers] == [(None, "digits")]
    down = project.records.get_lineage(runs["preprocess"]["id"], "downstream")
    consumers = {c.run_id for c in down.consumers or []}
    assert {runs["train"]["id"], runs["evaluate"]["id"]} <= consumers
    typo = project.records.get_lineage(stage_runs(project, "digits_mlp_typo")["train"]["id"], "upstream")
    assert {p.run_id for p in typo.producers} == {runs["preprocess"]["id"]}  # its inputs_override
    assert [o.workspace for o in typo.workspace_origin] == ["digits_mlp_typo", "digits_mlp"]

    source = project.sources.manage_sources(action="get", name="digits").source
    assert source is not None and source.metadata_status == "ok" and source.integrity == "ok"
    images = source.metadata["schema"]["arrays"]["images"]  # type: ignore[index]
    assert images["role"] == "features" and images["shape"] == [1797, 64]
    assert images["feature_names"]["template"] == "pixel_{i}" and images["feature_names"]["count"] == 64


def test_the_tour_explains_what_happened(demo: tuple[Path, Any]) -> None:
    root, proc = demo
    out = proc.stdout
    for expected in (
        "Registered digits", "digits_mlp@v1", "refused: Workspace digits_mlp has 1 unfinalized result",
        "its result is the evaluate stage", "run() answered BLOCKED",
        "'best-v1'", "cause review_blocked", "modules/train.py:", "load_input('train_feature')", "evaluate <- train",
        "(+ preprocess, train)", "Acknowledged 1 alert(s)", "exit code 0: no alert needs anyone",
        "preprocess <- source digits", f"The project is at {root}",
        "claude mcp add goldfish -- ", "goldfish tui",
    ):
        assert expected in out, f"{expected!r} missing from the demo output:\n{out}"
    assert proc.stderr.strip() == "" or "Traceback" not in proc.stderr
    assert (root / ".mcp.json").is_file() and (root / ".claude" / "skills" / "goldfish" / "SKILL.md").is_file()


def test_the_printed_finalize_call_is_complete(demo: tuple[Path, Any]) -> None:
    """The narration's finalize_run(...) line is a call that works when pasted: every required field."""
    import ast

    from goldfish.records.results_spec import FinalResults

    line = next(x for x in demo[1].stdout.splitlines() if x.strip().startswith("> finalize_run("))
    call = ast.parse(line.strip()[2:], mode="eval").body
    assert isinstance(call, ast.Call) and len(call.args) == 2
    results = ast.literal_eval(call.args[1])
    FinalResults.model_validate(results)
    assert results["direction"] == "maximize" and results["dataset_split"] == "val"


def test_running_again_in_the_same_directory_starts_fresh_workspaces(demo: tuple[Path, Any]) -> None:
    root, _ = demo
    proc = run_demo(root, root.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Reusing the demo project" in proc.stdout and "already registered" in proc.stdout
    project = Project.open(root)
    mounts = {d["id"]: d["workspace"] for d in project.store.table("mounts").docs()}
    assert mounts == {"w1": "digits_mlp_2", "w2": "digits_mlp_2_typo"}
    assert stage_runs(project, "digits_mlp_2")["evaluate"]["results_status"] == "finalized"
    assert project.records.inspect_record("@best-v1", workspace="digits_mlp").stage_run_id  # the first one is kept
    assert project.records.inspect_record("@best-v1", workspace="digits_mlp_2").stage_run_id


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else b"" for p in sorted(path.rglob("*"))}


def test_refuses_a_directory_it_did_not_create(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me\n")
    before = tree(tmp_path)
    assert cli_main(["demo", "--dir", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "is not empty and is not a demo project" in err and "--dir" in err
    assert tree(tmp_path) == before

    init_project(tmp_path / "real", "real")
    before = tree(tmp_path)
    assert cli_main(["demo", "--dir", str(tmp_path / "real")]) == 2
    err = capsys.readouterr().err
    assert "did not create" in err and "--dir" in err
    assert tree(tmp_path) == before

    (tmp_path / "file").write_text("x")
    assert cli_main(["demo", "--dir", str(tmp_path / "file")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_broken_variant_differs_from_the_baseline_by_one_line() -> None:
    fixture = fixture_dir()
    good = (fixture / "modules" / "train.py").read_text().splitlines()
    bad = (fixture / "broken" / "modules" / "train.py").read_text().splitlines()
    assert len(good) == len(bad)
    changed = [(a, b) for a, b in zip(good, bad, strict=True) if a != b]
    assert changed == [('    x_train = load_input("train_features")', '    x_train = load_input("train_feature")')]
    assert not (fixture / MARKER).exists()
