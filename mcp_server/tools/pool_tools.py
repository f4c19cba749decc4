"""Warm pool tools: warm_pool_status, warm_pool_cleanup."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from goldfish.runs.warm_pool_service import WarmPoolCleanupResult, WarmPoolStatus, cleanup, status
from mcp_server.context import ServerContext, guarded


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(annotations=ToolAnnotations(
        title="Warm pool status", read_only_hint=True, idempotent_hint=True, open_world_hint=False,
    ))
    @guarded
    def warm_pool_status() -> WarmPoolStatus:
        """Show the GCE warm pool: whether it is enabled, its limits, workers by state and each worker
        (zone, machine type, GPUs, state, since when, the run holding it).

        Use it when runs start slower than expected, or to see whether an idle worker exists for a
        profile. run() uses the pool by itself; there is nothing to request. When the pool is off,
        the answer says how to turn it on (gce.warm_pool in goldfish.yaml).
        """
        return status(ctx.project())

    @server.tool(annotations=ToolAnnotations(
        title="Warm pool cleanup", read_only_hint=False, destructive_hint=True, idempotent_hint=True,
        open_world_hint=True,
    ))
    @guarded
    def warm_pool_cleanup() -> WarmPoolCleanupResult:
        """Emergency drain of the GCE warm pool: delete every worker VM now.

        Idle workers are deleted; a worker busy with a run has that run canceled first (reason:
        emergency drain) and is then deleted; a delete that did not go through is retried until the
        VM is confirmed gone. Returns deleted / pending / skipped / remaining. Operator recovery only:
        the normal experiment loop never needs it. Runs it canceled must be finalized like others.
        """
        return cleanup(ctx.project())
