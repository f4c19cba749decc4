"""MCP resources: ``goldfish://state`` (the global STATE.md, read fresh on every request) and
``goldfish://guide`` (the agent guide)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from mcp_server.context import ServerContext

STATE_URI = "goldfish://state"
GUIDE_URI = "goldfish://guide"


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

    @server.resource(
        GUIDE_URI, name="guide", title="Goldfish agent guide", mime_type="text/markdown",
        description="How to work with Goldfish: the workflows, the rules, the failure modes and every tool.",
    )
    def guide() -> str:
        from goldfish.guide import guide_text

        return guide_text()
