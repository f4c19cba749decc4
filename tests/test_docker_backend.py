"""The docker backend on the real daemon (scripts/setup-docker.sh): the demo end to end against a
local run, requirements, re-attach after a runner SIGKILL, cancel, timeout, --network none, a
stopped daemon, a failing Dockerfile, GPU refusal."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from goldfish.errors import Unavailable
from goldfish.images import records
from goldfish.pipelines.config_check import validate_config
from goldfish.project import Project
from goldfish.runs.lease import LeaseFile
from tests.docker_helpers import (
    VanishingDaemon,
    containers_of,
    daemon,
    demo_project,
    name_project,
    fresh_images,
    require_base_image,
)
from tests.run_helpers import REASON, SPEC, Env, file_stage, make_env, snapshot, wait_state, wait_terminal

pytestmark = pytest.mark.slow

DEMO_SPEC = {"primary_metric": "val/accuracy", "direction": "maximize", "min_value": 0.5, "goal_value": 0.95,
             "dataset_split": "val", "tolerance": 0.01, "context": "The demo pipeline on the docker backend."}
DEMO_REASON = {"description": "The demo pipeline, compared across backends", "hypothesis": "Same numbers"}


@pytest.fixture(scope="module", autouse=True)
def _daemon() -> Iterator[None]:
    require_base_image()
    with fresh_images():
        yield


def run_demo(root: Path, backend: str) -> tuple[Project, Any]:
    with pytest.MonkeyPatch.context() as mp:
        project = demo_project(root, backend, mp)
        result = project.runs.run("w1", reason=DEMO_REASON, results_spec=DEMO_SPEC, wait=True, wait_seconds=300)
    return project, result


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Project, Any]]:
    base = tmp_path_factory.mktemp("demos")
    return {backend: run_demo(base / f"demo-{backend}", backend) for backend in ("docker", "local")}


def by_stage(project: Project, result: Any) -> dict[str, dict[str, Any]]:
    return {s.stage: project.runs.get(s.stage_run_id) for s in result.stage_runs}


def test_demo_on_docker_matches_a_local_run_of_the_same_version(demos: dict[str, tuple[Project, Any]]) -> None:
    (dproject, dresult), (lproject, lresult) = demos["docker"], demos["local"]
    assert dresult.status == "completed", [(s.stage, s.state, s.error) for s in dresult.stage_runs]
    assert lresult.status == "completed", [(s.stage, s.state, s.error) for s in lresult.stage_runs]
    assert dresult.sha != "" and dresult.stages == lresult.stages
    docker_runs, local_runs = by_stage(dproject, dresult), by_stage(lproject, lresult)
    for stage in dresult.stages:
        d, loc = docker_runs[stage], local_runs[stage]
        assert d["backend"] == "docker" and loc["backend"] == "local"
        assert d["backend_handle"]["container_id"] and d["image"]["image_id"].startswith("sha256:")
        assert set(d) - {"image", "phase"} == set(loc) - {"python_env", "phase"}
        assert d["results_status"] == loc["results_status"] and d["infra_outcome"] == loc["infra_outcome"]
        assert set(d["metrics_summary"]) == set(loc["metrics_summary"])
        for name, summary in d["metrics_summary"].items():
            other = loc["metrics_summary"][name]
            assert summary["count"] == other["count"], name
            assert math.isclose(summary["last"], other["last"], rel_tol=1e-4, abs_tol=1e-6), name
        assert set(d["outputs"]) == set(loc["outputs"])
        for name in d["outputs"]:
            dpath, lpath = Path(d["run_dir"]) / "outputs", Path(loc["run_dir"]) / "outputs"
            dfiles = sorted(p.relative_to(dpath).as_posix() for p in dpath.glob(f"{name}*"))
            assert dfiles == sorted(p.relative_to(lpath).as_posix() for p in lpath.glob(f"{name}*"))
            for rel in dfiles:
                if rel.endswith(".npy"):
                    a, b = np.load(dpath / rel), np.load(lpath / rel)
                    assert a.shape == b.shape and a.dtype == b.dtype
                    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    drec = dproject.store.table("records", "ws/digits_mlp").docs()
    lrec = lproject.store.table("records", "ws/digits_mlp").docs()
    assert sorted(sorted(r) for r in drec) == sorted(sorted(r) for r in lrec)


def test_a_run_records_the_image_it_used_and_the_container_is_gone(demos: dict[str, tuple[Project, Any]]) -> None:
    project, result = demos["docker"]
    runs = by_stage(project, result)
    first = runs[result.stages[0]]
    assert first["image"]["built"] is True and first["image"]["build_id"]
    assert all(runs[s]["image"]["image_id"] == first["image"]["image_id"] for s in result.stages)
    assert all(runs[s]["image"]["built"] is False for s in result.stages[1:])
    build = records.get_build(project, first["image"]["build_id"])
    assert build is not None and build["status"] == "completed" and build["image_id"] == first["image"]["image_id"]
    image = daemon().images.get(first["image"]["tag"])
    assert image.id == first["image"]["image_id"]
    for stage in result.stages:
        assert containers_of(runs[stage]["id"]) == []  # removed once the exit code was on disk
        assert (Path(runs[stage]["run_dir"]) / "exit_code").read_text().strip() == "0"


# --------------------------------------------------------------------------- small pipelines
REQ_STAGE = '''
import inflection
from goldfish.io import get_output_path
from goldfish.metrics import log_metric
print("camelized:", inflection.camelize("docker_backend"), flush=True)
try:
    import pydantic  # Goldfish's, not the stage's
    print("pydantic importable", flush=True)
except ImportError:
    print("isolated: no pydantic", flush=True)
get_output_path("out").write_text("x")
log_metric("acc", 0.75)
'''


def one_stage(env: Env, code: str, *, config: dict[str, Any] | None = None,
              extra: dict[str, str] | None = None) -> None:
    stage = file_stage("s")
    env.write([stage], {"s": code}, {"s": config or {}})
    for name, text in (extra or {}).items():
        (env.slot / name).write_text(text)


@pytest.fixture
def denv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    env = make_env(tmp_path, monkeypatch)
    env.configure(jobs={"backend": "docker"})
    name_project(env.root, "proj")
    return env


def start(env: Env, **kwargs: Any) -> Any:
    return env.project.runs.run("w1", reason=REASON, results_spec=SPEC, **kwargs)


def finalize(project: Project, prun_id: str) -> None:
    project.records.finalize_run(prun_id, {"primary_metric": "acc", "direction": "maximize", "value": 0.75,
                                           "dataset_split": "val", "ml_outcome": "success",
                                           "notes": "finalized by the docker backend tests"})


def log_of(doc: dict[str, Any]) -> str:
    return (Path(doc["run_dir"]) / "logs" / "stdout.log").read_text()


def test_requirements_are_installed_on_docker_and_local_and_never_rebuilt(denv: Env) -> None:
    one_stage(denv, REQ_STAGE, extra={"requirements.txt": "inflection==0.5.1\n"})
    project = denv.project
    first = wait_terminal(project, start(denv).pipeline_run_id, 300)
    doc = project.runs.get(first.stage_runs[0].stage_run_id)
    assert doc["state"] == "completed", doc.get("error")
    assert "camelized: DockerBackend" in log_of(doc) and "isolated: no pydantic" in log_of(doc)
    assert doc["image"]["built"] is True and "building image" in log_of(doc)
    builds_after_first = len(records.builds(project))
    finalize(project, first.pipeline_run_id)

    second = wait_terminal(project, start(denv).pipeline_run_id, 120)
    assert second.version == first.version  # the same, unchanged version
    doc2 = project.runs.get(second.stage_runs[0].stage_run_id)
    assert doc2["state"] == "completed", doc2.get("error")
    assert doc2["image"]["built"] is False and doc2["image"]["image_id"] == doc["image"]["image_id"]
    assert len(records.builds(project)) == builds_after_first  # no build record: nothing was built
    finalize(project, second.pipeline_run_id)

    denv.configure(jobs={"backend": "local"})
    project = denv.project
    local = wait_terminal(project, start(denv).pipeline_run_id, 300)
    ldoc = project.runs.get(local.stage_runs[0].stage_run_id)
    assert ldoc["state"] == "completed", ldoc.get("error")
    assert "camelized: DockerBackend" in log_of(ldoc) and "isolated: no pydantic" in log_of(ldoc)
    assert ldoc["python_env"]["built"] is True and "building the Python environment" in log_of(ldoc)
    assert Path(ldoc["python_env"]["path"]).parent == project.gf_dir / "envs"
    finalize(project, local.pipeline_run_id)
    again = wait_terminal(project, start(denv).pipeline_run_id, 120)
    adoc = project.runs.get(again.stage_runs[0].stage_run_id)
    assert adoc["state"] == "completed" and adoc["python_env"]["built"] is False
    assert adoc["python_env"]["key"] == ldoc["python_env"]["key"]


def test_a_requirement_that_cannot_be_installed_fails_the_stage_with_cause_environment(denv: Env) -> None:
    one_stage(denv, REQ_STAGE, extra={"requirements.txt": "inflection==0.0.999\n"})
    project = denv.project
    result = wait_terminal(project, start(denv).pipeline_run_id, 300)
    doc = project.runs.get(result.stage_runs[0].stage_run_id)
    assert (doc["state"], doc["cause"]) == ("failed", "environment")
    assert "inflection==0.0.999" in doc["error"] and "get_build_status" in doc["error"]
    build = records.get_build(project, doc["error"].split("get_build_status('")[1][:14])
    assert build is not None and build["status"] == "failed" and "pip install -r" in build["failed_step"]
    assert not [t for i in daemon().images.list() for t in i.tags if t == build["image_tag"]]  # nothing tagged
    denv.configure(jobs={"backend": "local"})
    local = wait_terminal(denv.project, start(denv).pipeline_run_id, 300)
    ldoc = denv.project.runs.get(local.stage_runs[0].stage_run_id)
    assert (ldoc["state"], ldoc["cause"]) == ("failed", "environment")
    assert "inflection" in ldoc["error"] and "requirements.txt" in ldoc["error"]


def test_a_dockerfile_whose_run_fails_names_the_step_and_tags_nothing(denv: Env) -> None:
    one_stage(denv, "print('never runs')\n",
              extra={"Dockerfile.cpu": "FROM goldfish-base-cpu\nRUN echo about-to-fail && false\n"})
    project = denv.project
    result = wait_terminal(project, start(denv).pipeline_run_id, 300)
    doc = project.runs.get(result.stage_runs[0].stage_run_id)
    assert (doc["state"], doc["cause"]) == ("failed", "environment")
    assert "RUN echo about-to-fail && false" in doc["error"]
    failed = [b for b in records.builds(project) if b["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["failed_step"] == "RUN echo about-to-fail && false"
    status = project.images.build_status(failed[0]["id"])
    assert status.status == "failed" and any("about-to-fail" in line for line in status.logs_tail)
    assert not [t for i in daemon().images.list() for t in i.tags if t == failed[0]["image_tag"]]


SLEEPER = '''
import time
from pathlib import Path
from goldfish.io import get_output_path, heartbeat, should_stop
for i in range(int(__import__("os").environ.get("TICKS", "60"))):
    heartbeat()
    if should_stop():
        break
    time.sleep(0.1)
get_output_path("out").write_text("done")
print("sleeper finished", flush=True)
'''


def test_runner_sigkill_mid_stage_reattaches_to_the_container(denv: Env) -> None:
    one_stage(denv, SLEEPER, config={"environment": {"TICKS": "60"}})
    project = denv.project
    started = start(denv)
    run_id = started.stage_runs[0].stage_run_id
    doc = wait_state(project, run_id, {"running"}, timeout=120)
    container_id = doc["backend_handle"]["container_id"]
    lease = LeaseFile(project.runs_dir / started.pipeline_run_id).read()
    assert lease is not None
    os.kill(lease.pid, signal.SIGKILL)
    assert [c.id for c in containers_of(run_id)] == [container_id]  # the stage lives on without its runner
    result = wait_terminal(project, started.pipeline_run_id, 120)  # wait() reconciles: a new runner re-attaches
    doc = project.runs.get(run_id)
    assert result.status == "completed" and doc["state"] == "completed", doc.get("error")
    assert doc["backend_handle"]["container_id"] == container_id
    assert "sleeper finished" in log_of(doc)
    assert containers_of(run_id) == []


def test_a_container_that_ended_while_no_runner_watched_is_settled_from_its_exit_status(denv: Env) -> None:
    one_stage(denv, SLEEPER, config={"environment": {"TICKS": "15"}})
    project = denv.project
    started = start(denv)
    run_id = started.stage_runs[0].stage_run_id
    wait_state(project, run_id, {"running"}, timeout=120)
    lease = LeaseFile(project.runs_dir / started.pipeline_run_id).read()
    assert lease is not None
    os.kill(lease.pid, signal.SIGKILL)
    (container,) = containers_of(run_id)
    assert container.wait(timeout=60)["StatusCode"] == 0  # it finishes with nobody supervising it
    result = wait_terminal(project, started.pipeline_run_id, 120)
    doc = project.runs.get(run_id)
    assert result.status == "completed" and (doc["state"], doc["exit_code"]) == ("completed", 0)
    assert containers_of(run_id) == []


def test_cancel_removes_the_container(denv: Env) -> None:
    one_stage(denv, SLEEPER, config={"environment": {"TICKS": "3000"}})
    project = denv.project
    started = start(denv)
    run_id = started.stage_runs[0].stage_run_id
    wait_state(project, run_id, {"running"}, timeout=120)
    assert len(containers_of(run_id)) == 1
    project.runs.cancel(run_id, "docker backend test: cancel a running container")
    doc = wait_state(project, run_id, {"canceled"}, timeout=60)
    assert doc["cause"] == "manual"
    deadline = time.monotonic() + 20
    while containers_of(run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert containers_of(run_id) == []


def test_max_runtime_terminates_the_container(denv: Env) -> None:
    one_stage(denv, "import time\nwhile True:\n    time.sleep(0.2)\n",
              config={"compute": {"max_runtime_seconds": 2}})
    project = denv.project
    result = wait_terminal(project, start(denv).pipeline_run_id, 120)
    doc = project.runs.get(result.stage_runs[0].stage_run_id)
    assert (doc["state"], doc["cause"]) == ("terminated", "max_runtime_exceeded")
    assert containers_of(doc["id"]) == []


def test_a_stage_cannot_open_a_tcp_connection_under_network_none(denv: Env) -> None:
    code = ("import socket\n"
            "socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
            "print('connected', flush=True)\n")
    one_stage(denv, code)
    project = denv.project
    result = wait_terminal(project, start(denv).pipeline_run_id, 120)
    doc = project.runs.get(result.stage_runs[0].stage_run_id)
    assert (doc["state"], doc["cause"]) == ("failed", "exit_nonzero")
    assert "Network is unreachable" in log_of(doc) and "connected" not in log_of(doc)
    spec = json.loads((Path(doc["run_dir"]) / "launch_request.json").read_text())["container"]
    assert spec["network"] == "none" and spec["labels"]["dev.goldfish.run_id"] == doc["id"]


def test_a_stopped_daemon_is_refused_before_anything_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.configure(jobs={"backend": "docker"}, docker={"host": f"unix://{tmp_path}/stopped.sock"})
    one_stage(env, "print('x')\n")
    project = env.project
    checked = validate_config(project)
    issue = next(i for i in checked.errors if "jobs.backend" in i.location)
    assert "no Docker daemon socket" in issue.message and "scripts/setup-docker.sh" in (issue.fix or "")
    dry = project.runs.run("w1", reason=REASON, results_spec=SPEC, dry_run=True)
    assert not dry.valid and dry.errors[0].location == "jobs.backend"  # type: ignore[union-attr]
    before = snapshot(env)
    with pytest.raises(Unavailable) as exc:
        project.runs.run("w1", reason=REASON, results_spec=SPEC)
    assert "cannot run stages here" in str(exc.value) and "setup-docker.sh" in str(exc.value)
    assert snapshot(env) == before
    assert project.store.table("runs", "ws/exp").docs() == []


def test_a_daemon_that_stops_after_run_fails_the_stage_backend_unavailable(denv: Env) -> None:
    daemon_sock = VanishingDaemon(denv.root / "daemon.sock")  # answers run()'s check, then is gone
    try:
        denv.configure(docker={"host": f"unix://{daemon_sock.path}"})
        one_stage(denv, "print('x')\n")
        project = denv.project
        started = start(denv)
        assert daemon_sock.gone.is_set() and not daemon_sock.path.exists()
        result = wait_terminal(project, started.pipeline_run_id, 60)
    finally:
        daemon_sock.close()
    doc = project.runs.get(result.stage_runs[0].stage_run_id)
    assert (doc["state"], doc["cause"]) == ("failed", "backend_unavailable")
    assert "no Docker daemon socket" in doc["error"] and "setup-docker.sh" in doc["error"]
    assert result.status == "failed" and doc["infra_outcome"] == "blocked"


def test_a_gpu_profile_is_refused_at_dry_run_without_an_nvidia_runtime(denv: Env) -> None:
    one_stage(denv, "print('x')\n", config={"compute": {"profile": "h100-spot"}})
    dry = denv.project.runs.run("w1", reason=REASON, results_spec=SPEC, dry_run=True)
    assert not dry.valid  # type: ignore[union-attr]
    issue = dry.errors[0]  # type: ignore[union-attr]
    assert issue.location == "jobs.backend" and "NVIDIA runtime" in issue.message
    assert "NVIDIA Container Toolkit" in (issue.fix or "")


def test_a_launch_never_recorded_is_found_by_label_and_only_our_container_is_touched(tmp_path: Path) -> None:
    from goldfish.runs.backends.base import LaunchSpec
    from goldfish.runs.backends.container import build_spec
    from goldfish.runs.backends.docker import LAUNCH_FILE, DockerBackend

    image = require_base_image()
    backend = DockerBackend()
    run_dir = tmp_path / "stage-0000beef"
    for sub in ("app/modules", "app/configs", "app/entrypoints", "outputs"):
        (run_dir / sub).mkdir(parents=True)

    def spec(launch_id: str) -> LaunchSpec:
        cspec = build_spec(image=image, command=["python", "-c", "import time; print('up', flush=True); time.sleep(30)"],
                           env={}, app_dir=str(run_dir / "app"), outputs_dir=str(run_dir / "outputs"), inputs={},
                           objects_dir=None, run_id=run_dir.name, launch_id=launch_id, pipeline_run_id="prun-0",
                           workspace="w", stage="s", project="p", pids_limit=64, memory_mb=256, cpus=1.0)
        return LaunchSpec(run_id=run_dir.name, run_dir=run_dir, argv=cspec.command, env={}, cwd=run_dir,
                          extra={"container": cspec.to_dict()})

    handle = backend.launch(spec("aaaa0001"))
    try:
        assert backend.status(handle).alive
        (run_dir / LAUNCH_FILE).unlink()  # the runner died before recording the launch
        adopted = backend.find_launch(run_dir)
        assert adopted is not None and adopted["container_id"] == handle["container_id"] and adopted["adopted"]
        # A handle whose labels do not match (another launch of the same run) is never stopped.
        stranger = {**handle, "launch_id": "ffff9999"}
        assert backend.cancel(stranger, 0.1).alive is False  # it sees no container of its own ...
        assert backend.status(handle).alive  # ... and ours still runs
        status = backend.cancel(handle, 1.0)
        assert not status.alive and status.exit_code in (143, 137)
        assert containers_of(run_dir.name) == []
        assert "up" in (run_dir / "logs" / "stdout.log").read_text()
    finally:
        for container in containers_of(run_dir.name):
            container.remove(force=True)
