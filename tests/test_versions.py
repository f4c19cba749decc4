"""manage_versions: list, tag, untag, prune, unprune, prune_before_tag, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldfish.errors import Conflict, InvalidInput, NotFound
from goldfish.project import Project
from tests.test_workspaces import refused
from tests.ws_helpers import REASON, make_project, write


@pytest.fixture
def six(tmp_path: Path) -> Project:
    """Workspace 'exp' in w1 with versions v1..v6."""
    project = make_project(tmp_path)
    project.workspaces.create("exp", "find a good model", REASON)
    project.workspaces.mount("exp", "w1", REASON)
    for i in range(1, 7):
        write(project.slot_path("w1"), {"train.py": f"step = {i}\n"})
        project.workspaces.save_version("w1", f"training script number {i}")
    return project


def _visible(project: Project) -> list[str]:
    return [v.version for v in project.versions.rows("exp", include_pruned=False)]


def test_list_pages_oldest_first(six: Project) -> None:
    res = six.versions.manage("exp", "list", limit=4, offset=1)
    assert [v.version for v in res.versions or []] == ["v2", "v3", "v4", "v5"]
    assert res.total == 6 and res.has_more
    assert res.versions and res.versions[0].created_by == "save_version" and res.versions[0].tag == "exp-v2"


def test_tag_protects_and_untag_frees(six: Project) -> None:
    v = six.versions
    res = v.manage("w1", "tag", version="v2", tag="best-v1")  # slot ok
    assert (res.workspace, res.version, res.tag) == ("exp", "v2", "best-v1")
    assert v.get("exp", "v2").tags == ["best-v1"]  # type: ignore[union-attr]
    refused(six, lambda: v.manage("exp", "tag", version="v3", tag="best-v1"), Conflict, "already exists")
    err = refused(six, lambda: v.manage("exp", "prune", version="v2", reason=REASON), Conflict, "protected")
    assert "untag" in (err.fix or "")
    ranged = v.manage("exp", "prune", from_version="v1", to_version="v4", reason=REASON)
    assert ranged.pruned == ["v1", "v3", "v4"] and ranged.skipped_tagged == ["v2"] and ranged.pruned_count == 3
    assert _visible(six) == ["v2", "v5", "v6"]
    # A record tag in the same table (written by the records service) is freed too.
    with six.store.transaction() as tx:
        tx.table("tags", "ws/exp").add({"version": "v5", "record_id": "01HXYZ0000000000000000000A", "created_at": "t"}, doc_id="rec-tag")
        tx.table("records", "ws/exp").add({"tags": ["rec-tag"]}, doc_id="01HXYZ0000000000000000000A")
    v.manage("exp", "untag", tag="rec-tag")
    assert six.store.table("records", "ws/exp").get_doc("01HXYZ0000000000000000000A")["tags"] == []  # type: ignore[index]
    v.manage("exp", "untag", tag="best-v1")
    assert v.get("exp", "v2").tags == []  # type: ignore[union-attr]
    v.manage("exp", "tag", version="v6", tag="best-v1")  # the name is free everywhere
    v.manage("exp", "prune", version="v2", reason=REASON)


def test_prune_unprune_and_numbering(six: Project) -> None:
    v = six.versions
    v.manage("exp", "prune", version="v6", reason=REASON)
    assert _visible(six) == ["v1", "v2", "v3", "v4", "v5"]
    row = v.get("exp", "v6")
    assert row and row.pruned_at and row.prune_reason == REASON
    listed = v.manage("exp", "list", include_pruned=True)
    assert listed.total == 6
    assert six.workspaces.slot_status()[0].current_version == "v5"
    assert "v6" not in (six.state_md.read_global() or "")
    assert "v6" not in (six.state_md.read_slot("w1") or "")
    write(six.slot_path("w1"), {"train.py": "step = 7\n"})
    assert six.workspaces.save_version("w1", "numbers are never reused").version == "v7"
    again = v.manage("exp", "unprune", from_version="v5", to_version="v7")
    assert again.unpruned == ["v6"] and again.skipped == ["v5", "v7"]
    assert _visible(six) == ["v1", "v2", "v3", "v4", "v5", "v6", "v7"]


def test_prune_before_tag(six: Project) -> None:
    v = six.versions
    v.manage("exp", "tag", version="v2", tag="keep-me")
    v.manage("exp", "tag", version="v5", tag="best")
    res = v.manage("exp", "prune_before_tag", tag="best", reason=REASON)
    assert res.tag_version == "v5" and res.pruned == ["v1", "v3", "v4"] and res.skipped_tagged == ["v2"]
    assert _visible(six) == ["v2", "v5", "v6"]


def test_errors_change_nothing(six: Project) -> None:
    v = six.versions
    v.manage("exp", "prune", version="v1", reason=REASON)
    cases = [
        (lambda: v.manage("exp", "destroy"), InvalidInput, "Unknown manage_versions action"),
        (lambda: v.manage("exp", "unprune"), InvalidInput, "needs version='vN', or both"),
        (lambda: v.manage("exp", "prune", version="v2"), InvalidInput, "reason must be a string"),
        (lambda: v.manage("exp", "prune", version="v2", reason="short"), InvalidInput, "too short"),
        (lambda: v.manage("exp", "prune", from_version="v2", reason=REASON), InvalidInput, "both from_version"),
        (lambda: v.manage("exp", "prune", version="v2", from_version="v1", to_version="v3", reason=REASON),
         InvalidInput, "not both"),
        (lambda: v.manage("exp", "prune", from_version="v4", to_version="v2", reason=REASON), InvalidInput, "after"),
        (lambda: v.manage("exp", "prune", from_version="v1", to_version="v40", reason=REASON), NotFound, "v1..v6"),
        (lambda: v.manage("exp", "prune", version="v1", reason=REASON), Conflict, "already pruned"),
        (lambda: v.manage("exp", "unprune", version="v2"), Conflict, "not pruned"),
        (lambda: v.manage("exp", "tag", version="v2"), InvalidInput, "needs tag"),
        (lambda: v.manage("exp", "tag", tag="x"), InvalidInput, "needs version"),
        (lambda: v.manage("exp", "tag", version="v1", tag="best"), Conflict, "pruned"),
        (lambda: v.manage("exp", "tag", version="v2", tag="v9"), InvalidInput, "looks like a version"),
        (lambda: v.manage("exp", "tag", version="v2", tag="exp-v9"), InvalidInput, "looks like a version"),
        (lambda: v.manage("exp", "tag", version="v2", tag="bad tag!"), InvalidInput, "Invalid tag"),
        (lambda: v.manage("exp", "tag", version="v99", tag="best"), NotFound, "no version v99"),
        (lambda: v.manage("exp", "untag", tag="missing"), NotFound, "no tag"),
        (lambda: v.manage("exp", "prune_before_tag", tag="missing", reason=REASON), NotFound, "no tag"),
        (lambda: v.manage("exp", "list", limit=0), InvalidInput, "limit"),
        (lambda: v.manage("nope", "list"), NotFound, "does not exist"),
        (lambda: v.manage("w2", "list"), NotFound, "empty"),
        (lambda: v.manage("exp", "prune", version="3", reason=REASON), InvalidInput, "Invalid version"),
    ]
    for call, exc, match in cases:
        refused(six, call, exc, match)
