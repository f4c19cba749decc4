"""The top-level goldfish.yaml model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from goldfish import names
from goldfish.config._base import Section, relative_inside, rule_error
from goldfish.config.backups import BackupsConfig
from goldfish.config.cloud import DockerConfig, GceConfig, GcsConfig
from goldfish.config.sections import (
    AuditConfig,
    DefaultsConfig,
    JobsConfig,
    LocalConfig,
    MetricsConfig,
    PreRunReviewConfig,
    StateMdConfig,
    StorageConfig,
    WorkspaceConfig,
)
from goldfish.config.svs import SvsConfig
from goldfish.errors import ConfigError, InvalidInput

MAX_SLOTS = 100


def _slot(value: str) -> str:
    try:
        return names.workspace_name(value)
    except InvalidInput as exc:
        raise rule_error(f"{exc.message} Fix: {exc.fix}") from None


SlotName = Annotated[str, AfterValidator(_slot)]


class GoldfishConfig(Section):
    project_name: str = Field(
        description="Name of the ML project, shown in STATE.md, the dashboard and stage environments."
    )
    dev_repo_path: str = Field(
        description=(
            "The hidden dev repo Goldfish keeps versions in. A relative path is relative to the "
            "project's parent directory (e.g. myproj-dev, a sibling of the project)."
        ),
    )
    workspaces_dir: str = Field(
        default="workspaces",
        description="Directory, relative to the project, that holds the slot directories.",
    )
    slots: list[SlotName] = Field(
        default_factory=lambda: ["w1", "w2", "w3"],
        description=(
            f"Slot names a workspace can be mounted into. A number N is short for w1..wN (1 to {MAX_SLOTS})."
        ),
    )
    state_md: StateMdConfig = Field(default_factory=StateMdConfig, description="The STATE.md narrative.")
    audit: AuditConfig = Field(default_factory=AuditConfig, description="Audit trail rules.")
    defaults: DefaultsConfig = Field(
        default_factory=DefaultsConfig, description="Run timeouts and sync periods."
    )
    jobs: JobsConfig = Field(default_factory=JobsConfig, description="Execution backend and pipeline runner.")
    workspace: WorkspaceConfig = Field(
        default_factory=WorkspaceConfig, description="What goes into versions and how diffs are shown."
    )
    gcs: GcsConfig | None = Field(
        default=None, description="Google Cloud Storage bucket for outputs, checkpoints, backups and sources."
    )
    storage: StorageConfig = Field(
        default_factory=StorageConfig, description="Object storage for sources and artifacts."
    )
    gce: GceConfig | None = Field(
        default=None, description="Google Compute Engine settings, needed for jobs.backend: gce."
    )
    local: LocalConfig = Field(default_factory=LocalConfig, description="The local subprocess backend.")
    pre_run_review: PreRunReviewConfig = Field(
        default_factory=PreRunReviewConfig, description="Code review before each run."
    )
    svs: SvsConfig = Field(
        default_factory=SvsConfig, description="Semantic validation: checks, monitor and reviews."
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Where stage metrics are sent.")
    docker: DockerConfig = Field(
        default_factory=DockerConfig, description="Images and limits for the docker and gce backends."
    )
    backups: BackupsConfig = Field(
        default_factory=BackupsConfig, description="Backups of the store, the dev repo and goldfish.yaml (docs/backups.md)."
    )
    invariants: list[str] = Field(
        default_factory=list,
        description="Project rules written into STATE.md as DO NOT CHANGE (e.g. 'test split is fixed').",
    )

    @field_validator("project_name", "dev_repo_path")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip() or "\n" in value or "\x00" in value:
            raise rule_error(f"must be a non-empty single-line string, got {value!r}.")
        return value

    @field_validator("workspaces_dir")
    @classmethod
    def _workspaces_inside(cls, value: str) -> str:
        return relative_inside(value, "workspaces_dir", "workspaces")

    @field_validator("slots", mode="before")
    @classmethod
    def _expand_slots(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise rule_error(f"expected a list of names or a number, got {str(value).lower()}. Fix: slots: 3")
        if isinstance(value, int):
            if not 1 <= value <= MAX_SLOTS:
                raise rule_error(f"must be between 1 and {MAX_SLOTS}, got {value}. Fix: slots: 3")
            return [f"w{i}" for i in range(1, value + 1)]
        return value

    @field_validator("slots")
    @classmethod
    def _unique_slots(cls, value: list[str]) -> list[str]:
        if not value:
            raise rule_error("must not be empty. Fix: slots: [w1, w2, w3] or slots: 3")
        seen: set[str] = set()
        for index, slot in enumerate(value):
            # Case-insensitive: w1 and W1 would be one directory on macOS and Windows.
            if slot.lower() in seen:
                raise rule_error(
                    f"slot {slot!r} is listed twice. Fix: give every slot a different name.", at=(index,)
                )
            seen.add(slot.lower())
        if len(value) > MAX_SLOTS:
            raise rule_error(f"at most {MAX_SLOTS} slots, got {len(value)}.")
        return value

    @model_validator(mode="after")
    def _cross_section(self) -> GoldfishConfig:
        if self.storage.backend == "gcs" and self.gcs is None:
            raise rule_error(
                "is 'gcs' but there is no gcs section. Fix: add `gcs: {bucket: my-bucket}` "
                "or use storage.backend: local.",
                at=("storage", "backend"),
            )
        if self.jobs.backend == "gce" and (self.gce is None or not self.gce.project_id):
            raise rule_error(
                "is 'gce' but gce.project_id is not set. Fix: add `gce: {project_id: my-gcp-project}` "
                "or use jobs.backend: local.",
                at=("jobs", "backend"),
            )
        if self.jobs.backend == "gce" and self.gce is not None and not self.gce.zones:
            raise rule_error(
                "is 'gce' but gce.zones is not set. Fix: list the zones to run in, e.g. "
                "`zones: [us-central1-a, us-central1-b]` under gce (`gcloud compute zones list`).",
                at=("jobs", "backend"),
            )
        if self.jobs.backend == "gce" and self.gcs is None:
            raise rule_error(
                "is 'gce' but there is no gcs section: VMs keep their outputs and checkpoints in a bucket. "
                "Fix: add `gcs: {bucket: my-bucket}` (gcloud storage buckets create gs://my-bucket).",
                at=("jobs", "backend"),
            )
        return self

    # Paths ---------------------------------------------------------------------------------------

    def dev_repo(self, project_root: Path) -> Path:
        """The dev repo: absolute, or relative to the project's parent directory."""
        root = project_root.resolve()
        path = Path(self.dev_repo_path).expanduser()
        resolved = (path if path.is_absolute() else root.parent / path).resolve()
        if resolved == root:
            raise ConfigError(
                f"dev_repo_path {self.dev_repo_path!r} points at the project itself ({root}).",
                fix=f"Use a sibling directory, e.g. dev_repo_path: {root.name}-dev",
            )
        return resolved

    def workspaces_root(self, project_root: Path) -> Path:
        return project_root.resolve() / self.workspaces_dir

    def objects_root(self, project_root: Path) -> Path:
        """Root of the local object store (storage.local.root, relative to the dev repo)."""
        path = Path(self.storage.local.root).expanduser()
        return path if path.is_absolute() else self.dev_repo(project_root) / path

    def state_md_path(self, project_root: Path) -> Path:
        return self.dev_repo(project_root) / self.state_md.path
