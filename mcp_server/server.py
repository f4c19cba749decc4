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
import mcp.server.mcpserver.server as _sdk_server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import Tool as MCPTool
from pydantic import ValidationError

from goldfish import __version__
from goldfish.fsutil import as_disk_error
from mcp_server.arg_errors import (
    describe_crash,
    describe_oversized_text,
    describe_unknown_tool,
    describe_validation,
)
from mcp_server.context import ServerContext
from mcp_server.prompts import register_prompts
from mcp_server.resources import register_resources
from mcp_server.tools import MODULES, register_all

# Registered before anything else: what a session calls first (status, goldfish_version, initialize_project).
FIRST_MODULES = ["project_tools"]

logger = logging.getLogger("goldfish.mcp")


def _plain_logging(level: str = "WARNING") -> None:
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")

INSTRUCTIONS = """Goldfish runs your ML experiments with perfect recall. Workflow:
status() (or dashboard()) to orient -> create_workspace(name, goal, reason) -> mount(workspace, slot, reason)
-> edit pipeline.yaml, configs/<stage>.yaml, modules/<stage>.py in workspaces/<slot>/ (stage code uses
goldfish.io and goldfish.metrics) -> validate_config(slot) -> run(workspace, results_spec={primary_metric,
direction, min_value, goal_value, dataset_split, tolerance, context}, reason=...) -> inspect_record()/
inspect_run()/logs() -> finalize_run(result stage run or prun-…, results): one result per pipeline
run, required before the next run. If run() answers status "blocked", fix the findings and run again.
After losing context: status(), get_experiment_context(workspace), list_history(workspace).
Record decisions with log_thought(). Never run git yourself: versions are managed for you.
The full guide is the resource goldfish://guide; the prompts start_experiment, triage_failed_run and
compare_and_finalize walk through the main workflows."""


class GoldfishServer(MCPServer):
    """MCPServer whose tools are registered on a background thread, and whose argument errors read
    as one line per bad argument, with the fix.

    Importing the tool modules (and the domain modules behind their result models) and building
    ~40 schemas takes a few hundred ms. The orientation tools (``status``, ``goldfish_version``,
    ``initialize_project``) are registered first; the rest follow once something needs them (tools/list,
    a call to a tool not registered yet), once the first call has answered, or after ``IDLE_START``
    seconds — so the first ``status()`` of a session neither waits for them nor shares the
    interpreter with their imports. tools/list and calls to later tools wait for all of them.
    """

    IDLE_START = 1.0

    def __init__(self, *args: Any, **kwargs: Any):
        # The SDK's logging set-up imports rich (~45 ms of every start-up, before the first answer) to
        # format lines on stderr, which is the MCP client's log: plain lines do there.
        configure = getattr(_sdk_server, "configure_logging", None)
        _sdk_server.configure_logging = _plain_logging
        try:
            super().__init__(*args, **kwargs)
        finally:
            if configure is not None:
                _sdk_server.configure_logging = configure
        self._first_registered = threading.Event()
        self._registered = threading.Event()
        self._start_rest = threading.Event()
        self._registration_error: BaseException | None = None

    def register_in_background(self, first: Callable[[], None], rest: Callable[[], None] | None = None) -> None:
        def work() -> None:
            try:
                first()
                self._first_registered.set()
                if rest is not None:
                    self._start_rest.wait(self.IDLE_START)
                    rest()
            except BaseException as exc:  # re-raised by every tools call, never lost
                self._registration_error = exc
            finally:
                self._first_registered.set()
                self._registered.set()

        threading.Thread(target=work, name="goldfish-register-tools", daemon=True).start()

    def register_rest_now(self) -> None:
        self._start_rest.set()

    def wait_registered(self, timeout: float = 120.0) -> None:
        self.register_rest_now()
        if not self._registered.wait(timeout):
            raise RuntimeError(f"Goldfish tools were not registered within {timeout} s.")
        self._raise_registration_error()

    def _raise_registration_error(self) -> None:
        if self._registration_error is not None:
            raise RuntimeError(
                f"Goldfish could not register its tools: {self._registration_error!r}"
            ) from self._registration_error

    async def _ready(self) -> None:
        if not self._registered.is_set():
            await anyio.to_thread.run_sync(self.wait_registered)
        self.wait_registered()

    async def run_stdio_async(self) -> None:
        """As the SDK's, but a request it cannot parse gets a JSON-RPC error reply (see transport.py)."""
        from mcp_server.transport import answering_stdio

        async with answering_stdio() as (read_stream, write_stream):
            await self._lowlevel_server.run(
                read_stream, write_stream, self._lowlevel_server.create_initialization_options()
            )

    async def _ready_for(self, name: str) -> None:
        """Wait only as long as the tool ``name`` needs: the first group, or everything."""
        if not self._first_registered.is_set():
            await anyio.to_thread.run_sync(self._first_registered.wait)
        self._raise_registration_error()
        if self._tool_manager.get_tool(name) is None:
            await self._ready()

    async def list_tools(self) -> list[MCPTool]:
        await self._ready()
        return await super().list_tools()

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None) -> Any:
        await self._ready_for(name)
        oversized = describe_oversized_text(name, arguments) if isinstance(arguments, dict) else None
        if oversized is not None:
            raise ToolError(oversized)
        started = time.monotonic()
        try:
            result = await super().call_tool(name, arguments, context)
            logger.info("tool %s answered in %.3f s", name, time.monotonic() - started, extra={"tool": name})
            return result
        except UnexpectedToolError as exc:
            disk = as_disk_error(exc.__cause__ or exc, Path.cwd())
            if disk is not None:  # a full / read-only / forbidden disk is not a Goldfish bug
                raise ToolError(str(disk)) from exc
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
        finally:
            self.register_rest_now()


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
    register_prompts(server)
    server.register_in_background(lambda: register_all(server, ctx, FIRST_MODULES),
                                  lambda: register_all(server, ctx, [m for m in MODULES if m not in FIRST_MODULES]))
    return server, ctx


def serve(project_arg: str | None, *, transport: str = "stdio", port: int = 8765) -> None:
    server, ctx = build_server(project_arg)
    ctx.log_role = "mcp"
    if transport == "stdio":
        server.run("stdio")
    else:
        # HTTP validates tool arguments from their schemas before tools/call reaches us.
        server.wait_registered()
        anyio.run(_serve_http, server, project_arg, port)


async def _serve_http(server: GoldfishServer, project_arg: str | None, port: int) -> None:
    """streamable-http on 127.0.0.1, every request checked for the project's bearer token."""
    import sys

    import uvicorn

    from goldfish.project import Project
    from mcp_server.http_auth import ensure_token, require_bearer, token_path

    project = Project.open(project_arg, source="mcp")  # the token belongs to a project: refuse without one
    token = ensure_token(project.gf_dir)
    host = "127.0.0.1"
    app = require_bearer(server.streamable_http_app(host=host), token)
    print(
        f"Goldfish MCP server on http://{host}:{port}/mcp\n"
        f"Every request needs the header  Authorization: Bearer {token}\n"
        f"(token kept in {token_path(project.gf_dir)}, readable only by you; delete it for a new one)",
        file=sys.stderr, flush=True,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level=server.settings.log_level.lower())
    await uvicorn.Server(config).serve()
