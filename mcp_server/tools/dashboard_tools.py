"""dashboard(): alerts, active runs, the finalization queue and mounted workspaces in one call;
it is also where alerts are acknowledged (the TUI's `a` key calls the same service)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from goldfish.runs.dashboard import DashboardResult, dashboard
from mcp_server.context import ServerContext, guarded


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(name="dashboard", annotations=ToolAnnotations(title="Dashboard", read_only_hint=False, destructive_hint=False,
                                             idempotent_hint=False, open_world_hint=False))
    @guarded
    def dashboard_tool(
        acknowledge: Annotated[list[Annotated[str, Field(max_length=80)]] | None, Field(
            max_length=50, description=(
                "Alert keys to set aside once handled (e.g. ['blocked:stage-1a2b3c4d']); needs acknowledge_reason"))
        ] = None,
        acknowledge_reason: Annotated[str | None, Field(max_length=1000, description=(
            "Why these alerts need no more attention (at least 15 characters; kept in the audit log)"))] = None,
    ) -> DashboardResult:
        """Orientation on what needs attention: alerts (failed and blocked runs of the last
        jobs.alert_window_hours, stalled heartbeats, regressions — each with a key), new SVS
        findings (each shown once, then marked seen), active runs, results awaiting finalize_run
        per mounted workspace, mounted workspaces and the number of registered sources.

        Call it after status() when resuming work, and between runs. Once an alert is handled
        (fixed, explained, or not worth more time), pass its key in `acknowledge` with an
        `acknowledge_reason`: it is no longer listed here, in goldfish tui, or counted by
        `goldfish tui --headless --fail-on-alerts`, and the audit log keeps why.
        """
        return dashboard(ctx.project(), acknowledge=list(acknowledge) if acknowledge else None,
                         acknowledge_reason=acknowledge_reason)
