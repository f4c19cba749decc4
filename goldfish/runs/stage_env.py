"""What a stage process is given: its directories, inputs, environment and limits (the
on-disk contract shared with the stage SDK). Built by the runner in ``preparing`` from the archived version."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import goldfish
from goldfish.pipelines.model import Stage
from goldfish.pipelines.profiles import default_profile, local_limits, resolve_profiles
from goldfish.pipelines.signal_schema import contract_dict
from goldfish.pipelines.stage_config import StageConfig, resolve_placeholders

if TYPE_CHECKING:
    from goldfish.project import Project

PACKAGE_ROOT = Path(goldfish.__file__).resolve().parent.parent
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def stage_runtime_config(
    stage: Stage, config: StageConfig, inputs_dir: Path, resolved: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """``GOLDFISH_STAGE_CONFIG``: user keys + stage + inputs + outputs, schemas placeholder-resolved."""
    values = dict(config.values)
    values["stage"] = stage.name
    values["inputs"] = {
        name: {
            "location": str(inputs_dir / name),
            "format": spec.format or (resolved.get(name) or {}).get("format") or spec.type,
            "type": spec.type or (resolved.get(name) or {}).get("type"),
            "schema": resolve_placeholders(contract_dict(spec.contract), config),
        }
        for name, spec in stage.inputs.items()
    }
    values["outputs"] = {
        name: {
            "format": spec.format or spec.type,
            "type": spec.type,
            "schema": resolve_placeholders(contract_dict(spec.contract), config),
            "artifact": spec.artifact,
        }
        for name, spec in stage.outputs.items()
    }
    return values


def stage_inputs(inputs_dir: Path, resolved: dict[str, dict[str, Any]],
                 fetch: Callable[[str, int | None], Path] | None = None) -> None:
    """``inputs/<name>`` → a symlink to each resolved location (recreated from scratch); a ``gs://``
    location is first made local by ``fetch(uri, generation)`` (a verified, cached download)."""
    if inputs_dir.exists():
        shutil.rmtree(inputs_dir)
    inputs_dir.mkdir(parents=True)
    for name, entry in resolved.items():
        location = entry.get("location")
        if location and "://" in location and fetch is not None:
            location = str(fetch(location, entry.get("generation")))
        if location and "://" not in location:
            os.symlink(location, inputs_dir / name)


def memory_limit_mb(project: Project, config: StageConfig) -> int | None:
    """``local.memory_limit_mb``, else the profile's memory (capped to this machine) for a
    non-``local`` profile, else no limit."""
    if project.config.local.memory_limit_mb:
        return int(project.config.local.memory_limit_mb)
    gce = project.config.gce
    profiles = resolve_profiles(gce.profile_overrides if gce else None, zones=gce.zones if gce else None)
    name = config.profile or default_profile(project.config.jobs.backend)
    profile = profiles.get(name)
    if profile is None or profile.machine_type == "local":
        return None
    _cpus, memory_gb = local_limits(profile)
    return int(memory_gb * 1024)


def cpu_count(project: Project, config: StageConfig) -> int | None:
    if project.config.local.cpu_limit:
        return max(1, int(project.config.local.cpu_limit))
    gce = project.config.gce
    profiles = resolve_profiles(gce.profile_overrides if gce else None, zones=gce.zones if gce else None)
    profile = profiles.get(config.profile or default_profile(project.config.jobs.backend))
    if profile is None or profile.machine_type == "local":
        return None
    return local_limits(profile)[0]


def gpu_count(project: Project, config: StageConfig) -> int:
    """GPUs the stage's compute profile asks for (0 for CPU profiles and unknown names)."""
    gce = project.config.gce
    profiles = resolve_profiles(gce.profile_overrides if gce else None, zones=gce.zones if gce else None)
    profile = profiles.get(config.profile or default_profile(project.config.jobs.backend))
    return profile.gpu_count if profile is not None else 0


