"""`goldfish serve --transport streamable-http`: the real client over HTTP, bound to 127.0.0.1 only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from mcp import Client

from goldfish.init import init_project
from tests.mcp_helpers import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if int(hex_port, 16) == port and state == "0A":  # 0A = LISTEN
                found.add(address)
    return found


async def test_streamable_http_on_loopback(tmp_path: Path) -> None:
    root = init_project(tmp_path / "proj", "proj").project_root
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "goldfish", "serve", "--project", str(root), "--transport", "streamable-http",
         "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not _listening_addresses(port):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the HTTP server did not start listening"
            time.sleep(0.1)
        assert _listening_addresses(port) == {"0100007F"}, "must listen on 127.0.0.1 only"
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            status = await client.call_tool("status", {})
            assert not status.is_error and status.structured_content["project_name"] == "proj"
            tools = await client.list_tools()
            assert len(tools.tools) > 30
    finally:
        proc.terminate()
        proc.wait(timeout=10)
