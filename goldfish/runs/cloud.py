"""The runner's side of cloud runs: what a gce stage is given before its VM exists.

- ``backend_context``: the backend's settings from goldfish.yaml and the bucket store;
- ``placement``: the capacity-search options of a compute profile (it and its fallbacks, in
  ``gce.gpu_preference`` order, with their zones and allowed provisioning models);
- ``image_for``: the project image a stage runs (the pinned or last pushed ``<registry>/<project>-<cpu|gpu>``);
- ``stage_remote``: uploads the version's code (``runs/<id>/app.tar.gz``) and every local input
  (``runs/<id>/inputs/<name>``) to the bucket, writes the run spec the worker reads
  (``runs/<id>/spec.json``: image, argv, the container environment, inputs, outputs prefix) and
  returns what ``launch`` needs (placement, labels, instance metadata).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.errors import ConfigError
from goldfish.pipelines.profiles import Profile, resolve_profiles
from goldfish.runs import stage_env
from goldfish.runs.backends import container
from goldfish.runs.backends.base import BackendContext
from goldfish.runs.backends.gce.instance import label_value
from goldfish.runs.run_objects import outputs_prefix, run_prefix

if TYPE_CHECKING:
    from goldfish.config import GoldfishConfig
    from goldfish.pipelines.model import Stage
    from goldfish.pipelines.stage_config import StageConfig
    from goldfish.project import Project

APP_DIRS = (*container.APP_PARTS, "loaders")
BOOT_MARGIN_SECONDS = 900  # boot, image pull and input staging before the stage starts


def gce_settings(config: GoldfishConfig) -> dict[str, Any]:
    gce = config.gce
    if gce is None:
        return {}
    return {
        "project_id": gce.project_id, "zones": gce.zones, "service_account": gce.service_account,
        "endpoints": gce.endpoints.model_dump(), "initial_backoff_sec": gce.initial_backoff_sec,
        "backoff_multiplier": gce.backoff_multiplier, "max_attempts": gce.max_attempts,
        "search_timeout_sec": gce.search_timeout_sec, "poll_seconds": gce.poll_seconds,
        "profile_zones": {name: list(o.get("zones") or []) for name, o in gce.profile_overrides.items()
                          if isinstance(o, dict)},
        "launching_grace_seconds": config.defaults.launching_grace_seconds,
        "sync_seconds": config.defaults.log_sync_interval,
        "bucket": config.gcs.bucket if config.gcs is not None else None,
    }


def backend_context(project: Project) -> BackendContext:
    config = project.config
    if config.jobs.backend != "gce":
        return BackendContext()
    return BackendContext(settings=gce_settings(config), objects=project.bucket)


def gce_backend(project: Project) -> Any:
    """A gce backend on this project's settings (for readers outside the runner: logs, the pool)."""
    from goldfish.runs.backends.gce import GceBackend

    return GceBackend(backend_context(project))


def profiles_of(config: GoldfishConfig) -> dict[str, Profile]:
    gce = config.gce
    return resolve_profiles(gce.profile_overrides if gce else None, zones=gce.zones if gce else None)


def _gpu_name(profile: Profile) -> str:
    if not profile.gpu:
        return "none"
    acc = profile.gpu.accelerator
    return next((short for short in ("h100", "a100", "l4", "t4", "v100") if short in acc), acc)


def placement(config: GoldfishConfig, profile_name: str) -> dict[str, Any]:
    """The capacity-search options for ``profile_name`` (see the module docstring)."""
    gce = config.gce
    assert gce is not None
    profiles = profiles_of(config)
    chosen = [profiles[profile_name], *(profiles[f] for f in profiles[profile_name].fallbacks)]
    rank = {name: i for i, name in enumerate(gce.gpu_preference)}
    chosen.sort(key=lambda p: rank.get(_gpu_name(p), len(rank)))  # stable: the profile first among equals
    options = []
    for p in chosen:
        options.append({
            "profile": p.name, "machine_type": p.machine_type, "accelerator": p.gpu.accelerator if p.gpu else None,
            "gpu_count": p.gpu_count, "zones": list(p.zones), "spot": p.preemptible_allowed,
            "on_demand": p.on_demand_allowed, "boot_disk": p.boot_disk.model_dump() if p.boot_disk else None,
            "boot_image": p.boot_image,
        })
    return {"options": options, "preemptible_preference": gce.preemptible_preference}


