"""Result models of the workspace service (shared by the MCP tools and the TUI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from goldfish.git.devrepo import SkippedFile
from goldfish.workspaces.versions import VersionRow

ChangeStatus = Literal["added", "modified", "deleted"]


class FileChange(BaseModel):
    path: str = Field(description="Path relative to the slot / version root.")
    status: ChangeStatus


class RunVersion(BaseModel):
    """The version a run executes: exactly the files committed at ``sha``."""

    workspace: str
    slot: str
    version: str = Field(description="vN")
    number: int
    sha: str
    tag: str = Field(description="Git tag <workspace>-v<N>.")
    reused: bool = Field(description="True when nothing changed since that version, so it was reused.")
    skipped_files: list[SkippedFile] = Field(default_factory=list, description="Slot files left out (too large).")


class CreateWorkspaceResult(BaseModel):
    success: bool = True
    workspace: str
    goal: str
    forked_from: str | None = Field(default=None, description="ws@vN the new workspace starts from, if forked.")
    base_sha: str = Field(description="Commit the workspace branch starts at.")
    template: str | None = Field(default=None, description="Starter files it was created with (minimal, two-stage), "
                                                          "null when empty or forked.")
    files: list[str] = Field(default_factory=list, description="Files the template put in the workspace.")
    next_step: str = Field(description="What to call next.")
    state_md: str | None = Field(default=None, description="Global STATE.md after the change.")


class MountResult(BaseModel):
    success: bool = True
    slot: str
    workspace: str
    path: str = Field(description="Absolute path of the slot directory: edit files here.")
    already_mounted: bool = Field(default=False, description="True when it was already mounted there (no change).")
    recovered: bool = Field(default=False, description="True when files left by an interrupted mount were kept.")
    dirty: bool = Field(default=False, description="True when the slot differs from the branch head.")
    current_version: str | None = Field(default=None, description="Latest visible version, if any.")
    last_checkpoint: str | None = Field(default=None, description="Latest version with age, e.g. 'v3 (2h ago)'.")
    file_count: int = Field(default=0, description="Files copied into the slot.")
    refused_files: list[str] = Field(default_factory=list, description="Unsafe entries (links out of the slot) not written.")
    warning: str | None = None
    state_md: str | None = Field(default=None, description="The slot's STATE.md.")
    experiment_context: dict[str, Any] | None = Field(
        default=None, description="Best run, pending finalizations and trend, when the workspace has runs."
    )


class HibernateResult(BaseModel):
    success: bool = True
    slot: str
    workspace: str
    auto_checkpointed: bool = Field(description="True when unsaved changes were committed before unmounting.")
    checkpoint_sha: str = Field(description="Branch head holding the slot's final files.")
    skipped_files: list[SkippedFile] = Field(default_factory=list, description="Files too large to keep; deleted with the slot.")
    warning: str | None = None
    state_md: str | None = None


class SaveVersionResult(BaseModel):
    success: bool = True
    slot: str
    workspace: str
    version: str
    git_tag: str
    git_sha: str
    message: str
    created: bool = Field(description="False when nothing changed since that version, so it was returned as is.")
    skipped_files: list[SkippedFile] = Field(default_factory=list, description="Slot files left out (too large).")
    state_md: str | None = Field(default=None, description="The slot's STATE.md.")
    record_id: str | None = Field(default=None, description=(
        "Checkpoint record of this version (tag it with tag_record); null when the version already had one."))


class DiffResult(BaseModel):
    has_changes: bool
    summary: str
    files_changed: list[FileChange] = Field(description="Changed files (at most 200 listed; see files_total).")
    files_total: int
    diff_text: str = Field(description="Unified diff from left to right, cut at workspace.diff_max_chars.")
    truncated: bool = Field(description="True when diff_text was cut; diff narrower targets to see more.")
    left: str = Field(description="What the left (old) side is.")
    right: str = Field(description="What the right (new) side is.")
    left_sha: str | None = Field(default=None, description="Commit of the left side (null for live slot files).")
    right_sha: str | None = Field(default=None, description="Commit of the right side (null for live slot files).")


class RollbackResult(BaseModel):
    success: bool = True
    slot: str
    workspace: str
    version: str
    git_tag: str
    files_reverted: int = Field(description="Files added, changed or removed in the slot.")
    saved_as: str = Field(description="Version that holds the slot's files from before the rollback.")
    saved_version_created: bool = Field(description="True when that version was created just now.")
    message: str
    state_md: str | None = None


class DeleteWorkspaceResult(BaseModel):
    success: bool = True
    workspace: str
    versions_archived: int = Field(description="Version tags moved out of sight (their commits are kept for provenance).")
    message: str


class TagInfo(BaseModel):
    tag: str
    version: str | None = None
    record_id: str | None = None
    created_at: str | None = None


class Lineage(BaseModel):
    name: str
    created: str
    parent: str | None = Field(default=None, description="Workspace it was forked from.")
    parent_version: str | None = None
    description: str | None = Field(default=None, description="Reason given at creation.")
    version_count: int = Field(description="Visible versions.")
    versions: list[VersionRow] = Field(description="Visible versions, newest first (paged).")
    has_more: bool
    branches: list[str] = Field(description="Workspaces forked from this one.")


class InspectWorkspaceResult(BaseModel):
    name: str
    goal: str
    is_mounted: bool
    slot: str | None = None
    dirty: bool | None = None
    head_sha: str
    lineage: Lineage
    tags: list[TagInfo]
    pipeline: str | None = Field(default=None, description="pipeline.yaml text (only with include=['pipeline']).")


class SlotInfo(BaseModel):
    slot: str
    state: Literal["empty", "mounted"]
    path: str = Field(description="Absolute slot directory.")
    workspace: str | None = None
    goal: str | None = None
    current_version: str | None = Field(default=None, description="Latest visible version.")
    version_count: int = 0
    dirty: bool | None = Field(default=None, description="Unsaved changes vs the branch head; null if unknown.")
    dirty_source: Literal["watcher", "hash_check"] | None = None
    changed_count: int = 0
    changed_files: list[FileChange] = Field(default_factory=list, description="First few changed files.")
    last_checkpoint: str | None = Field(default=None, description="Latest version with how and when, e.g. 'v3 (run, 2h ago)'.")
    parent_workspace: str | None = None
    parent_version: str | None = None
    note: str | None = None
