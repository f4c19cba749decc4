"""Workspace and version tools: create_workspace, mount, hibernate, save_version, inspect_workspace,
diff, rollback, delete_workspace, manage_versions."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from goldfish.workspaces.versions import ManageVersionsResult, VersionAction
from goldfish.workspaces.models import (
    CreateWorkspaceResult,
    DeleteWorkspaceResult,
    DiffResult,
    HibernateResult,
    InspectWorkspaceResult,
    MountResult,
    RollbackResult,
    SaveVersionResult,
)
from mcp_server.budget import fit_page
from mcp_server.context import ServerContext, guarded

Name = Annotated[str, Field(min_length=1, max_length=64, description="Workspace name (letters, digits, _ or -).")]
SlotOrName = Annotated[
    str, Field(min_length=1, max_length=64, description="A slot (e.g. w1) or the name of the workspace mounted there.")
]
Reason = Annotated[
    str, Field(min_length=1, max_length=4000, description="Why (at least audit.min_reason_length characters; audited).")
]
VersionRef = Annotated[str, Field(min_length=2, max_length=64, description="vN (e.g. v3) or a tag of that workspace.")]


def _ann(title: str, *, read_only: bool = False, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        title=title, read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent,
        open_world_hint=False,
    )


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(annotations=_ann("Create workspace"))
    @guarded
    def create_workspace(
        name: Name,
        goal: Annotated[str, Field(min_length=1, max_length=2000, description="What this workspace tries to achieve.")],
        reason: Reason,
        from_workspace: Annotated[
            str | None, Field(max_length=64, description="Fork from this workspace (or slot): its latest files.")
        ] = None,
        from_version: Annotated[
            str | None, Field(max_length=64, description="With from_workspace: fork from this version (vN or tag).")
        ] = None,
        template: Annotated[
            Literal["minimal", "two-stage", "none"] | None,
            Field(description="Starter files of a new workspace (default minimal): minimal = one stage `train` "
                              "(pipeline.yaml, configs/train.yaml, modules/train.py) that logs val_loss and saves "
                              "its weights; two-stage = `prepare` feeding `train` through from_stage inputs; none = "
                              "empty. Not with from_workspace."),
        ] = None,
    ) -> CreateWorkspaceResult:
        """Create a workspace (a new line of experiments): from a starter template (runs as is),
        empty, or forked from another one.

        Forking without from_version first saves the source's current files as a version, so the
        fork point is always a named version (forked_from = 'ws@vN'). The workspace is not mounted:
        call mount(workspace, slot, reason) next.
        """
        if template is None and from_workspace is None:
            template = "minimal"
        return ctx.project().workspaces.create(name, goal, reason, from_workspace, from_version, template)

    @server.tool(annotations=_ann("Mount workspace", idempotent=True))
    @guarded
    def mount(
        workspace: Name,
        slot: Annotated[str, Field(min_length=1, max_length=64, description="A free slot from status(), e.g. w1.")],
        reason: Reason,
    ) -> MountResult:
        """Copy a workspace's latest files into a slot directory (plain files) so you can edit them.

        A workspace is mounted in at most one slot; a slot holds one workspace. The result gives the
        slot path; edit files there, then save_version() or run(). Mounting the same workspace into
        the same slot again changes nothing.
        """
        return ctx.project().workspaces.mount(workspace, slot, reason)

    @server.tool(annotations=_ann("Hibernate slot", destructive=True))
    @guarded
    def hibernate(slot: SlotOrName, reason: Reason) -> HibernateResult:
        """Save the slot's files to its workspace branch and free the slot.

        Unsaved edits are committed first (no version is created); files that versions do not hold
        (ignored or too large) are kept aside and come back at the next mount. If saving fails,
        nothing is removed and the error says why.
        """
        return ctx.project().workspaces.hibernate(slot, reason)

    @server.tool(annotations=_ann("Save version", idempotent=True))  # unchanged files: the same version again
    @guarded
    def save_version(
        slot: SlotOrName,
        message: Annotated[str, Field(min_length=1, max_length=4000, description="What this version contains and why.")],
    ) -> SaveVersionResult:
        """Commit the slot's files as a new version vN (a save point you can diff and roll back to).

        If nothing changed since the latest version, that version is returned (created=false).
        Files over workspace.max_file_mb are left out and listed in skipped_files.
        """
        return ctx.project().workspaces.save_version(slot, message)

    @server.tool(annotations=_ann("Inspect workspace", read_only=True, idempotent=True))
    @guarded
    def inspect_workspace(
        name: SlotOrName,
        version_limit: Annotated[int, Field(ge=1, le=100, description="Versions per page (newest first).")] = 10,
        version_offset: Annotated[int, Field(ge=0, description="Versions to skip, for paging.")] = 0,
        include: Annotated[
            list[Literal["pipeline"]] | None, Field(max_length=5, description="Extra sections: 'pipeline' adds pipeline.yaml.")
        ] = None,
    ) -> InspectWorkspaceResult:
        """A workspace's goal, lineage (parent, forks), visible versions and tags.

        Use to pick a version to diff against, roll back to or fork from (create_workspace with
        from_version), or to see how workspaces branched from each other.
        """
        return ctx.project().workspaces.inspect(name, version_limit, version_offset, list(include or []))

    @server.tool(annotations=_ann("Diff", read_only=True, idempotent=True))
    @guarded
    def diff(
        target: Annotated[
            str, Field(min_length=1, max_length=140, description="A slot (w1), a workspace, ws@vN, or vN of the mounted workspace.")
        ],
        against: Annotated[
            str | None,
            Field(max_length=140, description="Same forms; default: a slot's last version, or a version's predecessor."),
        ] = None,
    ) -> DiffResult:
        """Show what changed between two states, oldest (against) to newest (target).

        diff('w1') shows unsaved edits since the last version; diff('ws@v5', 'ws@v2') compares
        versions; diff('w1', 'w2') compares two slots. diff_text is cut at workspace.diff_max_chars.
        """
        return ctx.project().workspaces.diff(target, against)

    @server.tool(annotations=_ann("Rollback slot", destructive=True))
    @guarded
    def rollback(slot: SlotOrName, version: VersionRef, reason: Reason) -> RollbackResult:
        """Replace the slot's files with those of an earlier version of its workspace.

        The current files are saved as a version first (saved_as), so nothing is lost. No new
        version is made for the rolled-back files until save_version() or run().
        """
        return ctx.project().workspaces.rollback(slot, version, reason)

    @server.tool(annotations=_ann("Delete workspace", destructive=True))
    @guarded
    def delete_workspace(workspace: Name, reason: Reason) -> DeleteWorkspaceResult:
        """Delete a workspace (irreversible: it can no longer be mounted and its name is retired).

        It must be hibernated first. Past runs and records keep their history and code.
        """
        return ctx.project().workspaces.delete(workspace, reason)

    @server.tool(annotations=_ann("Manage versions", destructive=True))
    @guarded
    def manage_versions(
        workspace: SlotOrName,
        action: Annotated[VersionAction, Field(description="list, tag, untag, prune, unprune or prune_before_tag.")],
        version: Annotated[str | None, Field(max_length=16, description="vN for tag, prune, unprune.")] = None,
        tag: Annotated[str | None, Field(max_length=64, description="Tag name for tag, untag, prune_before_tag.")] = None,
        reason: Annotated[str | None, Field(max_length=4000, description="Required for prune and prune_before_tag.")] = None,
        from_version: Annotated[str | None, Field(max_length=16, description="Start of a range (prune/unprune).")] = None,
        to_version: Annotated[str | None, Field(max_length=16, description="End of a range, inclusive.")] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="list: page size.")] = 50,
        offset: Annotated[int, Field(ge=0, description="list: versions to skip.")] = 0,
        include_pruned: Annotated[bool, Field(description="list: show pruned versions too.")] = False,
    ) -> ManageVersionsResult:
        """List, tag, untag, prune and unprune a workspace's versions.

        Tagged versions are protected: pruning one fails (untag it first) and a range prune skips
        them (skipped_tagged). Pruning only hides a version from status, history and STATE.md;
        unprune brings it back, and version numbers are never reused.
        """
        return fit_page(ctx.project().versions.manage(
            workspace, action, version=version, tag=tag, reason=reason, from_version=from_version,
            to_version=to_version, limit=limit, offset=offset, include_pruned=include_pruned,
        ), "versions")
