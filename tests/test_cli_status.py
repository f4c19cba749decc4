"""The ``goldfish`` CLI as a user meets it: --project anywhere, help on everything, ``status`` (text and
--json) and output piped into a reader that stops early. Real subprocesses, real shell pipelines."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from goldfish.cli import _parser
from goldfish.init import init_project

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
GOLDFISH = f"{sys.executable} -m goldfish"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "goldfish", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=ENV)


def _sh(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120, env=ENV)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_project(tmp_path_factory.mktemp("cli") / "proj", "proj").project_root


def test_status_project_after_the_subcommand(project: Path, tmp_path: Path) -> None:
    proc = _cli("status", "--project", str(project), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Goldfish project proj\n")
    for heading in ("slots:", "active runs: none", "awaiting finalize_run: none", "best result per workspace"):
        assert heading in proc.stdout


def test_status_project_before_the_subcommand(project: Path, tmp_path: Path) -> None:
    proc = _cli("--project", str(project), "status", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _cli("status", "--project", str(project), cwd=tmp_path).stdout


def test_project_is_accepted_before_or_after_every_subcommand() -> None:
    parser = _parser()
    for argv in (["doctor", "--project", "P"], ["--project", "P", "doctor"], ["tui", "--project", "P"],
                 ["serve", "--project", "P"], ["--project", "P", "serve"], ["runner", "prun-x", "--runner-id", "r",
                                                                           "--project", "P"]):
        assert parser.parse_args(argv).project == "P", argv
    assert parser.parse_args(["status"]).project is None


def test_status_json_pipes_into_json_tool(project: Path) -> None:
    proc = _sh(f"set -o pipefail; {GOLDFISH} status --json | {sys.executable} -m json.tool", cwd=project)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["project_name"] == "proj"
    assert [s["slot"] for s in data["slots"]] == ["w1", "w2", "w3"]
    assert data["active_runs"] == [] and data["finalization_queue"] == [] and data["best"] == []


def test_status_into_head_exits_zero_without_traceback(project: Path) -> None:
    proc = _sh(f'{GOLDFISH} status | head -1; echo "goldfish-exit=${{PIPESTATUS[0]}}"', cwd=project)
    assert proc.stdout.splitlines() == ["Goldfish project proj", "goldfish-exit=0"]
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_status_into_a_closed_pipe_exits_zero_without_traceback(project: Path) -> None:
    # Deterministic form of `| head`: the reader is gone before goldfish writes a byte.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "goldfish", "status", "--json"], cwd=project, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120, env=ENV)
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_subcommand_and_option_has_help() -> None:
    parser = _parser()
    listed = {a.dest for a in parser._subparsers._group_actions[0]._choices_actions}  # type: ignore[union-attr]
    subs = _subparsers(parser)
    assert {"init", "status", "doctor", "demo", "serve", "tui", "runner", "images"} <= set(subs)
    assert listed == set(subs)  # each has a one-line summary in `goldfish --help`
    _check_help(subs, "goldfish")
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            assert action.help, action.dest


def _check_help(subs: dict[str, argparse.ArgumentParser], prefix: str) -> None:
    for name, sub in subs.items():
        assert sub.description, f"{prefix} {name} --help has no description"
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):  # nested subcommands (e.g. `skill install`)
                _check_help(dict(action.choices), f"{prefix} {name}")
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{prefix} {name}: {action.dest} has no help"


def test_help_of_each_subcommand_runs(tmp_path: Path) -> None:
    for name in ("status", "doctor", "serve"):
        proc = _cli(name, "--help", cwd=tmp_path)
        assert proc.returncode == 0 and "--project" in proc.stdout, proc.stderr


def test_status_model_lists_active_runs_queue_and_best(tmp_path: Path) -> None:
    from goldfish.status import project_status, render_text
    from tests.records_fixture import Rows, final, new_project

    project = new_project(tmp_path)
    rows = Rows(project)
    rows.workspace("lstm")
    rows.workspace("other")
    first = rows.run("lstm", value=0.62)
    project.records.finalize_run(first, final(0.62, "partial"))
    second = rows.run("lstm", value=0.68)
    project.records.finalize_run(second, final(0.68, "partial"))
    waiting = rows.run("lstm", value=0.64)
    _, ids = rows.pipeline_run("other", ["train"])
    rows.finish("other", ids["train"], state="running")

    status = project_status(project)
    assert [(a.run_id, a.workspace, a.state) for a in status.active_runs] == [(ids["train"], "other", "running")]
    assert [(q.workspace, q.run_ids) for q in status.finalization_queue] == [("lstm", [waiting])]
    [best] = status.best
    assert (best.workspace, best.stage_run_id, best.value, best.source) == ("lstm", second, 0.68, "finalized")

    project.records.tag_record(first, "best-v1")  # a best tag names the best, whatever the values say
    [best] = project_status(project).best
    assert (best.stage_run_id, best.source, best.tag) == (first, "tag", "best-v1")
    text = render_text(project_status(project))
    assert f"{ids['train']} other/train running" in text and f"lstm: 1 ({waiting})" in text
    assert "lstm: acc=0.62 (maximize, @best-v1" in text