def image_for(project: Project, profile: Profile) -> str:
    """The project image a VM runs for this profile's kind: ``docker.project_image_version`` when
    pinned, else the newest push of the project image to the registry (``manage_base_images
    action='push'``), else ``<registry>/<project>-<cpu|gpu>:latest``."""
    from goldfish.images import records
    from goldfish.images.recipes import project_repo

    config = project.config
    assert config.gce is not None
    registry = config.docker.registry.rstrip("/") if config.docker.registry else config.gce.effective_artifact_registry
    repo = project_repo(config.project_name, profile.image_kind)
    if config.docker.project_image_version:
        return f"{registry}/{repo}:{config.docker.project_image_version}"
    pushes = [d for d in project.store.table("image_pushes", records.PARTITION).docs()
              if d.get("repo") == repo and str(d.get("registry_tag") or "").startswith(registry + "/")]
    if pushes:
        return str(max(pushes, key=lambda d: d.get("pushed_at") or "")["registry_tag"])
    return f"{registry}/{repo}:latest"


def _app_tar(app: Path) -> bytes:
    """The container's /app: modules/, configs/, entrypoints/ (and loaders/) of the version."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for sub in APP_DIRS:
            if (app / sub).is_dir():
                tar.add(app / sub, arcname=sub, filter=lambda t: None if t.issym() or t.islnk() else t)
    return buf.getvalue()


def stage_remote(project: Project, doc: dict[str, Any], run_dir: Path, stage: Stage, config: StageConfig,
                 resolved: dict[str, dict[str, Any]], profile_name: str, max_runtime: int) -> dict[str, Any]:
    """Upload what the worker stages and write its run spec; returns the launch extras."""
    gce, store = project.config.gce, project.bucket
    if gce is None or store is None:
        raise ConfigError("jobs.backend is gce but gce or gcs is not configured.",
                          fix="Add gce.project_id, gce.zones and gcs.bucket to goldfish.yaml.")
    run_id = doc["id"]
    base = run_prefix(run_id)
    store.put_bytes(_app_tar(run_dir / "app"), base + "app.tar.gz")
    inputs = []
    for name, entry in resolved.items():
        location = str(entry.get("location") or "")
        if location.startswith("gs://"):
            inputs.append({"name": name, "uri": location, "dir": location.endswith("/")})
            continue
        path = Path(location)
        key = f"{base}inputs/{name}"
        if path.is_dir():
            store.put_dir(path, key)
            inputs.append({"name": name, "uri": store.uri(key) + "/", "dir": True})
        else:
            inputs.append({"name": name, "uri": store.put_file(path, key).uri, "dir": False})
    profile = profiles_of(project.config)[profile_name]
    runtime = stage_env.stage_runtime_config(stage, config, Path(container.INPUTS_DIR), resolved)
    labels = {"goldfish-project": label_value(project.config.project_name), "goldfish-run": run_id,
              "goldfish-prun": doc.get("pipeline_run_id") or "", "goldfish-workspace": label_value(doc["workspace"]),
              "goldfish-stage": label_value(doc["stage"])}
    spec = {
        "run_id": run_id, "image": image_for(project, profile),
        "argv": container.stage_command("python", stage.name),
        "env": stage_env.container_environment(project, doc, config, runtime),
        "app": base + "app.tar.gz", "inputs": inputs, "outputs_prefix": outputs_prefix(run_id),
        "sync_seconds": project.config.defaults.log_sync_interval,
        "stop_grace_seconds": project.config.local.stop_grace_seconds,
        "max_runtime_seconds": max_runtime, "labels": labels, "gpus": profile.gpu_count,
    }
    store.put_bytes(json.dumps(spec).encode(), base + "spec.json")
    endpoints = gce.endpoints
    metadata = {"goldfish-bucket": store.bucket_name, "goldfish-spec": base + "spec.json",
                "goldfish-project": str(gce.project_id),
                "goldfish-watchdog-seconds": str(max_runtime + BOOT_MARGIN_SECONDS)}
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        metadata["goldfish-storage-endpoint"] = emulator
    if endpoints.compute:
        metadata["goldfish-compute-endpoint"] = endpoints.compute
    if endpoints.logging:
        metadata["goldfish-logging-endpoint"] = endpoints.logging
    return {"placement": placement(project.config, profile_name), "labels": labels, "metadata": metadata,
            "image": spec["image"], "max_run_seconds": max_runtime + 2 * BOOT_MARGIN_SECONDS}


def gce_log_lines(config: GoldfishConfig, filter_: str, *, limit: int = 100, page_token: str | None = None,
                  newest_first: bool = True) -> tuple[list[dict[str, Any]], str | None]:
    """Stage log lines of gce runs matching a Cloud Logging filter (for log search): ``[{timestamp,
    run_id, attempt, offset, text, labels}]`` and the next page's token. Give the filter a timestamp
    bound: without one Cloud Logging searches the last day only."""
    from goldfish.runs.backends.gce.cloud_logs import log_filter, read_log_lines

    settings = gce_settings(config)
    scoped = f"{log_filter(settings)} AND ({filter_})" if filter_ else log_filter(settings)
    return read_log_lines(settings, scoped, limit=limit, page_token=page_token, newest_first=newest_first)

