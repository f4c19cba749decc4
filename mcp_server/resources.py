"""MCP resources: ``goldfish://state`` (the global STATE.md, read fresh on every request)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from mcp_server.context import ServerContext

STATE_URI = "goldfish://state"


def register_resources(server: MCPServer, ctx: ServerContext) -> None:
    @server.resource(
        STATE_URI, name="state", title="Goldfish STATE.md", mime_type="text/markdown",
        description="The project narrative: workspaces per slot, recent runs, pending finalizations, recent actions.",
    )
    def state() -> str:
        project = ctx.try_open()
        if project is None:
            why = ctx.open_error.message if ctx.open_error else "No Goldfish project is open."
            return f"# Goldfish\n\n{why}\n\nCall initialize_project(project_name, project_root) to create one.\n"
        try:
            return project.state_md_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return (f"# {project.config.project_name}\n\nSTATE.md has not been written yet; it appears after the "
                    "first workspace action (create_workspace, mount, run).\n")
