"""Helpers for workspace tests: a real project, disk snapshots, a git call recorder."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from goldfish.init import init_project
from goldfish.project import Project

REASON = "a reason that is long enough"


def make_project(tmp_path: Path, name: str = "proj", config: dict[str, str] | None = None) -> Project:
    """A fresh project; ``config`` replaces text in the generated goldfish.yaml (old -> new)."""
    root = tmp_path / name
    init_project(root)
    if config:
        path = root / "goldfish.yaml"
        text = path.read_text()
        for old, new in config.items():
            assert old in text, old
            text = text.replace(old, new)
        path.write_text(text)
    return Project.open(root, source="test")


def write(slot_dir: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = slot_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def tree_files(project: Project, rev: str) -> dict[str, bytes]:
    """Path -> content of every file in a commit, read with plain git."""
    out = subprocess.run(
        ["git", "-C", str(project.dev_path), "ls-tree", "-r", "-z", "--name-only", rev],
        capture_output=True, check=True,
    ).stdout
    files = {}
    for name in out.split(b"\0"):
        if name:
            blob = subprocess.run(
                ["git", "-C", str(project.dev_path), "cat-file", "-p", f"{rev}:{name.decode()}"],
                capture_output=True, check=True,
            ).stdout
            files[name.decode()] = blob
    return files


def refs(project: Project) -> dict[str, str]:
    out = subprocess.run(
        ["git", "-C", str(project.dev_path), "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True, text=True, check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


# Caches that a refused call may legitimately refresh: neither is state.
_CACHE_DIRS = (".goldfish/index", ".goldfish/mounts")


def snapshot(project: Project) -> dict[str, object]:
    """Everything a refused call must leave as it was: project files (slots included), store
    files, event logs, STATE.md and the dev repo's refs."""
    files: dict[str, object] = {}
    for base in (project.root, project.dev_path):
        for path in sorted(base.rglob("*")):
            rel = str(path.relative_to(base.parent))
            if "/.git/" in rel + "/" or path.name == ".lock" or any(c in rel for c in _CACHE_DIRS):
                continue
            if path.is_symlink():
                files[rel] = ("link", os.readlink(path))
            elif path.is_file():
                files[rel] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
            else:
                files[rel] = "dir"
    files["__refs__"] = refs(project)
    return files


def assert_unchanged(project: Project, before: dict[str, object]) -> None:
    after = snapshot(project)
    if after != before:
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
        pytest.fail(f"disk changed: added={added} removed={removed} changed={changed}")


class GitRecorder:
    """Puts a logging `git` first on PATH: every git process Goldfish spawns is recorded."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        real = shutil.which("git")
        assert real
        self.dir = tmp_path / "gitshim"
        self.dir.mkdir()
        self.log = tmp_path / "git-calls.log"
        shim = self.dir / "git"
        shim.write_text(f'#!/bin/sh\necho "$*" >> "{self.log}"\nexec "{real}" "$@"\n')
        shim.chmod(0o755)
        monkeypatch.setenv("PATH", f"{self.dir}{os.pathsep}{os.environ['PATH']}")

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def reset(self) -> None:
        self.log.unlink(missing_ok=True)
