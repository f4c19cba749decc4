"""Records with the real workspaces service: checkpoint records from save_version, tags shared
with manage_versions (protection from pruning, untag), pruned versions hidden from history."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldfish.errors import Conflict
from goldfish.project import Project
from tests.ws_helpers import REASON, make_project, write


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = make_project(tmp_path)
    p.workspaces.create("exp", goal="find a good model", reason=REASON)
    p.workspaces.mount("exp", "w1", reason=REASON)
    return p


def save(project: Project, text: str, message: str) -> str | None:
    write(project.slot_path("w1"), {"train.py": text})
    return project.workspaces.save_version("w1", message).record_id


def test_save_version_creates_checkpoint_records(project: Project) -> None:
    first = save(project, "x = 1\n", "first checkpoint of the model")
    assert first is not None
    again = project.workspaces.save_version("w1", "nothing changed since then")
    assert again.created is False and again.record_id is None  # one checkpoint per version
    second = save(project, "x = 2\n", "second checkpoint of the model")
    history = project.records.list_history("w1", record_type="checkpoint")
    assert [r.record_id for r in history.records] == [second, first]
    assert history.records[1].reason == "first checkpoint of the model" and history.records[1].type == "checkpoint"
    assert history.records[1].version == project.records.inspect_record(first).version
    events, _ = project.store.read_events("audit")
    assert [e["details"].get("record_id") for e in events if e["op"] == "save_version"] == [first, None, second]


def test_checkpoint_tag_protects_version_and_untag_clears_it(project: Project) -> None:
    record_id = save(project, "x = 1\n", "checkpoint worth keeping")
    assert record_id is not None
    version = project.records.inspect_record(record_id).version
    tagged = project.records.tag_record(record_id, "checkpoint-1")
    assert tagged.version == version
    listed = project.versions.manage("exp", "list")
    assert any(v.tags == ["checkpoint-1"] for v in listed.versions)
    with pytest.raises(Conflict, match="protected from pruning"):
        project.versions.manage("exp", "prune", version=version, reason=REASON)
    with pytest.raises(Conflict, match="already exists"):
        project.versions.manage("exp", "tag", version=version, tag="checkpoint-1", reason=REASON)
    project.versions.manage("exp", "untag", tag="checkpoint-1", reason=REASON)
    assert project.records.inspect_record(record_id).tags == []
    project.versions.manage("exp", "prune", version=version, reason=REASON)
    assert project.records.list_history("exp").total == 0
    assert [r.record_id for r in project.records.list_history("exp", include_pruned=True).records] == [record_id]


def test_version_tags_block_record_tags_of_the_same_name(project: Project) -> None:
    record_id = save(project, "x = 1\n", "checkpoint before a refactor")
    version = project.records.inspect_record(record_id or "").version
    project.versions.manage("exp", "tag", version=version, tag="release", reason=REASON)
    with pytest.raises(Conflict, match=f"version {version}"):
        project.records.tag_record(record_id or "", "release")
