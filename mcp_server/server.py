"""Build and run the MCP server (``goldfish serve``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import Tool as MCPTool
from pydantic import ValidationError

from goldfish import __version__
from mcp_server.arg_errors import describe_crash, describe_unknown_tool, describe_validation
from mcp_server.context import ServerContext
from mcp_server.resources import register_resources
from mcp_server.tools import register_all

logger = logging.getLogger("goldfish.mcp")

INSTRUCTIONS = """Goldfish runs your ML experiments with perfect recall. Workflow:
status() (or dashboard()) to orient -> create_workspace(name, goal, reason) -> mount(workspace, slot, reason)
-> edit pipeline.yaml, configs/<stage>.yaml, modules/<stage>.py in workspaces/<slot>/ (stage code uses
goldfish.io and goldfish.metrics) -> validate_config(slot) -> run(workspace, results_spec={primary_metric,
direction, min_value, goal_value, dataset_split, tolerance, context}, reason=...) -> inspect_record()/
inspect_run()/logs() -> finalize_run(result stage run or prun-…, results): one result per pipeline
run, required before the next run. If run() answers status "blocked", fix the findings and run again.
After losing context: status(), get_experiment_context(workspace), list_history(workspace).
Record decisions with log_thought(). Never run git yourself: versions are managed for you."""


class GoldfishServer(MCPServer):
    """MCPServer whose tools are registered on a background thread, and whose argument errors read
    as one line per bad argument, with the fix.

    Importing the tool modules (and the domain modules behind their result models) and building
    ~40 schemas takes a few hundred ms; the client waits for the initialize response before it asks
    for tools, so registration runs beside the transport start-up and tools/list and tools/call
    wait for it.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._registered = threading.Event()
        self._registration_error: BaseException | None = None

    def register_in_background(self, register: Callable[[], None]) -> None:
        def work() -> None:
            try:
                register()
            except BaseException as exc:  # re-raised by every tools call, never lost
                self._registration_error = exc
            finally:
                self._registered.set()

        threading.Thread(target=work, name="goldfish-register-tools", daemon=True).start()

    def wait_registered(self, timeout: float = 120.0) -> None:
        if not self._registered.wait(timeout):
            raise RuntimeError(f"Goldfish tools were not registered within {timeout} s.")
        if self._registration_error is not None:
            raise RuntimeError(
                f"Goldfish could not register its tools: {self._registration_error!r}"
            ) from self._registration_error

    async def _ready(self) -> None:
        if not self._registered.is_set():
            await anyio.to_thread.run_sync(self.wait_registered)
        self.wait_registered()

    async def list_tools(self) -> list[MCPTool]:
        await self._ready()
        return await super().list_tools()

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None) -> Any:
        await self._ready()
        started = time.monotonic()
        try:
            result = await super().call_tool(name, arguments, context)
            logger.info("tool %s answered in %.3f s", name, time.monotonic() - started, extra={"tool": name})
            return result
        except UnexpectedToolError as exc:
            # A bug, not the caller's mistake: keep the traceback in the server log and tell the model
            # what happened instead of the SDK's bare "Error executing tool X".
            logger.error("Tool %r crashed", name, exc_info=exc.__cause__ or exc)
            raise ToolError(describe_crash(name, exc.__cause__ or exc)) from exc
        except ToolError as exc:
            logger.info("tool %s refused: %s", name, str(exc)[:2000], extra={"tool": name})
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(describe_validation(name, exc.__cause__)) from exc.__cause__
            if self._tool_manager.get_tool(name) is None:
                known = [t.name for t in self._tool_manager.list_tools()]
                raise ToolError(describe_unknown_tool(name, known)) from exc
            raise


def build_server(project_arg: str | None = None, start: Path | None = None) -> tuple[GoldfishServer, ServerContext]:
    ctx = ServerContext(project_arg, start)

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
        # The slot watcher lives exactly as long as the server (started lazily once a project opens).
        # Opening the project (and reconciling runs) happens beside the initialize handshake.
        opener = threading.Thread(target=ctx.start_watching, name="goldfish-open-project", daemon=True)
        opener.start()
        try:
            yield {}
        finally:
            await anyio.to_thread.run_sync(opener.join)
            await anyio.to_thread.run_sync(ctx.stop_watching)

    # WARNING: stderr is the MCP client's log; per-call INFO lines (every rejected argument) are noise there.
    server = GoldfishServer(
        name="goldfish", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan, log_level="WARNING"
    )
    register_resources(server, ctx)
    server.register_in_background(lambda: register_all(server, ctx))
    return server, ctx


def serve(project_arg: str | None, *, transport: str = "stdio", port: int = 8765) -> None:
    server, ctx = build_server(project_arg)
    ctx.log_role = "mcp"
    if transport == "stdio":
        server.run("stdio")
    else:
        # HTTP validates tool arguments from their schemas before tools/call reaches us.
        server.wait_registered()
        server.run("streamable-http", host="127.0.0.1", port=port)
