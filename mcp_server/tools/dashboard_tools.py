"""dashboard(): alerts, active runs, the finalization queue and mounted workspaces in one call."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from goldfish.runs.dashboard import DashboardResult, dashboard
from mcp_server.context import ServerContext, guarded


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(name="dashboard", annotations=ToolAnnotations(title="Dashboard", read_only_hint=False, destructive_hint=False,
                                             idempotent_hint=False, open_world_hint=False))
    @guarded
    def dashboard_tool() -> DashboardResult:
        """Orientation on what needs attention: recent failures, new SVS findings (each shown once,
        then marked seen), regressions, active runs, runs awaiting finalize_run per mounted
        workspace, mounted workspaces and the number of registered sources.

        Call it after status() when resuming work, and between runs.
        """
        return dashboard(ctx.project())
