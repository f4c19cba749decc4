"""Journal tools: log_thought, get_workspace_thoughts, get_audit_log."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from goldfish.journal.audit import AuditLogResult, ThoughtResult, ThoughtsResult
from mcp_server.budget import fit_page
from mcp_server.context import ServerContext, guarded

SlotOrName = Annotated[str, Field(min_length=1, max_length=64, description="A workspace name or a slot (e.g. w1).")]


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(
        annotations=ToolAnnotations(
            title="Log thought", read_only_hint=False, destructive_hint=False, idempotent_hint=False,
            open_world_hint=False,
        )
    )
    @guarded
    def log_thought(
        thought: Annotated[str, Field(min_length=1, max_length=8000, description="Your reasoning, decision or conclusion.")],
        workspace: Annotated[str | None, Field(max_length=64, description="Workspace (or slot) it concerns.")] = None,
        run_id: Annotated[str | None, Field(max_length=64, description="Run it concerns (stage-… or prun-…).")] = None,
    ) -> ThoughtResult:
        """Write down reasoning so a later you (after losing context) can find it.

        Thoughts go to the audit trail and STATE.md's Recent Actions; read them back with
        get_workspace_thoughts(workspace).
        """
        return ctx.project().journal.log_thought(thought, workspace, run_id)

    @server.tool(annotations=ToolAnnotations(title="Workspace thoughts", read_only_hint=True, open_world_hint=False))
    @guarded
    def get_workspace_thoughts(
        workspace: SlotOrName,
        limit: Annotated[int, Field(ge=1, le=500, description="Thoughts per page, newest first.")] = 50,
        offset: Annotated[int, Field(ge=0, description="Thoughts to skip, for paging.")] = 0,
    ) -> ThoughtsResult:
        """The thoughts logged for a workspace (log_thought), newest first.

        Use after losing context to recover why earlier decisions were made, before planning the
        next experiment in that workspace.
        """
        return fit_page(ctx.project().journal.thoughts(workspace, limit, offset), "thoughts")

    @server.tool(annotations=ToolAnnotations(title="Audit log", read_only_hint=True, open_world_hint=False))
    @guarded
    def get_audit_log(
        limit: Annotated[int, Field(ge=1, le=500, description="Entries per page, newest first.")] = 50,
        workspace: Annotated[str | None, Field(max_length=64, description="Only this workspace (or slot).")] = None,
        offset: Annotated[int, Field(ge=0, description="Entries to skip, for paging.")] = 0,
    ) -> AuditLogResult:
        """Every change made through Goldfish (who, what, when, why), newest first.

        Use to reconstruct what happened to a workspace (mounts, versions, runs, deletions) or to
        check who changed something (source: mcp, tui, cli).
        """
        return fit_page(ctx.project().journal.audit_log(limit, workspace, offset), "entries")
