"""Project-level sections of goldfish.yaml: journal, timeouts, jobs, workspace, storage, local, metrics."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from goldfish.config._base import Section, relative_inside, rule_error


class StateMdConfig(Section):
    path: str = Field(
        default="STATE.md",
        description="Path of the global STATE.md narrative, relative to the dev repo.",
    )
    max_recent_actions: int = Field(
        default=15, ge=1, le=500, description="How many recent actions STATE.md lists."
    )

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        return relative_inside(value, "state_md.path", "STATE.md")


class AuditConfig(Section):
    min_reason_length: int = Field(
        default=15,
        ge=1,
        description="Minimum length of every reason, message, thought and note an agent gives a tool.",
    )


class DefaultsConfig(Section):
    timeout_seconds: int = Field(
        default=3600,
        gt=0,
        description="Run time limit in seconds when a stage's compute profile sets no max_runtime_seconds.",
    )
    log_sync_interval: int = Field(
        default=10,
        ge=1,
        le=300,
        description="Seconds between live syncs of a running stage's logs and metrics.",
    )
    capacity_wait_seconds: int = Field(
        default=600, ge=0, description="How long a cloud launch keeps retrying when no capacity is available."
    )
    launch_timeout_seconds: int = Field(
        default=2700,
        gt=0,
        description=(
            "How long a run may stay in launching before it is failed. Must be at least "
            "capacity_wait_seconds, so a launch still searching for capacity is never killed."
        ),
    )
    launching_grace_seconds: int = Field(
        default=600,
        ge=60,
        description="Liveness grace after launch: a worker that has not reported by then is treated as lost.",
    )

    @field_validator("launch_timeout_seconds")
    @classmethod
    def _covers_capacity_wait(cls, value: int, info: ValidationInfo) -> int:
        wait = info.data.get("capacity_wait_seconds")
        if isinstance(wait, int) and value < wait:
            raise rule_error(
                f"must be >= defaults.capacity_wait_seconds ({wait}), got {value}: a launch still "
                f"waiting for capacity would be killed. Fix: raise launch_timeout_seconds to at least "
                f"{wait} or lower capacity_wait_seconds."
            )
        return value


class JobsConfig(Section):
    backend: Literal["local", "docker", "gce"] = Field(
        default="local",
        description=(
            "Where stages run: 'local' (subprocess in the run directory, needs nothing but Python), "
            "'docker' (local Docker daemon) or 'gce' (Google Compute Engine VMs; needs the gce section)."
        ),
    )
    max_parallel_stages: int = Field(
        default=2,
        ge=1,
        le=64,
        description="How many independent stages of one pipeline run at the same time.",
    )
    runner_lease_seconds: int = Field(
        default=30,
        ge=5,
        le=600,
        description=(
            "Lease a pipeline runner renews while alive; a run whose lease expired and whose runner "
            "process is gone is picked up by the reconciler."
        ),
    )
    heartbeat_grace_seconds: int = Field(
        default=120,
        ge=1,
        description="A running stage whose heartbeat is older than this is reported as stalled.",
    )
    standby_idle_seconds: int = Field(
        default=600,
        ge=0,
        le=86400,
        description=(
            "A process that starts runs keeps one runner started ahead of time, so the next run's first "
            "stage starts without waiting for a new process; it exits after this many idle seconds "
            "(0 turns it off; otherwise at least 30)."
        ),
    )
    alert_window_hours: float = Field(
        default=24,
        gt=0,
        le=24 * 365,
        description=(
            "A failed or blocked run is an alert (dashboard(), goldfish tui, --fail-on-alerts) for this many "
            "hours after it ended, unless acknowledged sooner."
        ),
    )

    @field_validator("standby_idle_seconds")
    @classmethod
    def _standby_idle(cls, value: int) -> int:
        if 0 < value < 30:
            raise rule_error(f"must be 0 (off) or at least 30, got {value}. Fix: set 0 or a value >= 30.")
        return value


class WorkspaceConfig(Section):
    max_file_mb: float = Field(
        default=10.0,
        gt=0,
        description="Files in a slot larger than this (MB) are not committed into versions (keep data in sources).",
    )
    diff_max_chars: int = Field(
        default=20000,
        ge=100,
        description="Longest diff text (characters) a tool returns before truncating it.",
    )


class StorageLocalConfig(Section):
    root: str = Field(
        default=".goldfish/objects",
        min_length=1,
        description=(
            "Root of the local object store (sources, artifacts, checkpoints); relative paths are "
            "relative to the dev repo."
        ),
    )


_UNSUPPORTED_STORAGE = ("s3", "azure")


class StorageConfig(Section):
    backend: Literal["local", "gcs"] = Field(
        default="local",
        description=(
            "Where sources, artifacts and checkpoints are stored: 'local' (storage.local.root) or "
            "'gcs' (the bucket of the gcs section)."
        ),
    )
    local: StorageLocalConfig = Field(
        default_factory=StorageLocalConfig, description="Local object store settings."
    )

    @field_validator("backend", mode="before")
    @classmethod
    def _supported(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in _UNSUPPORTED_STORAGE:
            raise rule_error(
                f"{value!r} is not supported. Fix: use one of the supported values 'local' or 'gcs'."
            )
        return value


class LocalConfig(Section):
    memory_limit_mb: int | None = Field(
        default=None,
        gt=0,
        description="Memory cap (MB) for each local stage process; null lets the stage's compute profile decide.",
    )
    cpu_limit: float | None = Field(
        default=None,
        gt=0,
        description="CPU cap (cores) for each local stage process; null lets the profile decide.",
    )
    stop_grace_seconds: int = Field(
        default=10,
        ge=0,
        description="After a stop request, seconds a local stage gets to exit before it is killed.",
    )
    simulate_preemption_after_seconds: int | None = Field(
        default=None,
        gt=0,
        description="Testing aid: kill each local stage after this many seconds and report it as preempted.",
    )


class PreRunReviewConfig(Section):
    enabled: bool = Field(
        default=True,
        description="Review the stage code before each run (also needs svs.enabled); skip_review=True bypasses it per run.",
    )
    timeout_seconds: int = Field(default=60, gt=0, description="Time limit (seconds) for one pre-run review.")
    max_turns: int = Field(default=3, ge=1, description="Most AI turns one pre-run review may take.")


class WandbConfig(Section):
    project: str | None = Field(default=None, description="W&B project the stage logs to.")
    group: str | None = Field(default=None, description="W&B run group.")
    entity: str | None = Field(default=None, description="W&B entity (user or team).")


class MetricsConfig(Section):
    backend: Literal["jsonl", "wandb"] = Field(
        default="jsonl",
        description=(
            "Metrics sink: 'jsonl' (only the run's metrics.jsonl) or 'wandb' (also mirrored to "
            "Weights & Biases using metrics.wandb)."
        ),
    )
    wandb: WandbConfig = Field(default_factory=WandbConfig, description="Weights & Biases settings.")
