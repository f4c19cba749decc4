"""`goldfish init`, project discovery and the CLI, run as real subprocesses with no global git identity."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from goldfish.errors import Conflict, InvalidInput, NotInitialized
from goldfish.init import init_project
from goldfish.project import Project, find_project_root

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "goldfish", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _snapshot(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        if ".git" in p.parts and p.name in {"index", "ORIG_HEAD", "FETCH_HEAD"}:
            continue
        out[str(p.relative_to(root))] = p.read_bytes() if p.is_file() else None
    return out


def test_init_with_no_global_git_identity_then_idempotent(tmp_path: Path) -> None:
    assert "GIT_CONFIG_GLOBAL" in os.environ  # conftest: no global identity
    proc = _cli("init", "proj", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Initialized Goldfish project 'proj'" in proc.stdout
    root, dev = tmp_path / "proj", tmp_path / "proj-dev"
    assert (root / "goldfish.yaml").is_file() and (root / "workspaces").is_dir()
    assert (dev / ".git").is_dir() and (dev / "STATE.md").is_file()
    for sub in ("store", "runs", "objects", "backups"):
        assert (dev / ".goldfish" / sub).is_dir()
    branch = subprocess.run(["git", "-C", str(dev), "branch", "--show-current"], capture_output=True, text=True)
    assert branch.stdout.strip() == "main"
    ident = subprocess.run(["git", "-C", str(dev), "config", "user.email"], capture_output=True, text=True)
    assert ident.stdout.strip()
    assert ".goldfish/" in (dev / ".gitignore").read_text()
    project = Project.open(root)
    assert project.config.project_name == "proj"
    assert project.config.jobs.backend == "local"

    before = _snapshot(tmp_path)
    again = _cli("init", "proj", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already initialized; nothing changed" in again.stdout
    assert _snapshot(tmp_path) == before


def test_status_and_discovery_from_a_subdirectory(tmp_path: Path) -> None:
    init_project(tmp_path / "p")
    sub = tmp_path / "p" / "workspaces"
    assert find_project_root(start=sub) == (tmp_path / "p").resolve()
    proc = _cli("status", cwd=sub)
    assert proc.returncode == 0, proc.stderr
    assert "Goldfish project p" in proc.stdout and "w1: (empty)" in proc.stdout
    proc = _cli("--project", str(tmp_path / "p"), "status", cwd=tmp_path)
    assert proc.returncode == 0 and "backend:  local" in proc.stdout


def test_status_outside_a_project_says_how_to_init(tmp_path: Path) -> None:
    proc = _cli("status", cwd=tmp_path)
    assert proc.returncode == 2
    assert "goldfish init" in proc.stderr
    with pytest.raises(NotInitialized):
        find_project_root(tmp_path / "nope")


def test_init_refuses_inside_a_dev_repo_and_writes_nothing(tmp_path: Path) -> None:
    init_project(tmp_path / "p")
    before = _snapshot(tmp_path)
    with pytest.raises(Conflict, match="inside the Goldfish dev repo"):
        init_project(tmp_path / "p-dev" / "inner")
    with pytest.raises(Conflict, match="inside the existing Goldfish project"):
        init_project(tmp_path / "p" / "workspaces" / "nested")
    assert _snapshot(tmp_path) == before


def test_init_refuses_someone_elses_goldfish_yaml(tmp_path: Path) -> None:
    root = tmp_path / "theirs"
    root.mkdir()
    (root / "goldfish.yaml").write_text("project_name: other\ndev_repo_path: other-dev\n")
    before = _snapshot(tmp_path)
    with pytest.raises(Conflict, match=r"dev repo .* is missing"):
        init_project(root)
    assert _snapshot(tmp_path) == before
    (root / "goldfish.yaml").write_text("something: [unrelated\n")
    before = _snapshot(tmp_path)
    with pytest.raises(Conflict, match="not a valid Goldfish config"):
        init_project(root)
    assert _snapshot(tmp_path) == before


def test_init_refuses_bad_names_and_foreign_dev_dirs(tmp_path: Path) -> None:
    (tmp_path / "bad name").mkdir()
    with pytest.raises(InvalidInput, match="--name"):
        init_project(tmp_path / "bad name")
    (tmp_path / "q-dev").mkdir()
    (tmp_path / "q-dev" / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    with pytest.raises(Conflict, match="does not belong to this project"):
        init_project(tmp_path / "q")
    (tmp_path / "file").write_text("x")
    before = _snapshot(tmp_path)
    with pytest.raises(InvalidInput, match="not a directory"):
        init_project(tmp_path / "file")
    assert _snapshot(tmp_path) == before


def test_init_name_mismatch_is_refused(tmp_path: Path) -> None:
    init_project(tmp_path / "p")
    with pytest.raises(Conflict, match="belongs to project 'p'"):
        init_project(tmp_path / "p", name="other")


def test_cli_version_and_doctor(tmp_path: Path) -> None:
    proc = _cli("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("goldfish ")
    init_project(tmp_path / "p")
    proc = _cli("doctor", cwd=tmp_path / "p")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok ] git" in proc.stdout and "[ok ] store" in proc.stdout
    assert "ANTHROPIC_API_KEY" in proc.stdout and "enables:" in proc.stdout


def test_demo_creates_a_project_and_prints_status(tmp_path: Path) -> None:
    proc = _cli("demo", "--dir", str(tmp_path / "d"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Goldfish project d" in proc.stdout and "claude mcp add goldfish" in proc.stdout
    assert (tmp_path / "d" / "goldfish.yaml").is_file()
