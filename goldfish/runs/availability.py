"""Is the configured backend usable here? Asked before anything is recorded (validate_config,
``run(dry_run=True)``, ``run()``) and by the runner before it prepares a stage.

A backend that cannot run (daemon absent, credentials missing, no GPU runtime) is refused up front
with the reason and the fix, never accepted and left ``pending``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from goldfish.errors import GoldfishError, Unavailable
from goldfish.issues import Issue
from goldfish.runs.backends import Availability, backend_availability

if TYPE_CHECKING:
    from goldfish.config import GoldfishConfig
    from goldfish.project import Project
    from goldfish.runs.request import RunRequest


def backend_options(config: GoldfishConfig) -> dict[str, Any]:
    """Plain settings each backend is built from (backends never read goldfish.yaml themselves);
    the gce backend also gets the bucket store (``goldfish.storage``) it reads and writes."""
    options: dict[str, Any] = {"docker": {"host": config.docker.host}}
    if config.jobs.backend == "gce":
        from goldfish.runs.cloud import gce_settings
        from goldfish.storage import bucket_storage

        options["gce"] = {"settings": gce_settings(config), "objects": bucket_storage(config)}
    return options


def availability(project: Project, *, gpus: int = 0) -> Availability:
    config = project.config
    return backend_availability(config.jobs.backend, backend_options(config), gpus=gpus)


def backend_issue(project: Project, *, gpus: int = 0) -> Issue | None:
    """The refusal as a validation issue (location ``jobs.backend``), or None when usable."""
    found = availability(project, gpus=gpus)
    if found.ok:
        return None
    return Issue(location="jobs.backend", message=f"{project.config.jobs.backend}: {found.reason}", fix=found.fix)


def require_backend(project: Project, *, gpus: int = 0) -> None:
    """Raise ``Unavailable`` when the backend cannot start the stages."""
    found = availability(project, gpus=gpus)
    if not found.ok:
        raise Unavailable(f"jobs.backend: {project.config.jobs.backend} cannot run stages here: {found.reason}",
                          fix=found.fix)


def request_gpus(project: Project, request: RunRequest) -> int:
    """The most GPUs any requested stage's compute profile asks for (0 when the configs cannot be
    read: their errors are reported by validation, not here)."""
    from goldfish.pipelines.profiles import default_profile, resolve_profiles
    from goldfish.pipelines.stage_config import merge_stage_config

    config = project.config
    try:
        profiles = resolve_profiles(config.gce.profile_overrides if config.gce else None,
                                    zones=config.gce.zones if config.gce else None)
    except GoldfishError:
        return 0
    most = 0
    for stage in request.stages:
        try:
            merged = merge_stage_config(request.pipeline, stage, request.slot_path,
                                        request.config_overrides.get(stage) or None)
        except GoldfishError:
            continue
        profile = profiles.get(merged.profile or default_profile(config.jobs.backend))
        if profile is not None:
            most = max(most, profile.gpu_count)
    return most

