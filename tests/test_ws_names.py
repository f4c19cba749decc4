"""Traversal and injection names are refused before any git process starts, and change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goldfish import names
from goldfish.errors import GoldfishError, InvalidInput
from goldfish.project import Project
from tests.ws_helpers import REASON, GitRecorder, assert_unchanged, make_project, snapshot, write

BAD_NAMES = [
    "../x", "a/b", "-rf", "x;rm", "x;rm -rf ~", "a\nb", "a\rb", "a\tb", "name\x00", "exp\u0430",  # Cyrillic а
    "ехр", "..", ".", "/abs", "a b", "$(id)", "`id`", "a|b", "a&b", "*", "a?", "[a]", "{a}", "~a", "a!",
    "", " ", "a" * 65, "_lead", "trail-", "HEAD@{1}", "refs/heads/x", "x.lock", "a..b", "@",
]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Project, GitRecorder]:
    project = make_project(tmp_path)
    project.workspaces.create("exp", "find a good model", REASON)
    project.workspaces.mount("exp", "w1", REASON)
    write(project.slot_path("w1"), {"train.py": "x = 1\n"})
    project.workspaces.save_version("w1", "first version saved")
    recorder = GitRecorder(tmp_path, monkeypatch)
    return project, recorder


def _calls(project: Project, bad: str) -> list:
    ws, v = project.workspaces, project.versions
    return [
        lambda: ws.create(bad, "goal", REASON),
        lambda: ws.create("fresh", "goal", REASON, from_workspace=bad),
        lambda: ws.create("fresh", "goal", REASON, from_workspace="exp", from_version=bad),
        lambda: ws.mount(bad, "w2", REASON),
        lambda: ws.mount("exp", bad, REASON),
        lambda: ws.hibernate(bad, REASON),
        lambda: ws.save_version(bad, "a message long enough"),
        lambda: ws.sync_for_run(bad, "a reason long enough"),
        lambda: ws.rollback("w1", bad, REASON),
        lambda: ws.rollback(bad, "v1", REASON),
        lambda: ws.delete(bad, REASON),
        lambda: ws.inspect(bad),
        lambda: ws.diff(bad),
        lambda: ws.diff("w1", bad),
        lambda: ws.archive(bad, "0" * 40, project.runs_dir / "x"),
        lambda: v.manage(bad, "list"),
        lambda: v.manage("exp", "tag", version="v1", tag=bad),
        lambda: v.manage("exp", "prune", version=bad, reason=REASON),
        lambda: project.journal.log_thought("a thought long enough", workspace=bad),
        lambda: project.journal.log_thought("a thought long enough", run_id=bad),
        lambda: project.journal.thoughts(bad),
        lambda: project.journal.audit_log(workspace=bad),
    ]


TAG_POSITIONS = {2, 8, 16}  # parameters that take a tag (a store key, never a git ref)


def _valid_tag(text: str) -> bool:
    try:
        names.tag_name(text)
    except InvalidInput:
        return False
    return True


def _assert_refused_without_git(project: Project, recorder: GitRecorder, bad: str) -> None:
    for i, call in enumerate(_calls(project, bad)):
        if i in TAG_POSITIONS and _valid_tag(bad):
            continue  # a legal tag name (tags are store keys, never git refs)
        before = snapshot(project)
        recorder.reset()
        with pytest.raises(GoldfishError) as info:
            call()
        assert isinstance(info.value, InvalidInput), (i, bad, info.value)
        assert recorder.calls() == [], (i, bad, recorder.calls())
        assert_unchanged(project, before)


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_bad_names_refused_before_git(setup: tuple[Project, GitRecorder], bad: str) -> None:
    project, recorder = setup
    _assert_refused_without_git(project, recorder, bad)


def test_recorder_sees_git(setup: tuple[Project, GitRecorder]) -> None:
    """The check above is meaningful: a valid call does spawn git through the shim."""
    project, recorder = setup
    project.workspaces.diff("w1")
    assert any(c.startswith("-C") for c in recorder.calls())


def _is_bad(text: str) -> bool:
    try:
        names.workspace_name(text)
    except InvalidInput:
        return True
    return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=0, max_size=80).filter(_is_bad).filter(lambda t: t not in ("w1", "w2", "w3")))
def test_any_invalid_name_is_refused_before_git(setup: tuple[Project, GitRecorder], bad: str) -> None:
    project, recorder = setup
    ws = project.workspaces
    for call in (lambda: ws.create(bad, "goal", REASON), lambda: ws.mount(bad, "w2", REASON),
                 lambda: ws.delete(bad, REASON), lambda: ws.save_version(bad, "a message long enough")):
        recorder.reset()
        with pytest.raises(InvalidInput):
            call()
        assert recorder.calls() == []


def test_include_sections_lists_every_unknown_name_with_a_hint() -> None:
    from goldfish.names import include_sections

    assert include_sections(None, ["a", "svs"], ["a"], what="x") == ["a"]
    assert include_sections("svs", ["a", "svs"], ["a"], what="x") == ["svs"]
    assert include_sections(["svs", "a", "svs"], ["a", "svs"], ["a"], what="x") == ["svs", "a"]
    with pytest.raises(InvalidInput, match=r"Unknown inspect_run section\(s\): 'svss'.*Did you mean \"svs\"") as info:
        include_sections(["svss"], ["a", "svs"], ["a"], what="inspect_run")
    assert info.value.fix and "svs" in info.value.fix
    with pytest.raises(InvalidInput, match="must be a list"):
        include_sections({"svs": 1}, ["a", "svs"], ["a"], what="x")
