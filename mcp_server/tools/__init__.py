"""Tool modules. Each has ``register(server, ctx)``; every module is listed here explicitly so a
tool can never be missing because its module was not imported."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from mcp_server.context import ServerContext
from mcp_server.tools import (
    config_tools,
    journal_tools,
    project_tools,
    run_tools,
    source_tools,
    workspace_tools,
)

MODULES = [project_tools, workspace_tools, journal_tools, run_tools, source_tools, config_tools]


def register_all(server: MCPServer, ctx: ServerContext) -> None:
    for module in MODULES:
        module.register(server, ctx)
