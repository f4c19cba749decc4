"""Workspace, version and journal tools through a real MCP client (in-process and stdio)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import orjson
from mcp import Client, StdioServerParameters

from goldfish.project import Project
from goldfish.workspaces.watcher import liveness_path
from mcp_server.server import build_server
from tests.ws_helpers import REASON, make_project, write

REPO = Path(__file__).resolve().parent.parent

WORKSPACE_TOOLS = {
    "create_workspace", "mount", "hibernate", "save_version", "inspect_workspace", "diff", "rollback",
    "delete_workspace", "manage_versions", "log_thought", "get_workspace_thoughts", "get_audit_log", "status",
}


async def _ok(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    res = await client.call_tool(tool, args)
    assert not res.is_error, (tool, res.content)
    return res.structured_content or {}


async def _err(client: Client, tool: str, args: dict[str, Any], *needles: str) -> str:
    res = await client.call_tool(tool, args)
    assert res.is_error, (tool, res.structured_content)
    text = res.content[0].text  # type: ignore[union-attr]
    for needle in needles:
        assert needle in text, (tool, text)
    return text


async def test_workspace_tools_in_process(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    server, ctx = build_server(str(project.root))
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) >= WORKSPACE_TOOLS
        for name in WORKSPACE_TOOLS:
            assert tools[name].output_schema and tools[name].annotations, name
        assert tools["diff"].annotations.read_only_hint and tools["delete_workspace"].annotations.destructive_hint

        # The server runs the slot watcher; it starts once the project has opened (in the background).
        end = time.monotonic() + 15
        while not (ctx.watcher is not None and ctx.watcher.running) and time.monotonic() < end:
            await anyio.sleep(0.05)
        assert ctx.watcher is not None and ctx.watcher.running

        created = await _ok(client, "create_workspace", {"name": "exp", "goal": "beat the baseline", "reason": REASON})
        assert created["workspace"] == "exp" and "mount(" in created["next_step"]
        await _err(client, "create_workspace", {"name": "exp", "goal": "x", "reason": REASON}, "already exists", "Fix:")
        await _err(client, "create_workspace", {"name": "../x", "goal": "x", "reason": REASON}, "Invalid workspace name")

        mounted = await _ok(client, "mount", {"workspace": "exp", "slot": "w1", "reason": REASON})
        slot = Path(mounted["path"])
        await _err(client, "mount", {"workspace": "exp", "slot": "w2", "reason": REASON}, "already mounted in slot w1")

        write(slot, {"train.py": "lr = 0.1\n"})
        saved = await _ok(client, "save_version", {"slot": "w1", "message": "first training script"})
        assert (saved["version"], saved["created"]) == ("v1", True)
        await _err(client, "save_version", {"slot": "w1", "message": "short"}, "too short")

        write(slot, {"train.py": "lr = 0.2\n"})
        # status() reads what the watcher recorded (it lags a write by its ~50 ms debounce).
        end = time.monotonic() + 10
        while not (project.store.table("mounts").get_doc("w1") or {}).get("dirty") and time.monotonic() < end:
            await anyio.sleep(0.02)
        status = await _ok(client, "status", {})
        w1 = status["slots"][0]
        assert (w1["workspace"], w1["current_version"], w1["state"]) == ("exp", "v1", "mounted")
        assert w1["dirty"] is True and w1["changed_files"] == [{"path": "train.py", "status": "modified"}]
        assert status["recent_audit"][0]["op"] == "save_version" and "Unsaved changes in w1" in status["message"]

        diff = await _ok(client, "diff", {"target": "w1"})
        assert diff["has_changes"] and "+lr = 0.2" in diff["diff_text"]
        await _err(client, "diff", {"target": "exp@v7"}, "no version v7")

        await _ok(client, "save_version", {"slot": "exp", "message": "second training script"})
        inspected = await _ok(client, "inspect_workspace", {"name": "w1", "version_limit": 5})
        assert [v["version"] for v in inspected["lineage"]["versions"]] == ["v2", "v1"]
        await _err(client, "inspect_workspace", {"name": "nope"}, "does not exist")

        tagged = await _ok(client, "manage_versions", {"workspace": "exp", "action": "tag", "version": "v1", "tag": "best-v1"})
        assert tagged["tag"] == "best-v1"
        await _err(client, "manage_versions", {"workspace": "exp", "action": "prune", "version": "v1", "reason": REASON},
                   "protected", "untag")
        await _err(client, "manage_versions", {"workspace": "exp", "action": "unprune"}, "needs version")
        listed = await _ok(client, "manage_versions", {"workspace": "exp", "action": "list"})
        assert [v["version"] for v in listed["versions"]] == ["v1", "v2"]

        rolled = await _ok(client, "rollback", {"slot": "w1", "version": "best-v1", "reason": REASON})
        assert rolled["version"] == "v1" and (slot / "train.py").read_text() == "lr = 0.1\n"
        await _err(client, "rollback", {"slot": "w1", "version": "v9", "reason": REASON}, "no version v9")

        thought = await _ok(client, "log_thought", {"thought": "lr 0.2 was worse than 0.1", "workspace": "w1"})
        assert thought["workspace"] == "exp"
        await _err(client, "log_thought", {"thought": "too short"}, "too short")
        thoughts = await _ok(client, "get_workspace_thoughts", {"workspace": "exp"})
        assert thoughts["thoughts"][0]["thought"] == "lr 0.2 was worse than 0.1"
        await _err(client, "get_workspace_thoughts", {"workspace": "w3"}, "empty")
        audit = await _ok(client, "get_audit_log", {"limit": 3, "workspace": "exp"})
        assert audit["entries"][0]["op"] == "thought" and audit["has_more"]
        await _err(client, "get_audit_log", {"workspace": "a b"}, "Invalid workspace name")

        await _err(client, "delete_workspace", {"workspace": "exp", "reason": REASON}, "hibernate('w1'")
        hib = await _ok(client, "hibernate", {"slot": "w1", "reason": REASON})
        assert hib["auto_checkpointed"] and not slot.exists()
        await _err(client, "hibernate", {"slot": "w1", "reason": REASON}, "empty")
        deleted = await _ok(client, "delete_workspace", {"workspace": "exp", "reason": REASON})
        assert deleted["versions_archived"] == 2
    assert ctx.watcher is None  # stopped with the server
    assert not liveness_path(project).exists()


def test_stdio_server_runs_the_watcher_while_up(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "goldfish", "serve"], cwd=str(project.root),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )

    async def session() -> int:
        async with Client(params) as client:
            await _ok(client, "create_workspace", {"name": "exp", "goal": "beat the baseline", "reason": REASON})
            await _ok(client, "mount", {"workspace": "exp", "slot": "w1", "reason": REASON})
            path = liveness_path(project)
            end = time.monotonic() + 20
            while not path.exists() and time.monotonic() < end:
                await anyio.sleep(0.05)
            pid = orjson.loads(path.read_bytes())["pid"]
            assert pid != os.getpid()
            write(project.slot_path("w1"), {"a.py": "a = 1\n"})
            reopened = Project.open(project.root, source="test")
            while time.monotonic() < end and not (reopened.store.table("mounts").get_doc("w1") or {}).get("dirty"):
                await anyio.sleep(0.05)
            status = await _ok(client, "status", {})
            assert status["slots"][0]["dirty"] is True and status["slots"][0]["dirty_source"] == "watcher"
            return int(pid)

    anyio.run(session)
    assert not liveness_path(project).exists()  # removed when the server stopped
