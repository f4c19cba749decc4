"""Build and run the MCP server (``goldfish serve``)."""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver import MCPServer

from goldfish import __version__
from mcp_server.context import ServerContext
from mcp_server.resources import register_resources
from mcp_server.tools import register_all

INSTRUCTIONS = """Goldfish runs your ML experiments with perfect recall. Workflow:
status() (or dashboard()) to orient -> create_workspace(name, goal, reason) -> mount(workspace, slot, reason)
-> edit pipeline.yaml, configs/<stage>.yaml, modules/<stage>.py in workspaces/<slot>/ (stage code uses
goldfish.io and goldfish.metrics) -> validate_config(slot) -> run(workspace, results_spec={primary_metric,
direction, min_value, goal_value, dataset_split, tolerance, context}, reason=...) -> inspect_record()/
inspect_run()/logs() -> finalize_run(record_or_run_id, results): required before the next run.
After losing context: status(), get_experiment_context(workspace), list_history(workspace).
Record decisions with log_thought(). Never run git yourself: versions are managed for you."""


def build_server(project_arg: str | None = None, start: Path | None = None) -> tuple[MCPServer, ServerContext]:
    ctx = ServerContext(project_arg, start)
    server = MCPServer(name="goldfish", version=__version__, instructions=INSTRUCTIONS)
    register_all(server, ctx)
    register_resources(server, ctx)
    return server, ctx


def serve(project_arg: str | None, *, transport: str = "stdio", port: int = 8765) -> None:
    server, _ctx = build_server(project_arg)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=port)
