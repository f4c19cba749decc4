"""The launch request of a prepared stage: what to run, where, in which environment.

Local: the stage runs with Goldfish's interpreter, or — when the version has a
``requirements.txt`` — in a cached virtual environment built from it (``runs/venvs.py``).
Docker: the stage runs in its project image (built only when its content changed,
``goldfish/images``), in the container described by ``backends/container.py``.

Building an environment is visible in the run: ``phase`` on the run document while it lasts and
lines in the stage log. A requirement or Dockerfile line that cannot be installed fails the
stage with cause ``environment``; a daemon that cannot be reached, ``backend_unavailable``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.errors import GoldfishError
from goldfish.runs import stage_env
from goldfish.runs.backends import container

if TYPE_CHECKING:
    from goldfish.pipelines.model import Stage
    from goldfish.pipelines.stage_config import StageConfig
    from goldfish.project import Project


class SetupFailure(Exception):
    def __init__(self, cause: str, message: str):
        super().__init__(message)
        self.cause, self.message = cause, message


def launch_request(
    project: Project,
    backend: str,
    doc: dict[str, Any],
    run_dir: Path,
    stage: Stage,
    config: StageConfig,
    resolved: dict[str, dict[str, Any]],
    binary: Path | None,
    *,
    note: Callable[[str], None],
    phase: Callable[[str | None], None],
) -> dict[str, Any]:
    app = run_dir / "app"
    if backend == "docker":
        return _docker(project, doc, run_dir, stage, config, resolved, note=note, phase=phase)
    if backend == "gce":
        return _gce(project, doc, run_dir, stage, config, resolved, note=note)
    runtime_config = stage_env.stage_runtime_config(stage, config, run_dir / "inputs", resolved)
    env = stage_env.stage_environment(project, doc, run_dir, config, runtime_config)
    request: dict[str, Any] = {"cwd": str(app), "env": env,
                               "memory_limit_mb": stage_env.memory_limit_mb(project, config)}
    if binary is not None:
        request["argv"] = [str(binary)]
        return request
    python = None
    if (app / "requirements.txt").is_file():
        from goldfish.runs.venvs import VenvFailed, ensure_sdk_dir, ensure_venv

        phase("building_environment")
        try:
            venv = ensure_venv(project, app / "requirements.txt", note=note)
        except VenvFailed as exc:
            raise SetupFailure("environment", exc.message) from None
        finally:
            phase(None)
        note(("built" if venv.built else "reusing") + f" Python environment {venv.key} ({venv.path})")
        python = str(venv.python)
        request["python_env"] = venv.to_dict()
        # Goldfish's own packages stay out of the stage's path: only the SDK copy joins the venv's.
        path = [str(app), str(app / "modules"), str(ensure_sdk_dir(project))]
        env["PYTHONPATH"] = os.pathsep.join(path)
    request["argv"] = stage_env.python_argv(app, stage.name, python=python)
    return request


def _docker(project: Project, doc: dict[str, Any], run_dir: Path, stage: Stage, config: StageConfig,
            resolved: dict[str, dict[str, Any]], *, note: Callable[[str], None],
            phase: Callable[[str | None], None]) -> dict[str, Any]:
    from goldfish.images.environment import EnvironmentError_, ensure_project_image
    from goldfish.runs.backends import dockerd

    app = run_dir / "app"
    gpus = stage_env.gpu_count(project, config)
    image_type = "gpu" if gpus else "cpu"
    phase("building_environment")
    try:
        choice = ensure_project_image(project, app, image_type, note=note, trigger=f"run:{doc['id']}")
    except EnvironmentError_ as exc:
        raise SetupFailure("environment", str(exc)) from None
    except GoldfishError:
        raise
    except Exception as exc:
        if dockerd.is_daemon_error(exc):
            found = dockerd.daemon_availability(project.config.docker.host)
            raise SetupFailure("backend_unavailable", found.render() if not found.ok else str(exc)) from None
        raise
    finally:
        phase(None)
    if not choice.built:
        note(f"reusing image {choice.tag} ({choice.image_id[:19]}): its environment is unchanged")
    inputs: dict[str, str] = {}
    for name, entry in resolved.items():
        location = entry.get("location")
        if location and "://" not in location:
            inputs[name] = str(Path(location).resolve())
    for part in container.APP_PARTS:
        (app / part).mkdir(exist_ok=True)
    outputs = run_dir / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    project.objects_dir.mkdir(parents=True, exist_ok=True)
    runtime_config = stage_env.stage_runtime_config(stage, config, Path(container.INPUTS_DIR), resolved)
    env = stage_env.stage_environment(project, doc, run_dir, config, runtime_config,
                                      container_paths=container.env_paths(objects=True))
    memory_mb, cpus, pids = stage_env.docker_limits(project, config)
    network = config.network if config.network is not None else project.config.docker.network == "bridge"
    if stage_env.offline_checkpoints(env, network=network):
        note("checkpoints go to the project's object store: the container has no network to reach the bucket")
    from goldfish.runs.backends.docker import new_launch_id

    spec = container.build_spec(
        image=choice.tag, command=container.stage_command(stage.runtime, stage.name, stage.entrypoint),
        env=env, app_dir=str(app), outputs_dir=str(outputs), inputs=inputs, objects_dir=str(project.objects_dir),
        run_id=doc["id"], launch_id=new_launch_id(), pipeline_run_id=doc.get("pipeline_run_id") or "",
        workspace=doc["workspace"], stage=stage.name, project=project.config.project_name,
        network="bridge" if network else "none", memory_mb=memory_mb, cpus=cpus, pids_limit=pids, gpus=gpus,
        user=f"{os.getuid()}:{os.getgid()}",
    )
    return {"argv": spec.command, "env": env, "cwd": container.APP_DIR, "memory_limit_mb": memory_mb,
            "container": spec.to_dict(), "image": choice.to_dict()}


def _gce(project: Project, doc: dict[str, Any], run_dir: Path, stage: Stage, config: StageConfig,
         resolved: dict[str, dict[str, Any]], *, note: Callable[[str], None]) -> dict[str, Any]:
    """A stage on a VM: its code and inputs go to the bucket with the run spec the worker reads
    (``runs/cloud.stage_remote``); the VM itself is found by the capacity search when launching."""
    from goldfish.pipelines.profiles import default_profile
    from goldfish.runs.cloud import stage_remote

    profile = config.profile or default_profile("gce")
    max_runtime = config.max_runtime_seconds or project.config.defaults.timeout_seconds
    bucket = project.config.gcs.bucket if project.config.gcs else "?"
    note(f"uploading the code and inputs to gs://{bucket}")
    try:
        remote = stage_remote(project, doc, run_dir, stage, config, resolved, profile, max_runtime)
    except GoldfishError as exc:
        raise SetupFailure("input_error", f"Staging for the VM failed: {exc}") from None
    return {"argv": remote.get("argv") or [], "env": {}, "cwd": container.APP_DIR, "memory_limit_mb": None,
            "remote": remote, "image": {"tag": remote["image"], "source": "registry"}}

