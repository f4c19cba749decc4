"""Run engine latency, against a baseline measured in the same process.

1. run() call → records created (the pipeline run's created_at) and → the stage process starting
   (its first line records time.time()), for a 50-file workspace. Baseline: a raw `git add -A &&
   git commit` of the same 50 files plus spawning `python -c pass`. Targets: records <= 300 ms,
   stage start <= 300 ms (median; the first sample, made before any standby runner waits, is
   reported apart). ``--no-standby`` sets ``jobs.standby_idle_seconds: 0`` (a runner process is
   spawned per run, started while run() does its own work).
2. N sequential one-stage runs end to end (run, wait until completed, finalize), per-run time.

    python benchmarks/run_bench.py [--runs 100] [--samples 10] [--no-standby]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goldfish.init import init_project
from goldfish.project import Project
from goldfish.runs.state import parse_iso

SPEC = {"primary_metric": "acc", "direction": "maximize", "min_value": 0.1, "goal_value": 0.9,
        "dataset_split": "val", "tolerance": 0.01, "context": "Benchmark of the run engine latency."}
REASON = "Benchmark run: measure run() latency"
STAGE = ("import time\nT0 = time.time()\nimport os, json\n"
         "open(os.path.join(os.environ['GOLDFISH_OUTPUTS_DIR'], 'started'), 'w').write(repr(T0))\n")


def _mount(project: Project) -> Path:
    project.workspaces.create("bench", goal="benchmark the run engine", reason="benchmark workspace setup")
    project.workspaces.mount("bench", "w1", reason="benchmark workspace mount")
    return project.slot_path("w1")


def setup(tmp: Path, standby: bool = True) -> tuple[Project, Path]:
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    result = init_project(tmp / "proj", "bench")
    import yaml

    cfg = Path(result.project_root) / "goldfish.yaml"
    data = yaml.safe_load(cfg.read_text())
    data.setdefault("pre_run_review", {})["enabled"] = False
    if not standby:
        data.setdefault("jobs", {})["standby_idle_seconds"] = 0
    cfg.write_text(yaml.safe_dump(data))
    project = Project.open(result.project_root, source="cli")
    slot = _mount(project)
    (slot / "modules").mkdir(exist_ok=True)
    (slot / "pipeline.yaml").write_text(
        "stages:\n  - name: s\n    outputs:\n      started: {type: file, schema: null}\n")
    (slot / "modules" / "s.py").write_text(STAGE)
    for i in range(48):
        (slot / "modules" / f"util_{i:02d}.py").write_text(f"VALUE = {i}\n" + "# padding\n" * 20)
    return project, slot


def baseline_repo(tmp: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp / "baseline"
    repo.mkdir()
    for i in range(50):
        (repo / f"f{i:02d}.py").write_text(f"VALUE = {i}\n" + "# padding\n" * 20)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    return repo, env


def baseline_sample(repo: Path, env: dict[str, str], i: int) -> float:
    (repo / "f00.py").write_text(f"VALUE = {i}\n")
    t0 = time.perf_counter()
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", f"c{i}"], check=True, env=env)
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def finalize(project: Project, result: object) -> None:
    with project.store.transaction() as tx:  # stands in for finalize_run (records work)
        for s in result.stage_runs:  # type: ignore[attr-defined]
            tx.table("runs", f"ws/{result.workspace}").patch(s.stage_run_id, {"results_status": "finalized"})  # type: ignore[attr-defined]


def latency(project: Project, slot: Path, samples: int, tmp: Path) -> tuple[list[float], list[float], list[float]]:
    """Each sample beside a baseline sample taken just before it (the load of a busy machine drifts)."""
    repo, env = baseline_repo(tmp)
    to_records, to_stage, base = [], [], []
    for i in range(samples):
        base.append(baseline_sample(repo, env, i))
        (slot / "modules" / "util_00.py").write_text(f"VALUE = {i}  # changed\n")
        t0 = time.time()
        result = project.runs.run("w1", reason=REASON, results_spec=SPEC)
        done = project.runs.wait(result.pipeline_run_id, 60)  # type: ignore[union-attr]
        assert done.status == "completed", done
        run = project.runs.get(done.stage_runs[0].stage_run_id)
        created = parse_iso(run["created_at"]) or 0.0
        started = float((project.runs_dir / run["id"] / "outputs" / "started").read_text())
        to_records.append(created - t0)
        to_stage.append(started - t0)
        finalize(project, done)
    return to_records, to_stage, base


def sequential(project: Project, slot: Path, runs: int) -> list[float]:
    times = []
    for i in range(runs):
        if i % 10 == 0:
            (slot / "modules" / "util_01.py").write_text(f"VALUE = {i}\n")
        t0 = time.perf_counter()
        result = project.runs.run("w1", reason=REASON, results_spec=SPEC)
        done = project.runs.wait(result.pipeline_run_id, 60)  # type: ignore[union-attr]
        times.append(time.perf_counter() - t0)
        assert done.status == "completed", done
        finalize(project, done)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--no-standby", action="store_true", help="jobs.standby_idle_seconds: 0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:  # a runner may still be exiting
        tmp = Path(d)
        project, slot = setup(tmp, standby=not args.no_standby)
        to_records, to_stage, bases = latency(project, slot, args.samples, tmp)
        rec, stage, base = statistics.median(to_records), statistics.median(to_stage), statistics.median(bases)
        pair = statistics.median(s / b for s, b in zip(to_stage, bases, strict=True))
        print(f"baseline (git add+commit of 50 files + python -c pass, median of {args.samples}): {base * 1000:7.1f} ms")
        print(f"run() -> records created  (median of {args.samples}): {rec * 1000:7.1f} ms"
              f"  ratio {rec / base:4.2f}x  target <= 300 ms: {'ok' if rec <= 0.3 else 'MISSED'}")
        print(f"run() -> stage starts     (median of {args.samples}): {stage * 1000:7.1f} ms"
              f"  ratio {stage / base:4.2f}x  target <= 300 ms: {'ok' if stage <= 0.3 else 'MISSED'}")
        print(f"run() -> stage starts / the baseline sample taken just before it: median ratio {pair:4.2f}x"
              f"  (a quiet machine's 30 ms baseline x this ratio = {30 * pair:5.0f} ms)")
        print(f"run() -> stage starts, first run of the process: {to_stage[0] * 1000:7.1f} ms"
              f"  ratio {to_stage[0] / bases[0]:4.2f}x")
        if args.runs:
            times = sequential(project, slot, args.runs)
            q = statistics.quantiles(times, n=20)
            print(f"{args.runs} sequential one-stage runs end to end: total {sum(times):6.1f} s, per run "
                  f"median {statistics.median(times) * 1000:6.0f} ms, p95 {q[18] * 1000:6.0f} ms, "
                  f"max {max(times) * 1000:6.0f} ms ({statistics.median(times) / base:4.1f}x baseline)")
        print(json.dumps({"baseline_ms": base * 1000, "records_ms": rec * 1000, "stage_start_ms": stage * 1000,
                          "first_stage_start_ms": to_stage[0] * 1000, "stage_start_ratio": pair}))
        standby = getattr(project.runs, "standby", None)  # absent in versions before the standby runner
        if standby is not None:
            standby.close()


if __name__ == "__main__":
    main()
