"""Docker backend latency, against a floor measured in the same process.

1. run() call → the stage's first line running inside its container (it records time.time() into
   its outputs), with a warm project image. Floor: `docker run --rm <image> python -c pass` (the
   CLI, or the SDK's containers.run when the CLI is absent) on the same image. Target: <= floor + 0.4 s.
2. The unchanged-environment build check: ensure_project_image() when the image exists (hashing the
   environment, resolving the base, looking the tag up). Target: <= 0.5 s.

Needs the daemon and base image of scripts/setup-docker.sh.

    python benchmarks/docker_bench.py [--samples 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goldfish.images.environment import ensure_project_image
from goldfish.init import init_project
from goldfish.project import Project
from goldfish.runs.backends import dockerd

SPEC = {"primary_metric": "acc", "direction": "maximize", "min_value": 0.1, "goal_value": 0.9,
        "dataset_split": "val", "tolerance": 0.01, "context": "Benchmark of the docker backend latency."}
REASON = "Benchmark run: measure docker stage start latency"
STAGE = ("import time\nT0 = time.time()\nimport os\n"
         "open(os.path.join(os.environ['GOLDFISH_OUTPUTS_DIR'], 'started'), 'w').write(repr(T0))\n")


def setup(tmp: Path, backend: str = "docker") -> tuple[Project, Path]:
    import yaml

    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    result = init_project(tmp / f"proj-{backend}", f"bench{backend}")
    cfg = Path(result.project_root) / "goldfish.yaml"
    data = yaml.safe_load(cfg.read_text())
    data.setdefault("pre_run_review", {})["enabled"] = False
    data.setdefault("jobs", {})["backend"] = backend
    cfg.write_text(yaml.safe_dump(data))
    project = Project.open(result.project_root, source="cli")
    project.workspaces.create("bench", goal="benchmark the docker backend", reason="benchmark workspace setup")
    project.workspaces.mount("bench", "w1", reason="benchmark workspace mount")
    slot = project.slot_path("w1")
    (slot / "modules").mkdir(exist_ok=True)
    (slot / "pipeline.yaml").write_text("stages:\n  - name: s\n    outputs:\n      started: {type: file, schema: null}\n")
    (slot / "modules" / "s.py").write_text(STAGE)
    return project, slot


def finalize(project: Project, result: object) -> None:
    with project.store.transaction() as tx:  # stands in for finalize_run (records work)
        for s in result.stage_runs:  # type: ignore[attr-defined]
            tx.table("runs", f"ws/{result.workspace}").patch(s.stage_run_id, {"results_status": "finalized"})  # type: ignore[attr-defined]


def one_run(project: Project) -> tuple[float, dict[str, object]]:
    t0 = time.time()
    result = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    done = project.runs.wait(result.pipeline_run_id, 300)  # type: ignore[union-attr]
    assert done.status == "completed", done
    run = project.runs.get(done.stage_runs[0].stage_run_id)
    started = float((project.runs_dir / run["id"] / "outputs" / "started").read_text())
    finalize(project, done)
    return started - t0, run


def starts(project: Project, slot: Path, samples: int) -> list[float]:
    out = []
    for i in range(samples):
        (slot / "modules" / "s.py").write_text(STAGE + f"# sample {i}\n")  # a new version each time
        out.append(one_run(project)[0])
    return out


def floor(image: str, samples: int) -> tuple[float, str]:
    cli = shutil.which("docker")
    env = {**os.environ, "DOCKER_HOST": dockerd.resolve_host()}
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        if cli:
            subprocess.run([cli, "run", "--rm", "--network", "none", image, "python", "-c", "pass"], check=True,
                           env=env, stdout=subprocess.DEVNULL)
        else:
            dockerd.client().containers.run(image, ["python", "-c", "pass"], remove=True, network_mode="none")
        times.append(time.perf_counter() - t0)
    return statistics.median(times), "docker CLI" if cli else "docker SDK containers.run"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    if not dockerd.daemon_availability().ok:
        sys.exit(f"docker_bench: {dockerd.daemon_availability().render()}")
    with tempfile.TemporaryDirectory() as d:
        project, slot = setup(Path(d))
        cold, run = one_run(project)  # builds the project image (not measured below)
        image = str(run["image"]["tag"])  # type: ignore[index]
        docker_starts = starts(project, slot, args.samples)
        local_project, local_slot = setup(Path(d), "local")
        one_run(local_project)
        local = statistics.median(starts(local_project, local_slot, args.samples))
        base, how = floor(image, args.samples)
        app = project.runs_dir / str(run["id"]) / "app"
        checks = []
        for _ in range(20):
            t0 = time.perf_counter()
            choice = ensure_project_image(project, app, "cpu")
            checks.append(time.perf_counter() - t0)
            assert not choice.built
        start = statistics.median(docker_starts)
        check = statistics.median(checks)
        print(f"first run (builds the project image): run() -> stage start {cold:6.2f} s")
        print(f"floor: `docker run --rm {image} python -c pass` ({how}, median of {args.samples}): {base:6.3f} s")
        print(f"run() -> stage starts in its container (warm image, median of {args.samples}): {start:6.3f} s"
              f"  = floor + {start - base:5.3f} s  target <= floor + 0.4 s: {'ok' if start <= base + 0.4 else 'MISSED'}")
        print(f"for reference, the local backend: run() -> stage starts (median of {args.samples}): {local:6.3f} s;"
              f" docker - local = {start - local:5.3f} s")
        print(f"unchanged-environment build check (median of 20, first {checks[0] * 1000:.0f} ms):"
              f" {check * 1000:6.1f} ms  target <= 500 ms: {'ok' if check <= 0.5 else 'MISSED'}")
        client = dockerd.client()
        sizes = {ref: round(client.images.get(ref).attrs.get("Size", 0) / 1e6) for ref in
                 (str(run["image"]["base_ref"]), image)}  # type: ignore[index]
        print("image sizes (MB): " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
        print(json.dumps({"floor_s": base, "stage_start_s": start, "over_floor_s": start - base,
                          "build_check_ms": check * 1000, "local_stage_start_s": local, "first_run_s": cold, "sizes_mb": sizes}))
        client.images.remove(image, force=True)


if __name__ == "__main__":
    main()
