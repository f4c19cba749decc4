"""Cloud and image sections of goldfish.yaml: gcs, gce (with warm pool) and docker."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from goldfish.config._base import Section, rule_error
from goldfish.errors import ConfigError


def _prefix(value: str) -> str:
    # Prefixes are joined onto object names; a missing slash would glue two names together.
    if value and not value.endswith("/"):
        raise rule_error(f"a prefix must end with '/', got {value!r}. Fix: write {value + '/'!r}.")
    if value.startswith("/"):
        raise rule_error(
            f"a prefix must not start with '/', got {value!r}. Fix: write {value.lstrip('/')!r}."
        )
    return value


class GcsConfig(Section):
    bucket: str = Field(
        min_length=3,
        description=(
            "GCS bucket name (without gs://) for run outputs, checkpoints, backups and sources; "
            "stages see it as GOLDFISH_GCS_BUCKET."
        ),
    )
    sources_prefix: str = Field(default="sources/", description="Object prefix for registered data sources.")
    artifacts_prefix: str = Field(default="artifacts/", description="Object prefix for stage artifacts.")
    snapshots_prefix: str = Field(default="snapshots/", description="Object prefix for project snapshots.")
    datasets_prefix: str = Field(default="datasets/", description="Object prefix for uploaded datasets.")

    @field_validator("bucket")
    @classmethod
    def _bare_name(cls, value: str) -> str:
        if value.startswith("gs://") or "/" in value:
            bare = value.removeprefix("gs://").split("/")[0]
            raise rule_error(f"write the bucket name only, got {value!r}. Fix: bucket: {bare}")
        return value

    @field_validator("sources_prefix", "artifacts_prefix", "snapshots_prefix", "datasets_prefix")
    @classmethod
    def _prefixes(cls, value: str) -> str:
        return _prefix(value)


class WarmPoolConfig(Section):
    enabled: bool = Field(
        default=False, description="Keep GCE workers warm between runs so later stages skip VM boot."
    )
    max_instances: int = Field(default=2, ge=1, le=10, description="Most warm VMs kept at once.")
    idle_timeout_minutes: int = Field(
        default=30, ge=5, le=120, description="A warm VM idle this long is deleted."
    )
    profiles: list[str] = Field(
        default_factory=list,
        description="Compute profiles that may use warm VMs; an empty list means all profiles.",
    )
    watchdog_seconds: int = Field(
        default=21600,
        ge=3600,
        description="Hard limit on a warm VM's total lifetime (it deletes itself after this).",
    )
    preserve_paths: list[str] = Field(
        default_factory=list,
        description="Paths on a warm VM kept between runs (e.g. a dataset cache); everything else is wiped.",
    )


class GceEndpoints(Section):
    compute: str | None = Field(
        default=None, description="Compute Engine API endpoint URL; null is Google's (compute.googleapis.com)."
    )
    logging: str | None = Field(
        default=None, description="Cloud Logging API endpoint URL; null is Google's (logging.googleapis.com)."
    )
    anonymous: bool = Field(
        default=False,
        description="Call these endpoints without credentials (an emulator or a test fake); never for Google's.",
    )

    @field_validator("compute", "logging")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise rule_error(f"must be an http(s) URL, got {value!r}. Fix: write e.g. http://127.0.0.1:8085")
        return value


_ZONE_RE = re.compile(r"[a-z]+(?:-[a-z0-9]+)+-[a-z]", re.ASCII)
_GPU_NAMES = ("h100", "a100", "l4", "t4", "v100", "none")


class GceConfig(Section):
    project_id: str | None = Field(
        default=None,
        alias="project",
        description="Google Cloud project id. Required for the gce backend and Cloud Build.",
    )
    artifact_registry: str | None = Field(
        default=None,
        alias="image_uri",
        description="Artifact Registry path for images; null derives us-docker.pkg.dev/<project_id>/goldfish.",
    )
    zones: list[str] | None = Field(
        default=None,
        description="Zones to search for capacity, in order; overrides the profiles' default zones.",
    )
    region: str | None = Field(default=None, description="Region used when zones is not set.")
    service_account: str | None = Field(default=None, description="Service account e-mail the VMs run as.")
    profile_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        alias="profiles",
        description=(
            "Compute profile overrides by name, deep-merged into the built-in profiles; a new name "
            "defines a custom profile."
        ),
    )
    search_timeout_sec: int = Field(
        default=900, gt=0, description="Longest search for capacity across zones (seconds)."
    )
    initial_backoff_sec: float = Field(
        default=10.0, gt=0, description="First wait between capacity retries (seconds)."
    )
    backoff_multiplier: float = Field(
        default=1.5, ge=1, description="Growth factor of the wait between capacity retries."
    )
    max_attempts: int = Field(
        default=150, ge=1, description="Most launch attempts during one capacity search."
    )
    preemptible_preference: Literal["spot_first", "on_demand_first"] = Field(
        default="on_demand_first",
        description=(
            "For profiles that allow both: try spot capacity before on-demand ('spot_first') or after "
            "('on_demand_first')."
        ),
    )
    gpu_preference: list[str] = Field(
        default_factory=lambda: ["h100", "a100", "none"],
        description=(
            "Order in which a profile and its fallbacks are tried, by GPU (h100, a100, l4, t4, v100, none); "
            "unlisted GPUs come last."
        ),
    )
    max_preemption_retries: int = Field(
        default=3,
        ge=0,
        le=100,
        description=(
            "How many times a preempted spot VM's stage is relaunched (resuming from its checkpoints) before "
            "the run ends terminated/preempted."
        ),
    )
    poll_seconds: float = Field(
        default=5.0, ge=0.2, le=300, description="How often the runner reads a running VM's state and status objects."
    )
    endpoints: GceEndpoints = Field(
        default_factory=GceEndpoints,
        description="Other API endpoints (emulators, a test fake, private endpoints); empty for Google's.",
    )
    warm_pool: WarmPoolConfig = Field(default_factory=WarmPoolConfig, description="Warm VM pool.")

    @field_validator("zones")
    @classmethod
    def _some_zones(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise rule_error(
                "zones must not be an empty list. Fix: list at least one zone, or remove the key."
            )
        for zone in value or []:
            if not _ZONE_RE.fullmatch(zone):
                raise rule_error(f"{zone!r} is not a zone name. Fix: write zones like us-central1-a.")
        return value

    @field_validator("gpu_preference")
    @classmethod
    def _gpu_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in _GPU_NAMES:
                raise rule_error(f"unknown GPU {name!r}. Fix: use names from {', '.join(_GPU_NAMES)}.")
        return value

    @property
    def effective_project_id(self) -> str:
        if not self.project_id:
            raise ConfigError(
                "gce.project_id is not set in goldfish.yaml.",
                fix="Add it under gce, e.g. `gce: {project_id: my-gcp-project}`.",
            )
        return self.project_id

    @property
    def effective_artifact_registry(self) -> str:
        return self.artifact_registry or f"us-docker.pkg.dev/{self.effective_project_id}/goldfish"


class BaseImagesConfig(Section):
    cpu: str = Field(
        default="goldfish-base-cpu",
        min_length=1,
        description="CPU base image: a short name or a full image URL.",
    )
    gpu: str = Field(
        default="goldfish-base-gpu",
        min_length=1,
        description="GPU base image: a short name or a full image URL.",
    )


class CloudBuildConfig(Section):
    machine_type: str = Field(
        default="E2_HIGHCPU_32", description="Cloud Build machine type for image builds."
    )
    timeout_minutes: int = Field(default=60, ge=1, description="Cloud Build timeout (minutes).")
    disk_size_gb: int = Field(default=200, ge=10, description="Cloud Build disk size (GB).")
    fa3_wheel_gcs: str | None = Field(
        default=None,
        description="gs:// URL of a prebuilt FlashAttention-3 wheel, to skip compiling it in GPU builds.",
    )


class DockerConfig(Section):
    host: str | None = Field(
        default=None,
        description="Docker daemon address (unix:///path/docker.sock or tcp://host:port); null uses $DOCKER_HOST,"
        " then the daemon scripts/setup-docker.sh starts (unix:///run/goldfish-docker/docker.sock), then"
        " unix:///var/run/docker.sock.",
    )
    base_images: BaseImagesConfig = Field(
        default_factory=BaseImagesConfig, description="Base images project images are built from."
    )
    registry: str | None = Field(
        default=None,
        description="Registry that manage_base_images(action='push') pushes to, e.g. 127.0.0.1:5000/goldfish or"
        " us-docker.pkg.dev/<project>/goldfish; null uses gce.artifact_registry when the gce section is set.",
    )
    base_image_version: str | None = Field(
        default=None,
        description="Pin the base image tag (e.g. v11); null uses the version registered in the project.",
    )
    project_image_version: str | None = Field(
        default=None, description="Pin the project image tag; null uses the latest built one."
    )
    extra_packages: dict[Literal["cpu", "gpu", "base"], list[str]] = Field(
        default_factory=dict,
        description="pip requirements added to project images by image type: 'cpu', 'gpu', or 'base' (both).",
    )
    cloud_build: CloudBuildConfig = Field(
        default_factory=CloudBuildConfig, description="Cloud Build settings."
    )
    network: Literal["none", "bridge"] = Field(
        default="none",
        description="Network of docker-backend stage containers: 'none' (isolated) or 'bridge'.",
    )
    memory_limit_mb: int = Field(
        default=4096,
        gt=0,
        description="Memory cap (MB) of docker-backend stage containers when the compute profile sets none.",
    )
    cpus: float = Field(
        default=2.0,
        gt=0,
        description="CPU cap (cores) of docker-backend stage containers when the compute profile sets none.",
    )
    pids_limit: int = Field(
        default=256, ge=16, description="Process limit of docker-backend stage containers."
    )
