"""The workspace lifecycle on real git: every success path, and every documented error leaving the
project, the store, the event logs and the dev repo's refs exactly as they were."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from goldfish.git.devrepo import MOUNT_FILE, DevRepo, RefOp
from goldfish.errors import Conflict, GoldfishError, InvalidInput, NotFound
from goldfish.project import Project
from tests.ws_helpers import REASON, assert_unchanged, make_project, refs, snapshot, tree_files, write

REPO = Path(__file__).resolve().parent.parent


def refused(project: Project, fn: Callable[[], Any], exc: type[GoldfishError], match: str) -> GoldfishError:
    before = snapshot(project)
    with pytest.raises(exc, match=match) as info:
        fn()
    assert info.value.fix, "every error names the fix"
    assert_unchanged(project, before)
    return info.value


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


@pytest.fixture
def exp(project: Project) -> Project:
    """Workspace 'exp' mounted in w1 with one saved version."""
    project.workspaces.create("exp", "find a good model", REASON)
    project.workspaces.mount("exp", "w1", REASON)
    write(project.slot_path("w1"), {"train.py": "lr = 0.1\n", "pipeline.yaml": "stages: []\n"})
    project.workspaces.save_version("w1", "the first training script")
    return project


# ------------------------------------------------------------------------ create
def test_create_empty_workspace(project: Project) -> None:
    res = project.workspaces.create("exp", "find a good model", REASON)
    assert res.forked_from is None and "mount(" in res.next_step
    head = project.dev_repo.head("exp")
    assert head == res.base_sha and tree_files(project, head) == {}
    row = project.store.table("workspaces").get_doc("exp")
    assert row and row["goal"] == "find a good model" and row["created_by"] == "test"
    assert project.workspaces.mounted_slot("exp") is None
    assert "exp" in (res.state_md or "")
    audit = project.journal.recent(1)[0]
    assert (audit.op, audit.workspace, audit.source) == ("create_workspace", "exp", "test")


def test_create_errors_change_nothing(exp: Project) -> None:
    ws = exp.workspaces
    refused(exp, lambda: ws.create("exp", "again", REASON), Conflict, "already exists")
    refused(exp, lambda: ws.create("w2", "goal", REASON), InvalidInput, "slot name")
    refused(exp, lambda: ws.create("new", "   ", REASON), InvalidInput, "goal")
    refused(exp, lambda: ws.create("new", "goal", "short"), InvalidInput, "too short")
    refused(exp, lambda: ws.create("new", "goal", REASON, from_version="v1"), InvalidInput, "from_workspace")
    refused(exp, lambda: ws.create("new", "goal", REASON, from_workspace="nope"), NotFound, "does not exist")
    refused(exp, lambda: ws.create("new", "goal", REASON, from_workspace="exp", from_version="v9"), NotFound, "v1..v1")
    refused(exp, lambda: ws.create("new", "goal", REASON, from_workspace="w3"), NotFound, "empty")


def test_fork_from_mounted_workspace_saves_a_fork_point(exp: Project) -> None:
    write(exp.slot_path("w1"), {"train.py": "lr = 0.01\n"})
    res = exp.workspaces.create("exp2", "try a smaller lr", REASON, from_workspace="w1")
    assert res.forked_from == "exp@v2"
    v2 = exp.versions.get("exp", "v2")
    assert v2 is not None and v2.created_by == "fork" and v2.sha == res.base_sha
    assert tree_files(exp, res.base_sha)["train.py"] == b"lr = 0.01\n"
    assert exp.workspaces.slot_status()[0].dirty is False
    row = exp.store.table("workspaces").get_doc("exp2")
    assert row and (row["parent_workspace"], row["parent_version"]) == ("exp", "v2")
    # Unchanged source: the existing version is the fork point, no new version.
    again = exp.workspaces.create("exp3", "another branch", REASON, from_workspace="exp")
    assert again.forked_from == "exp@v2" and len(exp.versions.rows("exp")) == 2


def test_fork_from_version_and_from_unmounted_head(exp: Project) -> None:
    write(exp.slot_path("w1"), {"train.py": "lr = 0.5\n"})
    exp.workspaces.save_version("w1", "second training script")
    res = exp.workspaces.create("old", "revisit v1", REASON, from_workspace="exp", from_version="v1")
    assert res.forked_from == "exp@v1"
    assert tree_files(exp, res.base_sha)["train.py"] == b"lr = 0.1\n"
    exp.workspaces.hibernate("w1", REASON)
    res2 = exp.workspaces.create("head", "from the head", REASON, from_workspace="exp")
    assert res2.forked_from == "exp@v2"


# ------------------------------------------------------------------------- mount
def test_mount_copies_files_with_marker(exp: Project) -> None:
    exp.workspaces.hibernate("w1", REASON)
    res = exp.workspaces.mount("exp", "w2", REASON)
    slot = exp.slot_path("w2")
    assert res.path == str(slot) and res.current_version == "v1" and res.file_count == 2
    assert (slot / "train.py").read_text() == "lr = 0.1\n"
    assert not (slot / ".git").exists()
    marker = (slot / MOUNT_FILE).read_text()
    assert '"workspace": "exp"' in marker
    assert (slot / "STATE.md").read_text().startswith("# Workspace: exp")
    row = exp.store.table("mounts").get_doc("w2")
    assert row and row["workspace"] == "exp" and row["head"] == exp.dev_repo.head("exp")
    # Mount metadata for dirty detection: the mounted commit's per-file blob ids.
    meta = orjson.loads((exp.gf_dir / "mounts" / "w2.json").read_bytes())
    assert meta["head"] == row["head"] and meta["mount_id"] == row["mount_id"]
    assert {p: tuple(k) for p, k in meta["tree"].items()} == exp.dev_repo.ls_tree(row["head"])
    again = exp.workspaces.mount("exp", "w2", REASON)
    assert again.already_mounted is True
    exp.workspaces.create("b", "second", REASON)
    exp.workspaces.create("c", "third", REASON)
    exp.workspaces.mount("b", "w1", REASON)
    third = exp.workspaces.mount("c", "w3", REASON)
    assert third.warning and "3 slots are mounted" in third.warning


def test_mount_errors_change_nothing(exp: Project) -> None:
    ws = exp.workspaces
    exp.workspaces.create("other", "something else", REASON)
    refused(exp, lambda: ws.mount("other", "w1", REASON), Conflict, "already holds workspace 'exp'")
    refused(exp, lambda: ws.mount("exp", "w2", REASON), Conflict, "already mounted in slot w1")
    refused(exp, lambda: ws.mount("nope", "w2", REASON), NotFound, "does not exist")
    refused(exp, lambda: ws.mount("other", "w9", REASON), InvalidInput, "Unknown slot")
    refused(exp, lambda: ws.mount("other", "w2", "short"), InvalidInput, "too short")
    foreign = exp.slot_path("w2")
    write(foreign, {"notes.txt": "my own notes"})
    err = refused(exp, lambda: ws.mount("other", "w2", REASON), Conflict, "not created by Goldfish")
    assert str(foreign) in err.message
    (exp.workspaces_dir / "w3").write_text("a file where a slot should be")
    refused(exp, lambda: ws.mount("other", "w3", REASON), Conflict, "not a directory")


def test_stale_slot_directory_is_recovered_or_refused(exp: Project) -> None:
    # Simulate a hibernate interrupted after the store commit: row gone, directory left with edits.
    slot = exp.slot_path("w1")
    write(slot, {"train.py": "lr = 0.2  # unsaved edit\n"})
    with exp.store.transaction() as tx:
        tx.table("mounts").delete("w1")
    exp.workspaces.create("other", "something else", REASON)
    refused(exp, lambda: exp.workspaces.mount("other", "w1", REASON), Conflict, "left by an interrupted")
    res = exp.workspaces.mount("exp", "w1", REASON)
    assert res.recovered and res.dirty
    assert (slot / "train.py").read_text() == "lr = 0.2  # unsaved edit\n"
    saved = exp.workspaces.save_version("w1", "saving the recovered edit")
    assert tree_files(exp, saved.git_sha)["train.py"] == b"lr = 0.2  # unsaved edit\n"
    # A clean leftover is simply replaced.
    with exp.store.transaction() as tx:
        tx.table("mounts").delete("w1")
    exp.workspaces.mount("other", "w1", REASON)
    assert not (slot / "train.py").exists()


# --------------------------------------------------------------------- hibernate
def test_hibernate_commits_and_parks_unversioned_files(exp: Project) -> None:
    slot = exp.slot_path("w1")
    write(slot, {".gitignore": "cache/\n", "cache/big.npy": "cached", "train.py": "lr = 0.3\n"})
    with open(slot / "huge.bin", "wb") as f:
        f.truncate(11_000_000)
    res = exp.workspaces.hibernate("exp", REASON)  # slot ok: a workspace name works
    assert res.auto_checkpointed and not slot.exists()
    assert [s.path for s in res.skipped_files] == ["huge.bin"]
    assert res.warning and "parked" in res.warning
    assert tree_files(exp, res.checkpoint_sha)["train.py"] == b"lr = 0.3\n"
    assert exp.store.table("mounts").get_doc("w1") is None
    assert len(exp.versions.rows("exp")) == 1  # hibernate commits, it does not make a version
    back = exp.workspaces.mount("exp", "w3", REASON)
    slot3 = exp.slot_path("w3")
    assert (slot3 / "cache/big.npy").read_text() == "cached"
    assert (slot3 / "huge.bin").stat().st_size == 11_000_000
    assert (slot3 / "train.py").read_text() == "lr = 0.3\n"
    assert back.dirty is False and "restored" in (back.warning or "")
    assert not (exp.gf_dir / "parked" / "exp").exists()


def test_hibernate_errors(exp: Project) -> None:
    refused(exp, lambda: exp.workspaces.hibernate("w2", REASON), NotFound, "empty")
    refused(exp, lambda: exp.workspaces.hibernate("w1", "short"), InvalidInput, "too short")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_hibernate_with_unwritable_objects_keeps_everything(exp: Project) -> None:
    _hibernate_failure_keeps_everything(exp, "objects")


def test_hibernate_with_failing_git_keeps_everything(exp: Project) -> None:
    # Works as root too: a ref lock left by a crashed git makes the ref update fail.
    _hibernate_failure_keeps_everything(exp, "lock")


def _hibernate_failure_keeps_everything(exp: Project, how: str) -> None:
    slot = exp.slot_path("w1")
    write(slot, {"train.py": "lr = 0.7  # precious unsaved edit\n", "new_module.py": "x = 1\n"})
    files_before = {p.relative_to(slot): p.read_bytes() for p in slot.rglob("*") if p.is_file()}
    objects = exp.dev_path / ".git" / "objects"
    lock = exp.dev_path / ".git" / "refs" / "heads" / "goldfish" / "exp.lock"
    dirs = [objects, *[p for p in objects.rglob("*") if p.is_dir()]]
    if how == "objects":
        for d in dirs:
            d.chmod(0o555)
    else:
        lock.write_text("")
    try:
        before = snapshot(exp)
        with pytest.raises(GoldfishError, match=r"(?s)did not happen.*and the mount are kept") as info:
            exp.workspaces.hibernate("w1", REASON)
        assert str(slot) in info.value.message
        assert_unchanged(exp, before)
    finally:
        for d in dirs:
            d.chmod(0o755)
        lock.unlink(missing_ok=True)
    assert {p.relative_to(slot): p.read_bytes() for p in slot.rglob("*") if p.is_file()} == files_before
    assert exp.store.table("mounts").get_doc("w1") is not None
    ok = exp.workspaces.hibernate("w1", REASON)  # and it works once the cause is gone
    assert tree_files(exp, ok.checkpoint_sha)["train.py"] == b"lr = 0.7  # precious unsaved edit\n"


def test_diverged_branch_is_refused_everywhere(exp: Project) -> None:
    repo = exp.dev_repo
    head = repo.head("exp")
    assert head
    foreign = repo.commit(repo.write_empty_tree(), [head], "someone committed by hand")
    repo.update_refs([RefOp("update", DevRepo.branch_ref("exp"), new=foreign, old=head)])
    write(exp.slot_path("w1"), {"train.py": "lr = 0.9\n"})
    for call in (
        lambda: exp.workspaces.hibernate("w1", REASON),
        lambda: exp.workspaces.save_version("w1", "would overwrite the branch"),
        lambda: exp.workspaces.sync_for_run("exp", "would overwrite the branch"),
    ):
        err = refused(exp, call, Conflict, "diverged")
        assert "update-ref" in (err.fix or "")
    assert (exp.slot_path("w1") / "train.py").read_text() == "lr = 0.9\n"


# ------------------------------------------------------------------ save and run
def test_save_version_and_unchanged_reuse(exp: Project) -> None:
    same = exp.workspaces.save_version("w1", "nothing changed since v1")
    assert (same.created, same.version) == (False, "v1")
    write(exp.slot_path("w1"), {"train.py": "lr = 0.2\n"})
    new = exp.workspaces.save_version("exp", "a smaller learning rate")
    assert (new.created, new.version, new.git_tag) == (True, "v2", "exp-v2")
    assert refs(exp)["refs/tags/exp-v2"] == new.git_sha
    assert tree_files(exp, new.git_sha)["train.py"] == b"lr = 0.2\n"
    row = exp.store.table("versions", "ws/exp").get_doc("v2")
    assert row and row["created_by"] == "save_version" and row["description"] == "a smaller learning rate"


def test_save_and_sync_errors(exp: Project) -> None:
    exp.workspaces.create("idle", "not mounted anywhere", REASON)
    refused(exp, lambda: exp.workspaces.save_version("w1", "short"), InvalidInput, "too short")
    refused(exp, lambda: exp.workspaces.save_version("w2", "empty slot here"), NotFound, "empty")
    err = refused(exp, lambda: exp.workspaces.sync_for_run("idle", "run the training"), Conflict, "not mounted")
    assert "mount it first: mount(" in (err.fix or "")
    refused(exp, lambda: exp.workspaces.save_version("idle", "not mounted anywhere"), Conflict, "not mounted")


def test_sync_for_run_creates_then_reuses(exp: Project) -> None:
    write(exp.slot_path("w1"), {"train.py": "lr = 0.05\n"})
    first = exp.workspaces.sync_for_run("w1", "train with lr 0.05")
    assert (first.version, first.reused, first.slot) == ("v2", False, "w1")
    again = exp.workspaces.sync_for_run("exp", "same files again")
    assert (again.version, again.sha, again.reused) == ("v2", first.sha, True)
    assert exp.versions.get("exp", "v2").created_by == "run"  # type: ignore[union-attr]
    dest = exp.runs_dir / "stage-00000001" / "app"
    assert exp.workspaces.archive("exp", first.sha, dest) == []
    assert (dest / "train.py").read_text() == "lr = 0.05\n"
    assert not (dest / "STATE.md").exists() and not (dest / MOUNT_FILE).exists()


def test_archive_errors(exp: Project, tmp_path: Path) -> None:
    head = exp.dev_repo.head("exp")
    base = exp.store.table("workspaces").get_doc("exp")["base_sha"]  # type: ignore[index]
    refused(exp, lambda: exp.workspaces.archive("exp", "abc", tmp_path / "a"), InvalidInput, "commit id")
    refused(exp, lambda: exp.workspaces.archive("exp", base, tmp_path / "a"), NotFound, "not a version")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    refused(exp, lambda: exp.workspaces.archive("exp", str(head), tmp_path / "full"), Conflict, "not an empty")


def test_archive_refuses_links_out_of_the_run_dir(exp: Project, tmp_path: Path) -> None:
    slot = exp.slot_path("w1")
    os.symlink("/etc/passwd", slot / "passwd")
    os.symlink("../../outside", slot / "escape")
    v = exp.workspaces.save_version("w1", "links pointing outside")
    dest = tmp_path / "run-app"
    refusals = exp.workspaces.archive("exp", v.git_sha, dest)
    assert len(refusals) == 2 and not (dest / "passwd").exists() and not (dest / "escape").exists()
    assert (dest / "train.py").exists()


# ---------------------------------------------------------------------- rollback
def test_rollback_saves_first_then_restores(exp: Project) -> None:
    slot = exp.slot_path("w1")
    write(slot, {"train.py": "lr = 0.3\n", "extra.py": "new file\n", ".gitignore": "data/\n", "data/x.csv": "1\n"})
    res = exp.workspaces.rollback("w1", "v1", REASON)
    assert (res.version, res.saved_as, res.saved_version_created) == ("v1", "v2", True)
    assert res.files_reverted == 3  # train.py changed, extra.py and .gitignore removed
    assert (slot / "train.py").read_text() == "lr = 0.1\n"
    assert not (slot / "extra.py").exists()
    assert (slot / "data" / "x.csv").read_text() == "1\n"  # unversioned files stay
    v2 = exp.versions.get("exp", "v2")
    assert v2 and "auto-saved before rollback" in (v2.description or "")
    assert tree_files(exp, v2.sha)["extra.py"] == b"new file\n"
    status = exp.workspaces.slot_status()[0]
    assert status.dirty is True and "rolled back to v1" in (status.note or "")
    back = exp.workspaces.save_version("w1", "keep the rolled back files")
    # v1 has no .gitignore, so with it rolled back data/ is no longer ignored.
    v1_files = tree_files(exp, exp.versions.get("exp", "v1").sha)  # type: ignore[union-attr]
    assert tree_files(exp, back.git_sha) == {**v1_files, "data/x.csv": b"1\n"}


def test_rollback_by_tag_and_errors(exp: Project) -> None:
    exp.versions.manage("exp", "tag", version="v1", tag="baseline")
    write(exp.slot_path("w1"), {"train.py": "lr = 0.4\n"})
    exp.workspaces.save_version("w1", "second version of it")
    res = exp.workspaces.rollback("w1", "baseline", REASON)
    assert res.version == "v1" and res.saved_version_created is False
    refused(exp, lambda: exp.workspaces.rollback("w1", "v7", REASON), NotFound, "no version v7")
    refused(exp, lambda: exp.workspaces.rollback("w1", "nope", REASON), NotFound, "no version or tag")
    refused(exp, lambda: exp.workspaces.rollback("w1", "v1; rm -rf /", REASON), InvalidInput, "Invalid tag")
    refused(exp, lambda: exp.workspaces.rollback("w2", "v1", REASON), NotFound, "empty")


# ------------------------------------------------------------------------ delete
def test_delete_workspace(exp: Project) -> None:
    err = refused(exp, lambda: exp.workspaces.delete("exp", REASON), Conflict, "mounted in slot w1")
    assert "hibernate('w1'" in (err.fix or "")
    refused(exp, lambda: exp.workspaces.delete("nope", REASON), NotFound, "does not exist")
    exp.workspaces.hibernate("w1", REASON)
    sha = exp.versions.get("exp", "v1").sha  # type: ignore[union-attr]
    res = exp.workspaces.delete("exp", REASON)
    assert res.versions_archived == 1
    all_refs = refs(exp)
    assert "refs/heads/goldfish/exp" not in all_refs and "refs/tags/exp-v1" not in all_refs
    assert all_refs["refs/archive/exp/tags/exp-v1"] == sha  # provenance of past runs survives
    assert exp.versions.get("exp", "v1") is not None
    refused(exp, lambda: exp.workspaces.create("exp", "again", REASON), Conflict, "never reused")
    refused(exp, lambda: exp.workspaces.mount("exp", "w1", REASON), NotFound, "was deleted")
    refused(exp, lambda: exp.workspaces.delete("exp", REASON), NotFound, "was deleted")


# ------------------------------------------------------------------ diff, inspect
def test_diff_forms(exp: Project) -> None:
    slot = exp.slot_path("w1")
    write(slot, {"train.py": "lr = 0.2\n"})
    live = exp.workspaces.diff("w1")
    assert live.has_changes and [f.path for f in live.files_changed] == ["train.py"]
    assert "-lr = 0.1" in live.diff_text and "+lr = 0.2" in live.diff_text
    assert live.left.startswith("exp@v1") and live.right_sha is None
    exp.workspaces.save_version("w1", "second version saved")
    assert not exp.workspaces.diff("w1").has_changes
    versions = exp.workspaces.diff("exp@v2", "exp@v1")
    assert versions.files_total == 1 and versions.left_sha and versions.right_sha
    bare = exp.workspaces.diff("v2")  # the mounted workspace, against its predecessor
    assert bare.left == "exp@v1" and bare.files_total == 1
    first = exp.workspaces.diff("v1")
    assert first.left.startswith("empty") and {f.status for f in first.files_changed} == {"added"}
    exp.workspaces.create("b", "second line", REASON, from_workspace="exp")
    exp.workspaces.mount("b", "w2", REASON)
    write(exp.slot_path("w2"), {"other.py": "y = 2\n"})
    slots = exp.workspaces.diff("w2", "w1")
    assert [(f.path, f.status) for f in slots.files_changed] == [("other.py", "added")]


def test_diff_is_cut_at_the_configured_size(tmp_path: Path) -> None:
    project = make_project(tmp_path, config={"diff_max_chars: 20000": "diff_max_chars: 200"})
    project.workspaces.create("exp", "a goal for it", REASON)
    project.workspaces.mount("exp", "w1", REASON)
    write(project.slot_path("w1"), {"big.txt": "line\n" * 500})
    res = project.workspaces.diff("w1")
    assert res.truncated and len(res.diff_text) == 200 and "cut at 200" in res.summary


def test_diff_errors(exp: Project) -> None:
    exp.workspaces.create("b", "second line", REASON)
    exp.workspaces.mount("b", "w2", REASON)
    refused(exp, lambda: exp.workspaces.diff("v1"), InvalidInput, "2 are mounted")
    refused(exp, lambda: exp.workspaces.diff("exp@v9"), NotFound, "no version v9")
    refused(exp, lambda: exp.workspaces.diff("../etc"), InvalidInput, "not a slot")
    refused(exp, lambda: exp.workspaces.diff("w3"), NotFound, "empty")


def test_inspect_workspace(exp: Project) -> None:
    write(exp.slot_path("w1"), {"train.py": "lr = 0.2\n"})
    exp.workspaces.save_version("w1", "second version saved")
    exp.versions.manage("exp", "tag", version="v1", tag="baseline")
    exp.workspaces.create("child", "a fork of exp", REASON, from_workspace="exp", from_version="v1")
    res = exp.workspaces.inspect("w1", version_limit=1, include=["pipeline"])
    assert res.name == "exp" and res.slot == "w1" and res.is_mounted and res.dirty is False
    assert [v.version for v in res.lineage.versions] == ["v2"] and res.lineage.has_more
    assert res.lineage.branches == ["child"] and res.lineage.version_count == 2
    assert [(t.tag, t.version) for t in res.tags] == [("baseline", "v1")]
    assert res.pipeline == "stages: []\n"
    child = exp.workspaces.inspect("child", include=["pipeline"])
    assert child.lineage.parent == "exp" and child.lineage.parent_version == "v1"
    assert child.pipeline == "stages: []\n" and not child.is_mounted
    refused(exp, lambda: exp.workspaces.inspect("exp", include=["bogus"]), InvalidInput, "include")
    refused(exp, lambda: exp.workspaces.inspect("exp", version_limit=0), InvalidInput, "version_limit")


# ---------------------------------------------------------------------- recovery
def test_crash_after_ref_update_is_adopted(exp: Project) -> None:
    """A crash between the git ref update and the store commit leaves a commit and a tag no row
    knows: the next sync adopts them instead of calling the branch diverged."""
    ws = exp.workspaces
    write(exp.slot_path("w1"), {"train.py": "lr = 0.6\n"})
    row = exp.store.table("mounts").get_doc("w1")
    assert row
    staged = exp.dev_repo.stage_slot("exp", exp.slot_path("w1"), 10)
    commit = exp.dev_repo.commit(staged.tree, [row["head"]], ws._message("save_version: lost", "exp", "w1", row["mount_id"]))
    exp.dev_repo.update_refs([
        RefOp("update", DevRepo.branch_ref("exp"), new=commit, old=row["head"]),
        RefOp("create", "refs/tags/exp-v2", new=commit),
    ])
    saved = ws.save_version("w1", "after the simulated crash")
    assert saved.version == "v2" and saved.created is False  # adopted, and nothing changed since
    v2 = exp.versions.get("exp", "v2")
    assert v2 and v2.created_by == "recovered" and v2.sha == commit
    write(exp.slot_path("w1"), {"train.py": "lr = 0.65\n"})
    assert ws.save_version("w1", "a normal save again").version == "v3"


def test_orphan_tag_without_branch_move_is_adopted(exp: Project) -> None:
    head = exp.dev_repo.head("exp")
    exp.dev_repo.update_refs([RefOp("create", "refs/tags/exp-v2", new=str(head))])
    write(exp.slot_path("w1"), {"train.py": "lr = 0.8\n"})
    saved = exp.workspaces.save_version("w1", "numbering continues after it")
    assert saved.version == "v3"
    assert [v.version for v in exp.versions.rows("exp")] == ["v1", "v2", "v3"]


def test_resolve_names(exp: Project) -> None:
    assert exp.workspaces.resolve("w1") == ("exp", "w1")
    assert exp.workspaces.resolve("exp") == ("exp", "w1")
    with pytest.raises(NotFound, match=re.escape('Did you mean "exp"')):
        exp.workspaces.resolve("exq")
    with pytest.raises(InvalidInput, match="neither a slot"):
        exp.workspaces.resolve("a/b")


def test_git_identity_is_the_dev_repos_own(exp: Project) -> None:
    head = exp.dev_repo.head("exp")
    author = subprocess.run(["git", "-C", str(exp.dev_path), "log", "-1", "--format=%an <%ae>", str(head)],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert author == "Goldfish <goldfish@localhost>"


def test_rollback_never_overwrites_unversioned_files(exp: Project) -> None:
    slot = exp.slot_path("w1")
    write(slot, {"data.csv": "tracked,small\n"})
    exp.workspaces.save_version("w1", "with a small csv file")  # v2 holds data.csv
    write(slot, {".gitignore": "*.csv\n", "data.csv": "local data, now ignored\n"})
    exp.workspaces.save_version("w1", "csv files are ignored now")  # v3 without data.csv
    err = refused(exp, lambda: exp.workspaces.rollback("w1", "v2", REASON), Conflict, "in the way of data.csv")
    assert "Move them out" in (err.fix or "")
    assert len(exp.versions.rows("exp")) == 3  # refused before the auto-save
    (slot / "data.csv").rename(exp.root / "data.csv")
    exp.workspaces.rollback("w1", "v2", REASON)
    assert (slot / "data.csv").read_text() == "tracked,small\n"


def test_rollback_replaces_a_directory_of_versioned_files_by_a_file(exp: Project) -> None:
    slot = exp.slot_path("w1")
    write(slot, {"model": "a single file\n"})
    exp.workspaces.save_version("w1", "model as a single file")  # v2
    (slot / "model").unlink()
    write(slot, {"model/a.py": "a = 1\n", "model/b.py": "b = 2\n"})
    exp.workspaces.save_version("w1", "model as a package")  # v3
    exp.workspaces.rollback("w1", "v2", REASON)
    assert (slot / "model").read_text() == "a single file\n"
    exp.workspaces.rollback("w1", "v3", REASON)
    assert (slot / "model" / "b.py").read_text() == "b = 2\n"


def test_symlinked_slot_directory_is_refused(project: Project, tmp_path: Path) -> None:
    project.workspaces.create("exp", "find a good model", REASON)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, project.slot_path("w1"))
    refused(project, lambda: project.workspaces.mount("exp", "w1", REASON), InvalidInput, "resolves outside")
    assert list(elsewhere.iterdir()) == []


def test_cli_status_shows_versions_and_changes(exp: Project) -> None:
    write(exp.slot_path("w1"), {"train.py": "lr = 0.3\n"})
    proc = subprocess.run([sys.executable, "-m", "goldfish", "--project", str(exp.root), "status"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert "w1: exp v1 dirty (1 files)" in proc.stdout and "w2: (empty)" in proc.stdout
