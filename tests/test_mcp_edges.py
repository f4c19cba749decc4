"""Edges of the MCP server: a request the SDK cannot parse gets a JSON-RPC error reply (over the
real stdio transport), and the server keeps answering afterwards."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from goldfish.init import init_project
from tests.mcp_helpers import REPO

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
        # ... and the server still answers the next request.
        server.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                "params": {"name": "goldfish_version", "arguments": {}}}))
        after = server.receive()
        assert after["id"] == 7 and after["result"]["isError"] is False
    finally:
        server.close()
