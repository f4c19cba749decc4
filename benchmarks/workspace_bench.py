"""Workspace speed beside raw baselines measured in the same run.

    python benchmarks/workspace_bench.py [--files 1000] [--changed 10] [--reps 20]

Rows:
* save_version of a slot with N files, K changed per save, beside ``git add -A && git commit``
  in an ordinary repository holding a copy of the same files (target: ratio <= 1.5).
* watcher latency: a write in a slot until the mount row in the store says dirty (and back to
  clean after the write is undone) (target: median <= 300 ms).
* status() with 3 mounted slots of N files each: with a live watcher (rows are read) and
  without (the content-hash fallback, warm stat cache) (target: <= 50 ms).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from goldfish.init import init_project
from goldfish.project import Project
from goldfish.workspaces.watcher import SlotWatcher
from mcp_server.tools.project_tools import status_of

REASON = "benchmarking the workspace service"


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _populate(directory: Path, files: int) -> list[Path]:
    paths = []
    for i in range(files):
        path = directory / f"pkg{i % 20}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}\n" + "def f(x):\n    return x * 2\n" * 20)
        paths.append(path)
    (directory / ".gitignore").write_text("__pycache__/\n*.ckpt\n")
    return paths


def _touch(paths: list[Path], rep: int, changed: int) -> None:
    for path in paths[:changed]:
        with open(path, "a") as f:
            f.write(f"# edit {rep}\n")


def bench_save(root: Path, files: int, changed: int, reps: int) -> tuple[float, float]:
    init_project(root / "proj")
    project = Project.open(root / "proj", source="cli")
    project.workspaces.create("bench", "benchmark workspace", REASON)
    project.workspaces.mount("bench", "w1", REASON)
    slot_paths = _populate(project.slot_path("w1"), files)
    project.workspaces.save_version("w1", "initial benchmark files")

    raw = root / "raw"
    raw.mkdir()
    raw_paths = _populate(raw, files)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=raw, check=True, env=env)

    ours, theirs = [], []
    for rep in range(reps):
        # Interleaved, so both sides see the same machine state.
        _touch(slot_paths, rep, changed)
        t0 = time.perf_counter()
        project.workspaces.save_version("w1", f"benchmark save number {rep}")
        ours.append(time.perf_counter() - t0)
        _touch(raw_paths, rep, changed)
        t0 = time.perf_counter()
        subprocess.run(["git", "add", "-A"], cwd=raw, check=True, env=env)
        subprocess.run(["git", "commit", "-qm", f"rep {rep}"], cwd=raw, check=True, env=env)
        theirs.append(time.perf_counter() - t0)
    return _median_ms(ours), _median_ms(theirs)


def bench_watcher(root: Path, reps: int) -> float:
    init_project(root / "wproj")
    project = Project.open(root / "wproj", source="cli")
    project.workspaces.create("bench", "benchmark workspace", REASON)
    project.workspaces.mount("bench", "w1", REASON)
    target = project.slot_path("w1") / "train.py"
    target.write_text("x = 0\n")
    project.workspaces.save_version("w1", "initial benchmark files")
    watcher = SlotWatcher(project)
    watcher.start()
    samples = []
    try:
        for rep in range(reps):
            for content, want in ((f"x = {rep + 1}\n", True), ("x = 0\n", False)):
                t0 = time.perf_counter()
                target.write_text(content)
                while (project.store.table("mounts").get_doc("w1") or {}).get("dirty") is not want:
                    if time.perf_counter() - t0 > 10:
                        raise SystemExit("watcher did not react within 10 s")
                    time.sleep(0.001)
                samples.append(time.perf_counter() - t0)
                time.sleep(0.1)  # let the debounce window close before the next write
    finally:
        watcher.stop()
    return _median_ms(samples)


def bench_status(root: Path, files: int, reps: int) -> tuple[float, float]:
    init_project(root / "sproj")
    project = Project.open(root / "sproj", source="cli")
    for i, slot in enumerate(("w1", "w2", "w3")):
        project.workspaces.create(f"ws{i}", "benchmark workspace", REASON)
        project.workspaces.mount(f"ws{i}", slot, REASON)
        _populate(project.slot_path(slot), files)
        project.workspaces.save_version(slot, "initial benchmark files")
    time.sleep(2.1)  # past the racy-timestamp window, as in normal use
    status_of(project)  # warm the stat cache
    fallback = []
    for _ in range(reps):
        t0 = time.perf_counter()
        status_of(project)
        fallback.append(time.perf_counter() - t0)
    watcher = SlotWatcher(project)
    watcher.start()
    live = []
    try:
        for _ in range(reps):
            t0 = time.perf_counter()
            res = status_of(project)
            live.append(time.perf_counter() - t0)
            assert all(s.dirty_source == "watcher" for s in res.slots)
    finally:
        watcher.stop()
    return _median_ms(live), _median_ms(fallback)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gf-ws-bench-"))
    try:
        ours, raw = bench_save(root, args.files, args.changed, args.reps)
        print(f"save_version ({args.files} files, {args.changed} changed): {ours:.1f} ms   "
              f"raw git add -A && git commit: {raw:.1f} ms   ratio {ours / raw:.2f} (target <= 1.5)")
        latency = bench_watcher(root, args.reps)
        print(f"watcher latency write -> dirty in store: median {latency:.0f} ms (target <= 300)")
        live, fallback = bench_status(root, args.files, args.reps)
        print(f"status() 3 slots x {args.files} files: {live:.1f} ms with watcher, "
              f"{fallback:.1f} ms hash fallback (target <= 50)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
