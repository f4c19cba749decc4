"""Result models of the data registry (register_source, manage_sources, promote_artifact)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Integrity = Literal["ok", "changed", "missing", "touched", "unchecked"]


class SourceLineageRef(BaseModel):
    parent_sources: list[str] = Field(default_factory=list, description="Sources the producing run read.")
    run_id: str | None = Field(default=None, description="Stage run that produced it (None: external data).")
    output_name: str | None = Field(default=None, description="Output of that run it is.")
    workspace: str | None = Field(default=None, description="Workspace of that run.")
    stage: str | None = Field(default=None, description="Stage of that run.")


class SourceSummary(BaseModel):
    name: str = Field(description="Source name; pipelines read it with `dataset: <name>`.")
    description: str = Field(description="metadata.description.")
    location: str = Field(description="Absolute file path or gs:// URI. The data is never copied.")
    uri_kind: Literal["local", "gcs"] = Field(description="local file or GCS object.")
    format: str = Field(description="npy, npz, csv or file.")
    size_bytes: int | None = Field(description="Size when registered.")
    sha256: str | None = Field(default=None, description="Content hash when registered (local files).")
    status: str = Field(description="available.")
    metadata_status: str = Field(description="ok, missing, invalid or future.")
    created_at: str = Field(description="When it was registered (UTC).")
    updated_at: str | None = Field(default=None, description="Last manage_sources update, if any.")
    created_by: str = Field(description="'external' or 'run:<stage run id>'.")
    integrity: Integrity = Field(
        description="ok: content as registered; changed: content differs (runs reading it are blocked); "
        "missing: the file is gone; touched: modified time changed, content not re-hashed in lists "
        "(get checks it); unchecked: GCS objects in lists."
    )


class SourceInfo(SourceSummary):
    reason: str = Field(description="Why it was registered.")
    metadata: dict[str, Any] | None = Field(description="The metadata document.")
    metadata_truncated: bool = Field(
        default=False, description="True when long lists (feature names, columns) were shortened for display."
    )
    lineage: SourceLineageRef = Field(description="Where it came from.")
    integrity_detail: str | None = Field(default=None, description="What changed, when integrity is not ok.")


class ParentRef(BaseModel):
    name: str
    exists: bool = Field(description="False when the parent source was deleted since.")
    created_by: str | None = None
    location: str | None = None


class RunRef(BaseModel):
    run_id: str
    workspace: str | None = None
    stage: str | None = None
    state: str | None = Field(default=None, description="Current state of the run (None if it is gone).")


class ConsumerRef(RunRef):
    input: str | None = Field(default=None, description="Input name the run read the source as.")
    sha256: str | None = Field(default=None, description="Source content hash when the run read it.")
    recorded_at: str | None = None


class SourceLineage(BaseModel):
    source_name: str
    parents: list[ParentRef] = Field(description="Sources the producing run consumed.")
    produced_by_run: RunRef | None = Field(description="Stage run the source is an output of (None: external).")
    output_name: str | None = Field(description="Which output of that run.")
    consumers: list[ConsumerRef] = Field(description="Runs that read this source, newest first.")
    consumers_total: int = Field(description="All consumers; the list holds at most `limit`.")


class RegisterSourceResult(BaseModel):
    source: SourceInfo
    message: str = Field(description="What happened and what to do next.")


class ArtifactLineage(BaseModel):
    source_name: str
    parent_sources: list[str] = Field(description="Sources the run consumed.")
    run_id: str = Field(description="The stage run the output belongs to.")
    workspace: str
    stage: str
    output_name: str


class PromoteResult(BaseModel):
    source: SourceInfo
    lineage: ArtifactLineage
    message: str


class ManageSourcesResult(BaseModel):
    action: Literal["list", "get", "lineage", "update", "delete"]
    message: str = Field(description="Summary and next step.")
    sources: list[SourceSummary] | None = Field(default=None, description="list: one page, newest first.")
    total: int | None = Field(default=None, description="list: sources matching the filters.")
    limit: int | None = None
    offset: int | None = None
    has_more: bool | None = Field(default=None, description="list: True when another page follows.")
    source: SourceInfo | None = Field(default=None, description="get/update: the source.")
    lineage: SourceLineage | None = Field(default=None, description="lineage: parents, producer, consumers.")
    deleted: str | None = Field(default=None, description="delete: the name removed from the registry.")