def stage_environment(
    project: Project,
    run: dict[str, Any],
    run_dir: Path,
    config: StageConfig,
    runtime_config: dict[str, Any],
    *,
    container_paths: dict[str, str] | None = None,
) -> dict[str, str]:
    """The stage's environment: this process's, minus GOLDFISH_*, plus the contract variables.

    In a container (``container_paths``: the in-container path variables) nothing of this
    process's environment is passed on: the image provides PATH and the rest."""
    if container_paths is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDFISH_")}
    else:
        env = {}
    cpus = cpu_count(project, config)
    if cpus:
        for var in THREAD_VARS:
            env.setdefault(var, str(cpus))
    env.update(config.environment)
    app = run_dir / "app"
    path = [str(app), str(app / "modules"), str(PACKAGE_ROOT)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    env.update(contract_env(project, run, runtime_config, inputs=run_dir / "inputs", outputs=run_dir / "outputs"))
    env["PYTHONPATH"] = os.pathsep.join(path)
    if project.config.storage.backend == "local":
        env["GOLDFISH_OBJECTS_DIR"] = str(project.objects_dir)
    if container_paths is not None:
        env.update(container_paths)
    return env


PRESERVE_DIR = "/mnt/preserve"  # a warm worker keeps gce.warm_pool.preserve_paths here between runs


def container_environment(project: Project, run: dict[str, Any], config: StageConfig,
                          runtime_config: dict[str, Any]) -> dict[str, str]:
    """The environment of a stage on a VM: the contract variables with the container layout of
    ``backends/container.py``, nothing of this machine's (no thread caps from its CPU count: the VM
    has the profile's). Checkpoints go to the bucket."""
    from goldfish.runs.backends import container

    env = dict(config.environment)
    env.update(contract_env(project, run, runtime_config, inputs=Path(container.INPUTS_DIR),
                            outputs=Path(container.OUTPUTS_DIR)))
    env.update(container.env_paths(objects=False))
    env.update({"GOLDFISH_STORAGE_BACKEND": "gcs", "GOLDFISH_PRESERVE_DIR": PRESERVE_DIR})
    return env


def contract_env(project: Project, run: dict[str, Any], runtime_config: dict[str, Any], *,
                 inputs: Path, outputs: Path) -> dict[str, str]:
    """The GOLDFISH_* variables the stage SDK reads (the on-disk contract), for these directories."""
    svs = project.config.svs
    env = {
        "PYTHONUNBUFFERED": "1",
        "GOLDFISH_INPUTS_DIR": str(inputs),
        "GOLDFISH_OUTPUTS_DIR": str(outputs),
        "GOLDFISH_STAGE_CONFIG": json.dumps(runtime_config, default=str),
        "GOLDFISH_RUN_ID": run["id"],
        "GOLDFISH_WORKSPACE": run["workspace"],
        "GOLDFISH_STAGE": run["stage"],
        "GOLDFISH_PROJECT_NAME": project.config.project_name,
        "GOLDFISH_PIPELINE_RUN_ID": run.get("pipeline_run_id") or "",
        "GOLDFISH_GIT_SHA": run.get("sha") or "",
        "GOLDFISH_SVS_CONFIG": json.dumps(
            {
                "enabled": svs.enabled,
                "stats_enabled": svs.enabled and svs.stats_enabled,
                "default_enforcement": svs.default_enforcement,
                "domain": svs.domain,
            }
        ),
        "GOLDFISH_SVS_STATS_ENABLED": "true" if svs.enabled and svs.stats_enabled else "false",
        "GOLDFISH_STORAGE_BACKEND": project.config.storage.backend,
        "GOLDFISH_METRICS_FLUSH_INTERVAL": "5",
    }
    if project.config.gcs is not None:
        env["GOLDFISH_GCS_BUCKET"] = project.config.gcs.bucket
    return env


def offline_checkpoints(env: dict[str, str], *, network: bool) -> bool:
    """A container without network can't upload to the bucket: its checkpoints go to the mounted
    object store instead of failing at the first ``save_checkpoint``. True when that applied."""
    if network or env.get("GOLDFISH_STORAGE_BACKEND") != "gcs" or "GOLDFISH_OBJECTS_DIR" not in env:
        return False
    env["GOLDFISH_STORAGE_BACKEND"] = "local"
    return True


def docker_limits(project: Project, config: StageConfig) -> tuple[int, float, int]:
    """(memory MB, cpus, pids) of a stage container: the profile's shape capped to this machine,
    else ``docker.memory_limit_mb`` / ``docker.cpus``; ``docker.pids_limit``."""
    docker = project.config.docker
    gce = project.config.gce
    profiles = resolve_profiles(gce.profile_overrides if gce else None, zones=gce.zones if gce else None)
    profile = profiles.get(config.profile or default_profile(project.config.jobs.backend))
    if profile is None or profile.machine_type == "local":
        return docker.memory_limit_mb, docker.cpus, docker.pids_limit
    cpus, memory_gb = local_limits(profile)
    return int(memory_gb * 1024), float(cpus), docker.pids_limit


def python_argv(app: Path, stage: str, python: str | None = None) -> list[str]:
    """The local stage command: Goldfish's interpreter, or the stage's requirements venv."""
    return [python or sys.executable, "-u", "-m", "stage_sdk._bootstrap", str(app / "modules" / f"{stage}.py")]
