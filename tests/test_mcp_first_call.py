"""The first status() of a session waits only for the orientation tools, not for every tool module;
the others register once something needs them or once the first call has answered."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp.server.mcpserver.exceptions import ToolError

from goldfish.init import init_project
from mcp_server.server import GoldfishServer, build_server


@pytest.fixture
def never_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only a call or tools/list may start the rest (no timer), so what the test sees is deterministic.
    monkeypatch.setattr(GoldfishServer, "IDLE_START", 3600.0)


async def test_first_status_does_not_wait_for_the_other_tools(tmp_path: Path, never_idle: None) -> None:
    root = init_project(tmp_path / "proj", "proj").project_root
    server, ctx = build_server(str(root))
    await anyio.to_thread.run_sync(server._first_registered.wait, 60)
    registered = {t.name for t in server._tool_manager.list_tools()}
    assert {"status", "goldfish_version", "initialize_project"} <= registered
    assert "run" not in registered and "finalize_run" not in registered

    result = await server.call_tool("status", {})
    assert "initialized" in str(result)

    # The first call's answer starts the rest; tools/list waits for all of them.
    tools = {t.name for t in await server.list_tools()}
    assert {"run", "finalize_run", "create_workspace", "dashboard"} <= tools
    ctx.stop_watching()


async def test_a_later_tool_waits_for_its_registration(tmp_path: Path, never_idle: None) -> None:
    root = init_project(tmp_path / "proj", "proj").project_root
    server, ctx = build_server(str(root))
    # Not registered yet when called: the call waits, then the tool itself answers (not "unknown tool").
    with pytest.raises(ToolError, match="Workspace 'nothing-here' does not exist"):
        await server.call_tool("list_unfinalized_runs", {"workspace": "nothing-here"})
    assert server._registered.is_set()
    ctx.stop_watching()
