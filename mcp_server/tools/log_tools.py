"""search_goldfish_logs(): one query over every log Goldfish and its stages write (and, for gce
runs, Cloud Logging)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from goldfish.logsearch.search import SearchResult, search_logs
from mcp_server.context import ServerContext, guarded


def register(server: MCPServer, ctx: ServerContext) -> None:
    # open world: on gce projects the query is also sent to Cloud Logging.
    @server.tool(annotations=ToolAnnotations(title="Search logs", read_only_hint=True, open_world_hint=True))
    @guarded
    def search_goldfish_logs(
        query: Annotated[str | None, Field(max_length=2000, description=(
            'LogsQL-like query, e.g. \'"CUDA out of memory" stage:train _time:1d\' (None: the newest lines)'))] = None,
        show_guide: Annotated[bool, Field(description="Also return the query guide with examples")] = False,
        limit: Annotated[int, Field(ge=1, le=1000, description="Hits per page (newest first)")] = 50,
        cursor: Annotated[str | None, Field(max_length=2000, description=(
            "From a previous call with the same query: the next (older) page"))] = None,
    ) -> SearchResult:
        """Search every log at once: stage stdout/stderr of all runs (labelled with run, stage and
        workspace), and Goldfish's own logs (runner, reconciler, MCP server, image builds, backups).
        Use it for "where else did this happen?": the same traceback in earlier runs, what the runner
        did around a stall, which builds failed yesterday.

        Words and "phrases"; field:value for run, stage, workspace, level, source; _time:15m or
        _time:[2026-01-01, 2026-01-02]; AND / OR / NOT (or -term); parentheses; '| limit N'.
        Example: "Traceback (most recent call last)" NOT workspace:scratch _time:7d.
        Hits are newest first, each with its run, file and line; page with cursor while has_more.
        show_guide=True returns the full guide. A malformed query is refused with the position of the
        problem and the guide line showing the right form."""
        return search_logs(ctx.project(), query, show_guide=show_guide, limit=limit, cursor=cursor)
