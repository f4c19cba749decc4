"""What a version holds: the slot's .gitignore (real git), the size cap, reserved files — and the
Python scan used for dirty detection agrees with the actual commits."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from goldfish.workspaces.slots import IgnoreRules, blob_id, scan_slot
from tests.ws_helpers import REASON, make_project, tree_files, write

IGNORE_CASES = {
    ".gitignore": "build/\n**/*.ckpt\n!keep.ckpt\n*.log\n!important.log\n/top-only.txt\n",
    "train.py": "print('train')\n",
    "build/out.o": "object",
    "build/keep.ckpt": "inside an ignored dir: cannot be re-included",
    "src/build/nested.o": "build/ matches at any depth",
    "models/a.ckpt": "ignored",
    "models/deep/b.ckpt": "ignored",
    "models/keep.ckpt": "re-included",
    "keep.ckpt": "re-included at the root",
    "run.log": "ignored",
    "important.log": "re-included",
    "top-only.txt": "anchored: ignored",
    "sub/top-only.txt": "anchored pattern does not match here",
    "sub/.gitignore": "*.tmp\n!../x\n",
    "sub/a.tmp": "ignored by the nested file",
    "a.tmp": "not ignored at the root",
    "STATE.md": "never versioned",
    "sub/STATE.md": "only the root STATE.md is reserved",
}
EXPECTED = {
    ".gitignore", "train.py", "models/keep.ckpt", "keep.ckpt", "important.log", "sub/top-only.txt",
    "sub/.gitignore", "a.tmp", "sub/STATE.md",
}


@pytest.fixture
def mounted(tmp_path: Path):
    project = make_project(tmp_path)
    project.workspaces.create("exp", "find a good model", REASON)
    project.workspaces.mount("exp", "w1", REASON)
    return project, project.slot_path("w1")


def _python_view(project, slot_dir: Path) -> dict[str, tuple[str, str]]:
    limit = int(project.config.workspace.max_file_mb * 1_000_000)
    return scan_slot(slot_dir, max_bytes=limit, rules=IgnoreRules(slot_dir), cache={}).files


def test_gitignore_cases_in_actual_commits_and_python_scan_agrees(mounted) -> None:
    project, slot = mounted
    write(slot, IGNORE_CASES)
    saved = project.workspaces.save_version("w1", "gitignore semantics check")
    committed = tree_files(project, saved.git_sha)
    assert set(committed) == EXPECTED
    assert committed["models/keep.ckpt"] == b"re-included"
    # The Python scan (dirty detection, watcher filter) sees exactly the committed files and blobs.
    assert _python_view(project, slot) == project.dev_repo.ls_tree(saved.git_sha)
    status = project.workspaces.slot_status()[0]
    assert status.dirty is False and status.changed_count == 0


def test_tracked_file_later_ignored_leaves_the_next_version(mounted) -> None:
    project, slot = mounted
    write(slot, {"data.csv": "a,b\n1,2\n", "train.py": "x = 1\n"})
    first = project.workspaces.save_version("w1", "with the csv file in it")
    assert "data.csv" in tree_files(project, first.git_sha)
    write(slot, {".gitignore": "*.csv\n"})
    assert project.workspaces.slot_status()[0].dirty is True
    second = project.workspaces.save_version("w1", "csv files are now ignored")
    assert set(tree_files(project, second.git_sha)) == {".gitignore", "train.py"}
    assert (slot / "data.csv").exists()  # ignoring never deletes the file
    assert _python_view(project, slot) == project.dev_repo.ls_tree(second.git_sha)


def test_fifty_megabyte_file_is_left_out_and_named(mounted) -> None:
    project, slot = mounted
    write(slot, {"train.py": "print(1)\n"})
    with open(slot / "weights.bin", "wb") as f:
        f.truncate(50 * 1024 * 1024)
    saved = project.workspaces.save_version("w1", "training code without the weights")
    assert set(tree_files(project, saved.git_sha)) == {"train.py"}
    assert [s.path for s in saved.skipped_files] == ["weights.bin"]
    assert "register_source" in saved.skipped_files[0].reason
    assert saved.skipped_files[0].size_mb == pytest.approx(52.43, abs=0.01)
    # Never hashed into the object store, and not "dirty" forever either.
    assert project.workspaces.slot_status()[0].dirty is False
    objects = subprocess.run(["git", "-C", str(project.dev_path), "count-objects", "-v"],
                             capture_output=True, text=True, check=True).stdout
    size_kb = int(next(line.split()[1] for line in objects.splitlines() if line.startswith("size:")))
    assert size_kb < 1024


def test_file_that_grows_past_the_cap_drops_out(mounted) -> None:
    project, slot = mounted
    write(slot, {"small.bin": b"x" * 100})
    first = project.workspaces.save_version("w1", "small binary file saved")
    assert "small.bin" in tree_files(project, first.git_sha)
    with open(slot / "small.bin", "wb") as f:
        f.truncate(11 * 1_000_000)
    second = project.workspaces.save_version("w1", "binary grew past the cap")
    assert "small.bin" not in tree_files(project, second.git_sha)
    assert [s.path for s in second.skipped_files] == ["small.bin"]


def test_modes_symlinks_and_blob_ids_match_git(mounted) -> None:
    project, slot = mounted
    write(slot, {"run.sh": "#!/bin/sh\necho hi\n", "lib/util.py": "def f():\n    return 1\n", "empty.txt": ""})
    (slot / "run.sh").chmod(0o755)
    os.symlink("lib/util.py", slot / "util_link.py")
    saved = project.workspaces.save_version("w1", "modes and links present")
    tree = project.dev_repo.ls_tree(saved.git_sha)
    assert tree["run.sh"][0] == "100755" and tree["lib/util.py"][0] == "100644"
    assert tree["util_link.py"][0] == "120000"
    assert _python_view(project, slot) == tree
    hashed = subprocess.run(["git", "hash-object", str(slot / "lib/util.py")], capture_output=True, text=True).stdout
    assert blob_id((slot / "lib/util.py").read_bytes()) == hashed.strip()
    (slot / "run.sh").chmod(0o644)
    status = project.workspaces.slot_status()[0]
    assert status.dirty is True and [c.path for c in status.changed_files] == ["run.sh"]


def test_user_global_excludes_do_not_change_versions(mounted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, slot = mounted
    excludes = tmp_path / "global-ignore"
    excludes.write_text("*.py\n")
    (tmp_path / "gitconfig").write_text(f"[core]\n\texcludesFile = {excludes}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    write(slot, {"train.py": "print(2)\n"})
    saved = project.workspaces.save_version("w1", "python file despite global ignore")
    assert "train.py" in tree_files(project, saved.git_sha)


def test_damaged_index_is_rebuilt(mounted) -> None:
    project, slot = mounted
    write(slot, {"a.py": "a = 1\n"})
    project.workspaces.save_version("w1", "first save of the file")
    project.dev_repo.index_path("exp").write_bytes(b"garbage, not an index")
    write(slot, {"a.py": "a = 2\n"})
    saved = project.workspaces.save_version("w1", "save after index damage")
    assert tree_files(project, saved.git_sha) == {"a.py": b"a = 2\n"}


def test_file_name_that_is_not_utf8(mounted) -> None:
    project, slot = mounted
    write(slot, {"a.py": "a = 1\n"})
    project.workspaces.save_version("w1", "before the odd file name")
    with open(os.path.join(os.fsencode(slot), b"odd-\xff.txt"), "wb") as f:
        f.write(b"x")
    info = project.workspaces.slot_status()[0]
    assert info.dirty is True and info.changed_files[0].path == "odd-\\xff.txt"
    assert project.dirty.refresh("w1")["changed_count"] == 1  # type: ignore[index]
    saved = project.workspaces.save_version("w1", "with the odd file name")
    assert len(project.dev_repo.ls_tree(saved.git_sha)) == 2
    assert project.workspaces.slot_status()[0].dirty is False
