"""Build and run the MCP server (``goldfish serve``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from goldfish import __version__
from mcp_server.context import ServerContext
from mcp_server.tools import register_all

INSTRUCTIONS = """Goldfish runs your ML experiments with perfect recall. Workflow:
status() to orient -> create_workspace()/mount(workspace, slot, reason) -> edit files in workspaces/<slot>/
-> run(workspace, results_spec=..., reason=...) -> inspect_record()/inspect_run()/logs()
-> finalize_run(record_or_run_id, results) before the next run. Never run git yourself."""


def build_server(project_arg: str | None = None, start: Path | None = None) -> tuple[MCPServer, ServerContext]:
    ctx = ServerContext(project_arg, start)

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
        # The slot watcher lives exactly as long as the server (started lazily once a project opens).
        await anyio.to_thread.run_sync(ctx.start_watching)
        try:
            yield {}
        finally:
            await anyio.to_thread.run_sync(ctx.stop_watching)

    server = MCPServer(name="goldfish", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan)
    register_all(server, ctx)
    return server, ctx


def serve(project_arg: str | None, *, transport: str = "stdio", port: int = 8765) -> None:
    server, _ctx = build_server(project_arg)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=port)
