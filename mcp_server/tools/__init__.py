"""Tool modules. Each has ``register(server, ctx)``; every module is listed here explicitly so a
tool can never be missing because its module was not imported.

They are imported by ``register_all`` (not at package import): ``goldfish serve`` registers them on a
background thread while it answers ``initialize`` (see ``mcp_server/server.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from mcp.server.mcpserver import MCPServer

from mcp_server.context import ServerContext

MODULES = [
    "project_tools",
    "workspace_tools",
    "journal_tools",
    "run_tools",
    "record_tools",
    "source_tools",
    "svs_tools",
    "dashboard_tools",
    "config_tools",
    "image_tools",
    "pool_tools",
    "log_tools",
    "backup_tools",
]


def register_all(server: MCPServer, ctx: ServerContext, modules: Sequence[str] = MODULES) -> None:
    for name in modules:
        importlib.import_module(f"mcp_server.tools.{name}").register(server, ctx)
