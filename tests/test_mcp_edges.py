"""Edges of the MCP server: a request the SDK cannot parse gets a JSON-RPC error reply (over the
real stdio transport) and the server keeps answering; the slot watcher survives a file name that is
not valid UTF-8 (skips it, status() reports it) and is restarted if it dies."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from collections.abc import Callable

from goldfish.init import init_project
from goldfish.workspaces.watcher import SlotWatcher, skipped_names
from mcp_server.context import ServerContext
from mcp_server.tools.project_tools import status_of
from tests.mcp_helpers import REPO
from tests.ws_helpers import REASON, make_project

DEADLINE = 60.0


class RawStdio:
    """The server as a subprocess spoken to line by line, bypassing the client library's checks."""

    def __init__(self, cwd: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "goldfish", "serve"], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)},
        )

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                assert line, "the server closed stdout"
                return dict(json.loads(line))
        raise AssertionError(f"no reply within {DEADLINE} s")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_a_lone_surrogate_gets_an_error_reply_and_the_server_goes_on(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    server = RawStdio(root)
    try:
        server.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}))
        assert server.receive()["id"] == 1
        server.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        # json.dumps escapes the lone surrogate as \ud800: valid JSON grammar, not valid Unicode.
        server.send(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
            "name": "log_thought", "arguments": {"thought": "a thought with a lone \ud800 surrogate"}}}))
        reply = server.receive()
        assert reply["id"] == 5 and reply["error"]["code"] == -32700
        assert "surrogate" in reply["error"]["message"] and "UTF-8" in reply["error"]["message"]
        # Not JSON at all: an error with a null id.
        server.send('{"jsonrpc": "2.0", "id": 6, "method": ')
        broken = server.receive()
        assert broken["id"] is None and broken["error"]["code"] == -32700
        # A malformed notification is dropped silently (notifications never get replies) ...
        server.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/x", "params": {"a": "\udc00"}}))
        # A 10 MB argument over the real pipe is refused with the limit, not swallowed.
        server.send(json.dumps({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {
            "name": "log_thought", "arguments": {"thought": "x" * (10 * 1024 * 1024)}}}))
        huge = server.receive()
        assert huge["id"] == 8 and huge["result"]["isError"] is True
        assert "at most 8000 characters" in huge["result"]["content"][0]["text"]
        # ... and the server still answers the next request.
        server.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                "params": {"name": "goldfish_version", "arguments": {}}}))
        after = server.receive()
        assert after["id"] == 7 and after["result"]["isError"] is False
    finally:
        server.close()


def wait_for(cond: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_the_watcher_skips_an_undecodable_name_and_keeps_watching(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.workspaces.create("exp", "find a good model", REASON)
    project.workspaces.mount("exp", "w1", REASON)
    watcher = SlotWatcher(project)
    watcher.start()
    try:
        slot = project.slot_path("w1")
        with open(os.path.join(os.fsencode(slot), b"bad\xff.txt"), "wb") as f:
            f.write(b"data")
        assert wait_for(lambda: watcher.skipped == ["w1/bad\\xFF.txt"]), watcher.skipped
        assert watcher.running and watcher.restarts >= 1
        (slot / "good.txt").write_text("tracked\n")

        def changed() -> list[str]:
            row = project.store.table("mounts").get_doc("w1") or {}
            return [c["path"] for c in row.get("changed_files") or []]

        assert wait_for(lambda: "good.txt" in changed()), changed()
        assert skipped_names(project) == ["w1/bad\\xFF.txt"]
        status = status_of(project)
        assert status.untracked_names == ["w1/bad\\xFF.txt"] and "not valid UTF-8" in status.message
    finally:
        watcher.stop()


def test_a_dead_watcher_is_restarted(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    ctx = ServerContext(str(project.root))
    ctx.start_watching()
    try:
        first = ctx.watcher
        assert first is not None and wait_for(lambda: first.running)
        first.stop()  # as if its thread had died
        assert not first.running
        ctx.project()  # any tool call
        assert ctx.watcher is not None and ctx.watcher.running
    finally:
        ctx.stop_watching()
