"""`goldfish serve --transport streamable-http`: the real client over HTTP, bound to 127.0.0.1 only,
every request checked for the project's bearer token (a 0600 file, printed at start)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from goldfish.init import init_project
from goldfish.project import Project
from mcp_server.http_auth import token_path
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


async def test_streamable_http_on_loopback_needs_the_token(tmp_path: Path) -> None:
    root = init_project(tmp_path / "proj", "proj").project_root
    port = _free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "goldfish", "serve", "--project", str(root), "--transport", "streamable-http",
             "--port", str(port)],
            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=err,
        )
    try:
        deadline = time.monotonic() + 30
        while not _listening_addresses(port):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the HTTP server did not start listening"
            time.sleep(0.1)
        assert _listening_addresses(port) == {"0100007F"}, "must listen on 127.0.0.1 only"
        path = token_path(Project.open(root).gf_dir)
        token = path.read_text().strip()
        assert len(token) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert f"Authorization: Bearer {token}" in log.read_text()  # printed at start

        url = f"http://127.0.0.1:{port}/mcp"
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        async with httpx2.AsyncClient() as http:
            for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": token}):
                refused = await http.post(url, json=body, headers={"Accept": "application/json, text/event-stream",
                                                                   **headers})
                assert refused.status_code == 401, (headers, refused.status_code)
                assert "Bearer" in refused.json()["message"] and refused.headers["www-authenticate"]

            # With the token, a request the server cannot parse (a lone surrogate) still gets a JSON-RPC error.
            bad = await http.post(url, content=b'{"jsonrpc": "2.0", "id": 3, "method": "tools/list", '
                                  b'"params": {"x": "\\ud800"}}',
                                  headers={"Accept": "application/json, text/event-stream",
                                           "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            assert bad.status_code == 400 and bad.json()["error"]["code"] == -32700  # the SDK answers this one itself

        http_client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with Client(streamable_http_client(url, http_client=http_client)) as client:
            status = await client.call_tool("status", {})
            assert not status.is_error and status.structured_content["project_name"] == "proj"
            tools = await client.list_tools()
            assert len(tools.tools) > 30
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_token_is_made_once_private_and_a_readable_one_is_refused(tmp_path: Path) -> None:
    import pytest

    from goldfish.errors import ConfigError
    from mcp_server.http_auth import ensure_token

    first = ensure_token(tmp_path)
    assert ensure_token(tmp_path) == first  # configured clients keep working across restarts
    assert stat.S_IMODE(token_path(tmp_path).stat().st_mode) == 0o600
    token_path(tmp_path).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        ensure_token(tmp_path)
