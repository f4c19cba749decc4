"""The ``backups`` section of goldfish.yaml."""

from __future__ import annotations

from pydantic import Field, field_validator

from goldfish.config._base import Section, rule_error


class BackupsConfig(Section):
    auto: bool = Field(
        default=True,
        description=(
            "Take backups automatically: an 'event' backup after create_workspace, save_version, finalize_run, "
            "tag_record and register_source (at most one per event_min_interval_seconds), and 'daily' and "
            "'weekly' ones when due. create_backup() works either way."
        ),
    )
    target: str | None = Field(
        default=None,
        description=(
            "Where backups go: a directory (absolute, or relative to the project; e.g. another disk or a "
            "mounted share) or gs://<bucket>/<prefix>/. Default: gs://<gcs.bucket>/backups/ when a gcs "
            "bucket is configured, else .goldfish/backups in the dev repo, which does not survive losing that disk."
        ),
    )
    event_min_interval_seconds: int = Field(
        default=300, ge=0, le=86400, description="Minimum seconds between two automatic event backups."
    )
    keep_event: int = Field(default=20, ge=1, le=1000, description="How many event backups cleanup keeps.")
    keep_daily: int = Field(default=7, ge=1, le=1000, description="How many daily backups cleanup keeps.")
    keep_weekly: int = Field(default=4, ge=1, le=1000, description="How many weekly backups cleanup keeps.")
    keep_manual: int | None = Field(
        default=None, ge=1, le=10000, description="How many manual backups cleanup keeps (null: all of them)."
    )

    @field_validator("target")
    @classmethod
    def _target(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip() or "\n" in value or "\x00" in value:
            raise rule_error(f"must be a directory or gs://<bucket>/<prefix>/, got {value!r}.")
        if value.startswith("gs://"):
            from goldfish.storage.base import StorageError, split_uri

            try:
                split_uri(value)
            except StorageError as exc:
                raise rule_error(f"{exc.message} Fix: {exc.fix}") from None
        return value
