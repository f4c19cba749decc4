"""The slot watcher: live dirty state in the mount rows, liveness, ignore filtering, fallback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from goldfish.project import Project
from goldfish.workspaces.watcher import SlotWatcher, liveness_path, watcher_alive
from tests.ws_helpers import REASON, make_project, write


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def _row(project: Project, slot: str = "w1") -> dict:
    return project.store.table("mounts").get_doc(slot) or {}


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Project, SlotWatcher]]:
    project = make_project(tmp_path)
    project.workspaces.create("exp", "find a good model", REASON)
    project.workspaces.mount("exp", "w1", REASON)
    write(project.slot_path("w1"), {".gitignore": "scratch/\n", "train.py": "x = 1\n"})
    project.workspaces.save_version("w1", "first version saved")
    watcher = SlotWatcher(project)
    watcher.start()
    assert watcher.running
    try:
        yield project, watcher
    finally:
        watcher.stop()


def test_write_marks_dirty_and_save_clears(watched: tuple[Project, SlotWatcher]) -> None:
    project, _watcher = watched
    assert watcher_alive(project)
    data = orjson.loads(liveness_path(project).read_bytes())
    assert data["pid"] == os.getpid()
    write(project.slot_path("w1"), {"train.py": "x = 2\n", "new.py": "y = 1\n"})
    assert wait_for(lambda: _row(project).get("dirty") is True and _row(project).get("changed_count") == 2)
    assert _row(project)["changed_files"] == [{"path": "new.py", "status": "added"},
                                               {"path": "train.py", "status": "modified"}]
    info = project.workspaces.slot_status()[0]
    assert (info.dirty, info.dirty_source, info.changed_count) == (True, "watcher", 2)
    project.workspaces.save_version("w1", "second version saved")
    assert _row(project)["dirty"] is False
    time.sleep(0.3)  # events from the save's own writes (STATE.md, marker) must not re-dirty it
    assert _row(project)["dirty"] is False
    (project.slot_path("w1") / "new.py").unlink()
    assert wait_for(lambda: _row(project).get("changed_files") == [{"path": "new.py", "status": "deleted"}])


def test_ignored_paths_and_own_files_are_filtered(watched: tuple[Project, SlotWatcher]) -> None:
    project, watcher = watched
    assert wait_for(lambda: watcher.refreshes >= 1)
    time.sleep(0.2)
    baseline = watcher.refreshes
    write(project.slot_path("w1"), {"scratch/tmp.bin": "ignored", "STATE.md": "regenerated"})
    time.sleep(0.4)
    assert watcher.refreshes == baseline
    assert _row(project)["dirty"] is False
    write(project.slot_path("w1"), {".gitignore": "scratch/\n*.bin\n"})
    assert wait_for(lambda: watcher.refreshes > baseline)
    assert wait_for(lambda: _row(project).get("changed_files") == [{"path": ".gitignore", "status": "modified"}])


def test_mount_and_hibernate_while_watching(watched: tuple[Project, SlotWatcher]) -> None:
    project, _watcher = watched
    project.workspaces.create("other", "a second workspace", REASON)
    project.workspaces.mount("other", "w2", REASON)
    write(project.slot_path("w2"), {"a.py": "a = 1\n"})
    assert wait_for(lambda: _row(project, "w2").get("dirty") is True)
    project.workspaces.hibernate("w2", REASON)
    time.sleep(0.2)
    assert project.store.table("mounts").get_doc("w2") is None


def test_stop_removes_liveness_and_status_falls_back(watched: tuple[Project, SlotWatcher]) -> None:
    project, watcher = watched
    watcher.stop()
    assert not liveness_path(project).exists() and not watcher_alive(project)
    write(project.slot_path("w1"), {"train.py": "x = 3\n"})
    info = project.workspaces.slot_status()[0]
    assert (info.dirty, info.dirty_source) == (True, "hash_check")
    assert _row(project)["dirty"] is False  # nobody updated the row: the fallback computed it


def test_stale_or_dead_liveness_is_not_trusted(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = liveness_path(project)
    import socket

    path.write_bytes(orjson.dumps({"pid": int(dead.stdout), "ts": time.time(), "host": socket.gethostname()}))
    assert not watcher_alive(project)
    path.write_bytes(orjson.dumps({"pid": os.getpid(), "ts": time.time() - 60, "host": socket.gethostname()}))
    assert not watcher_alive(project)
    path.write_bytes(orjson.dumps({"pid": os.getpid(), "ts": time.time(), "host": socket.gethostname()}))
    assert watcher_alive(project)
    path.write_bytes(b"{not json")
    assert not watcher_alive(project)
