"""Start-up of ``goldfish serve``: it answers initialize, and imports nothing heavy.

A client (Claude Code) waits for the initialize response before it shows the tools, so the server
imports only what registering the tools needs; numpy, the cloud SDKs, anthropic, textual, pandas
and GitPython are imported by services when a tool first needs them. How long start-up takes is
measured in ``benchmarks/mcp_bench.py``, against the floor (interpreter + the mcp SDK) in the same
run: a wall-clock budget asserted here would fail whenever the machine is busy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from goldfish.init import init_project
from tests.mcp_helpers import REPO

HEAVY = ("numpy", "anthropic", "google.cloud", "textual", "pandas", "git", "plotext")

INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}


def _initialize(cwd: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "goldfish", "serve"], cwd=cwd, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
        proc.stdin.flush()
        line = proc.stdout.readline()
        proc.stdin.close()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return json.loads(line)


def test_initialize_response(tmp_path: Path) -> None:
    init_project(tmp_path / "proj", "proj")
    reply = _initialize(tmp_path / "proj")
    assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "goldfish", reply
    assert "status()" in reply["result"]["instructions"]


def _modules_after(code: str, cwd: Path) -> set[str]:
    """sys.modules after running ``code`` in a fresh interpreter. (``-X importtime`` does not see
    imports made on the registration thread, so sys.modules is the record.)"""
    proc = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"], cwd=cwd,
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60, check=True,
    )
    names = set(proc.stdout.split())
    assert "mcp_server.tools.run_tools" in names, "every tool module must have been imported"
    return names


def _heavy(names: set[str]) -> list[str]:
    return sorted(n for n in names for h in HEAVY if n == h or n.startswith(h + "."))


def test_building_the_server_imports_nothing_heavy(tmp_path: Path) -> None:
    names = _modules_after("from mcp_server.server import build_server\ns, _ = build_server()\ns.wait_registered()",
                           tmp_path)
    assert not _heavy(names), _heavy(names)


def test_opening_a_project_imports_nothing_heavy(tmp_path: Path) -> None:
    """The server opens the project at start-up (lifespan); that must stay light too."""
    init_project(tmp_path / "proj", "proj")
    names = _modules_after(
        "from mcp_server.server import build_server\ns, ctx = build_server()\ns.wait_registered()\n"
        "ctx.start_watching()\nctx.project()\nctx.stop_watching()",
        tmp_path / "proj",
    )
    assert not _heavy(names), _heavy(names)
