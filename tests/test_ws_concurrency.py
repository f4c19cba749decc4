"""Two processes saving versions at once: numbers unique and gap-free per workspace, and every tag
on the commit of exactly the files its saver wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from goldfish.project import Project
from tests.ws_helpers import REASON, make_project, refs, tree_files

SAVES = 50

WORKER = r"""
import json, sys
from pathlib import Path
from goldfish.project import Project

root, slot, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
project = Project.open(root, source="test")
directory = project.slot_path(slot)
for i in range(count):
    (directory / f"{name}.txt").write_text(f"{name}-{i}")
    saved = project.workspaces.save_version(slot, f"save {i} by worker {name}")
    print(json.dumps({"i": i, "version": saved.version, "sha": saved.git_sha, "workspace": saved.workspace}), flush=True)
"""


def _run_workers(project: Project, jobs: list[tuple[str, str]]) -> dict[str, list[dict]]:
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", WORKER, str(project.root), slot, name, str(SAVES)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for slot, name in jobs
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
        out[name] = [json.loads(line) for line in stdout.splitlines()]
        assert len(out[name]) == SAVES
    return out


def _check_versions(project: Project, workspace: str) -> list[int]:
    rows = project.versions.rows(workspace)
    numbers = [r.number for r in rows]
    assert numbers == list(range(1, len(rows) + 1)), "unique and gap-free"
    all_refs = refs(project)
    for r in rows:
        assert all_refs[f"refs/tags/{workspace}-v{r.number}"] == r.sha
    return numbers


def test_two_processes_two_workspaces(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    for ws, slot in (("alpha", "w1"), ("beta", "w2")):
        project.workspaces.create(ws, f"workspace {ws}", REASON)
        project.workspaces.mount(ws, slot, REASON)
    results = _run_workers(project, [("w1", "alpha"), ("w2", "beta")])
    for ws in ("alpha", "beta"):
        assert _check_versions(project, ws) == list(range(1, SAVES + 1))
        for entry in results[ws]:
            assert entry["version"] == f"v{entry['i'] + 1}"
            assert tree_files(project, entry["sha"]) == {f"{ws}.txt": f"{ws}-{entry['i']}".encode()}


def test_two_processes_race_on_one_slot(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.workspaces.create("shared", "one slot, two writers", REASON)
    project.workspaces.mount("shared", "w1", REASON)
    results = _run_workers(project, [("w1", "a"), ("w1", "b")])
    numbers = _check_versions(project, "shared")
    assert SAVES <= len(numbers) <= 2 * SAVES  # a save that found nothing new returns the last version
    seen: set[str] = set()
    for name, entries in results.items():
        previous = 0
        for entry in entries:
            number = int(entry["version"][1:])
            assert number > previous, "each worker's versions increase"
            previous = number
            files = tree_files(project, entry["sha"])
            assert files[f"{name}.txt"] == f"{name}-{entry['i']}".encode(), "the version holds what it saved"
            seen.add(entry["version"])
    assert seen == {f"v{n}" for n in numbers}, "every version was returned to the worker that made it"
    assert project.workspaces.slot_status()[0].dirty is False
