"""TEMPORARY test stand-in for ``project.workspaces`` until the workspaces service lands on main.

Plain git on the dev repo: ``resolve``, ``sync_for_run`` and ``archive`` with the same names and
result shape as the real service. Installed only when Project has no ``workspaces`` of its own.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from goldfish.errors import NotFound
from goldfish.project import Project


class RunVersion(BaseModel):
    workspace: str
    slot: str
    version: str
    number: int
    sha: str
    tag: str
    reused: bool
    skipped_files: list[Any] = []


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> str:
    full = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t", **(env or {})}
    return subprocess.run(["git", "-C", str(repo), *args], env=full, input=input, check=True,
                          capture_output=True).stdout.decode().strip()


class ShimWorkspaces:
    def __init__(self, project: Project):
        self.project = project

    def resolve(self, name_or_slot: str) -> tuple[str, str | None]:
        if name_or_slot in self.project.config.slots:
            doc = self.project.store.table("mounts").get_doc(name_or_slot)
            if doc is None:
                raise NotFound(f"Slot {name_or_slot} is empty.", fix="mount first")
            return doc["workspace"], name_or_slot
        for doc in self.project.store.table("mounts").docs():
            if doc["workspace"] == name_or_slot:
                return name_or_slot, doc["id"]
        return name_or_slot, None

    def sync_for_run(self, workspace_or_slot: str, reason: str) -> RunVersion:
        ws, slot = self.resolve(workspace_or_slot)
        assert slot is not None
        repo = self.project.dev_path
        index = self.project.gf_dir / "index" / ws
        index.parent.mkdir(parents=True, exist_ok=True)
        env = {"GIT_INDEX_FILE": str(index), "GIT_WORK_TREE": str(self.project.slot_path(slot)),
               "GIT_DIR": str(repo / ".git")}
        with self.project.store.lock():
            _git(repo, "add", "-A", ".", env=env)
            tree = _git(repo, "write-tree", env=env)
            ref = f"refs/heads/goldfish/{ws}"
            head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "-q", ref],
                                  capture_output=True).stdout.decode().strip()
            versions = self.project.store.table("versions", f"ws/{ws}")
            if head and _git(repo, "rev-parse", f"{head}^{{tree}}") == tree:
                for row in versions.docs():
                    if row["sha"] == head:
                        return RunVersion(workspace=ws, slot=slot, version=row["id"], number=row["number"],
                                          sha=head, tag=row["tag"], reused=True)
            args = ["commit-tree", tree, "-m", f"run: {reason}"] + (["-p", head] if head else [])
            sha = _git(repo, *args)
            _git(repo, "update-ref", ref, sha)
            number = len(versions.ids()) + 1
            tag = f"{ws}-v{number}"
            _git(repo, "tag", tag, sha)
            with self.project.store.transaction() as tx:
                tx.table("versions", f"ws/{ws}").add({"number": number, "sha": sha, "tag": tag}, doc_id=f"v{number}")
        return RunVersion(workspace=ws, slot=slot, version=f"v{number}", number=number, sha=sha, tag=tag, reused=False)

    def archive(self, workspace: str, sha: str, dest: Path) -> None:
        data = subprocess.run(["git", "-C", str(self.project.dev_path), "archive", "--format=tar", sha],
                              check=True, capture_output=True).stdout
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")


_INSTALLED = False


def real_service() -> bool:
    """True when Project has its own workspaces service (the shim is then never installed)."""
    return "workspaces" in Project.__dict__ and not _INSTALLED


def install() -> None:
    global _INSTALLED
    if "workspaces" not in Project.__dict__:
        _INSTALLED = True
        prop = cached_property(lambda self: ShimWorkspaces(self))
        prop.__set_name__(Project, "workspaces")
        Project.workspaces = prop  # type: ignore[attr-defined]


def mount(project: Project, workspace: str, slot: str) -> Path:
    """Mount a new (empty) workspace into a slot."""
    path = project.slot_path(slot)
    path.mkdir(parents=True, exist_ok=True)
    with project.store.transaction() as tx:
        tx.table("workspaces").add({"goal": "test"}, doc_id=workspace)
        tx.table("mounts").add({"workspace": workspace}, doc_id=slot)
    return path
