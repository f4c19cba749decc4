"""A long-lived MCP server settles a run whose runner and stage died, with no other process around."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from goldfish.procs import pid_alive
from goldfish.runs.lease import LeaseFile
from tests.mcp_helpers import stdio_params
from tests.run_helpers import REASON, SPEC, file_stage, make_env

SLEEPER = "import time\nfor _ in range(600):\n    time.sleep(0.1)\n"
LEASE = 5  # the smallest jobs.runner_lease_seconds


async def _call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    res = await client.call_tool(tool, args)
    assert not res.is_error, res.content
    return res.structured_content or {}


async def test_server_settles_a_dead_run_within_two_leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)  # jobs.runner_lease_seconds: 5
    env.write([file_stage("gone")], {"gone": SLEEPER})
    project = env.project  # read-only below: runs.get never reconciles
    async with Client(stdio_params(env.root), read_timeout_seconds=120) as client:
        started = await _call(client, "run", workspace="w1", stages=["gone"], reason=REASON, results_spec=SPEC)
        run_id, prun_id = started["stage_runs"][0]["stage_run_id"], started["pipeline_run_id"]
        deadline = time.monotonic() + 60
        while (doc := project.runs.get(run_id))["state"] != "running" or not doc.get("backend_handle"):
            assert time.monotonic() < deadline, doc["state"]
            time.sleep(0.05)
        lease = None
        while lease is None or not lease.pid:
            assert time.monotonic() < deadline, "the runner never took its lease"
            lease = LeaseFile(project.runs_dir / prun_id).read()
            time.sleep(0.05)
        handle = doc["backend_handle"]
        os.kill(lease.pid, signal.SIGKILL)
        os.killpg(handle["pgid"], signal.SIGKILL)
        while pid_alive(lease.pid) or pid_alive(handle["pid"]):
            assert time.monotonic() < deadline, "runner or stage survived SIGKILL"
            time.sleep(0.02)
        dead_at = time.monotonic()
        # No tool call and no other Goldfish process: only the server's own timer can settle it.
        while (doc := project.runs.get(run_id))["state"] == "running":
            assert time.monotonic() - dead_at < 2 * LEASE, "still running two lease intervals after both died"
            time.sleep(0.1)
        assert (doc["state"], doc["cause"]) == ("terminated", "orphaned")
        assert doc["history"][-1]["source"] == "mcp"  # the server settled it, not a new runner
        seen = await _call(client, "inspect_run", run_id=run_id, include=["dashboard", "metadata"])
        assert seen["metadata"]["state"] == "terminated" and seen["metadata"]["cause"] == "orphaned"
        assert seen["dashboard"]["state"] == "terminated"
