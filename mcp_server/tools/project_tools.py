"""Project-level tools: status, goldfish_version, initialize_project, reload_config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from goldfish import __version__
from goldfish.init import InitResult, init_project
from goldfish.project import Project
from goldfish.workspaces.models import SlotInfo
from goldfish.workspaces.watcher import skipped_names
from mcp_server.context import ServerContext, guarded

RECENT_AUDIT = 5


class RecentAction(BaseModel):
    op: str
    reason: str | None = None
    ts: str
    workspace: str | None = None


class StatusResult(BaseModel):
    initialized: bool = Field(description="False when no Goldfish project is open here.")
    message: str = Field(description="One-line orientation, including what to do next.")
    project_name: str | None = Field(default=None, description="Project name from goldfish.yaml.")
    backend: str | None = Field(default=None, description="Execution backend (jobs.backend).")
    slots: list[SlotInfo] = Field(default_factory=list, description="Every configured slot.")
    recent_audit: list[RecentAction] = Field(default_factory=list, description="The last 5 audited actions, newest first.")
    state_md: str | None = Field(default=None, description="The global STATE.md narrative.")
    untracked_names: list[str] = Field(default_factory=list, description=(
        "Slot files whose names are not valid UTF-8 (shown escaped): live change tracking skips them; rename them."))


class VersionResult(BaseModel):
    version: str = Field(description="Installed Goldfish version.")


def status_of(project: Project) -> StatusResult:
    slots = project.workspaces.slot_status()
    mounted = [s for s in slots if s.workspace]
    dirty = [s.slot for s in mounted if s.dirty]
    hint = (
        f" Unsaved changes in {', '.join(dirty)}." if dirty
        else (" create_workspace() then mount() to start." if not mounted else "")
    )
    skipped = skipped_names(project)
    if skipped:
        hint += f" {len(skipped)} file name(s) in the slots are not valid UTF-8 (untracked_names): rename them."
    recent = [
        RecentAction(op=a.op, reason=a.reason, ts=a.ts, workspace=a.workspace)
        for a in project.journal.recent(RECENT_AUDIT)
    ]
    return StatusResult(
        initialized=True,
        message=f"Project {project.config.project_name}: {len(mounted)} of {len(slots)} slots mounted.{hint}",
        project_name=project.config.project_name,
        backend=project.config.jobs.backend,
        slots=slots,
        recent_audit=recent,
        state_md=project.state_md.read_global(),
        untracked_names=skipped,
    )


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(annotations=ToolAnnotations(title="Project status", read_only_hint=True, open_world_hint=False))
    @guarded
    def status() -> StatusResult:
        """Orientation: each slot's workspace, version and unsaved changes, recent actions, STATE.md.

        Call this first in a new conversation or after losing context. If the project is not
        initialized, the result says so and how to initialize it.
        """
        project = ctx.try_open()
        if project is None:
            why = ctx.open_error.message if ctx.open_error else "No Goldfish project is open."
            return StatusResult(
                initialized=False,
                message=f"{why} Call initialize_project(project_name, project_root) to create one.",
            )
        return status_of(project)

    @server.tool(annotations=ToolAnnotations(title="Goldfish version", read_only_hint=True, open_world_hint=False))
    def goldfish_version() -> VersionResult:
        """The installed Goldfish version (for bug reports and compatibility checks)."""
        return VersionResult(version=__version__)

    @server.tool(
        annotations=ToolAnnotations(
            title="Initialize project", read_only_hint=False, destructive_hint=False, idempotent_hint=True,
            open_world_hint=False,
        )
    )
    @guarded
    def initialize_project(
        project_name: Annotated[str, Field(min_length=1, max_length=64, description="Project name (letters, digits, _ or -).")],
        project_root: Annotated[str, Field(min_length=1, max_length=4096, description="Absolute path of the ML project directory.")],
    ) -> InitResult:
        """Create a Goldfish project (goldfish.yaml, workspaces/, the hidden dev repo) and open it.

        Use only when status() says the project is not initialized. Safe to repeat: an already
        initialized project is left unchanged.
        """
        root = Path(project_root).expanduser()
        if not root.is_absolute():
            raise ToolError(
                f"project_root must be an absolute path, got {project_root!r}. "
                "Fix: pass the full path of the ML project directory, e.g. /home/me/my-project."
            )
        open_project = ctx.try_open()
        if open_project is not None and open_project.root != root.resolve():
            raise ToolError(
                f"This server already serves the project at {open_project.root}; it serves one project. "
                f"Fix: run `goldfish init {root}` in a shell and start a server there (`goldfish serve --project {root}`)."
            )
        result = init_project(root, project_name)
        ctx.set_project(Project.open(result.project_root, source="mcp"))
        return result
