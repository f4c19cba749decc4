"""MCP server latency: start-up and tool round trips at 10,000 experiment records.

    python benchmarks/mcp_bench.py [--records 10000] [--reps 30] [--starts 5]

Rows:
- time from spawning `goldfish serve` to its `initialize` response (stdio), and to the result of
  the session's first `status()` call (initialize, initialized, tools/call status: what an agent
  does first), beside the time to spawn `python -c "import mcp.server.mcpserver"` (the floor:
  interpreter + the mcp SDK), measured alternately in the same run; the target for the first
  status() is at most 1.15x the floor;
- median round trip over stdio of status(), dashboard(), list_history(limit=20) and inspect_record(ref) in a
  project holding N records (written in one store transaction), beside goldfish_version() (the
  floor: JSON-RPC over stdio with no project work).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp import Client, StdioServerParameters

from goldfish.init import init_project
from tests.scale_rows import write_scale_rows

INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
STATUS_CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "status", "arguments": {}}}


def _session(project: Path, request: dict) -> tuple[float, float, dict]:  # type: ignore[type-arg]
    """Spawn `goldfish serve`, initialize, send ``request``: (seconds to the initialize response,
    seconds to the answer of ``request``, that answer), both counted from the spawn."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "goldfish", "serve"], cwd=project, env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
    proc.stdin.flush()
    proc.stdout.readline()
    initialized = time.perf_counter() - t0
    proc.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
    proc.stdin.write((json.dumps(request) + "\n").encode())
    proc.stdin.flush()
    answer = json.loads(proc.stdout.readline())
    answered = time.perf_counter() - t0
    proc.stdin.close()
    proc.wait(timeout=20)
    return initialized, answered, answer


def time_initialize(project: Path) -> tuple[float, float]:
    """(seconds to the initialize response, seconds to the tools/list response) from spawning."""
    initialized, listed, _ = _session(project, TOOLS_LIST)
    return initialized, listed


def time_first_status(project: Path) -> float:
    """Seconds from spawning `goldfish serve` to the result of the first status() call."""
    _, elapsed, answer = _session(project, STATUS_CALL)
    assert not answer["result"].get("isError") and answer["result"]["structuredContent"]["initialized"], answer
    return elapsed


def time_import_floor() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mcp.server.mcpserver"], env=_env(), check=True)
    return time.perf_counter() - t0


async def round_trips(project: Path, workspace: str, record: str, reps: int) -> dict[str, float]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "goldfish", "serve"], cwd=str(project),
                                   env=_env())
    calls = {
        "goldfish_version()": ("goldfish_version", {}),
        "status()": ("status", {}),
        "dashboard()": ("dashboard", {}),
        "list_history(limit=20)": ("list_history", {"workspace": workspace, "limit": 20}),
        "inspect_record(ref)": ("inspect_record", {"ref": record, "workspace": workspace}),
    }
    out = {}
    async with Client(params) as client:
        for label, (tool, args) in calls.items():
            t0 = time.perf_counter()
            first = await client.call_tool(tool, args)
            out[f"{label} first call"] = (time.perf_counter() - t0) * 1000
            assert not first.is_error, (label, first.content)
            samples = []
            for _ in range(reps):
                t0 = time.perf_counter()
                await client.call_tool(tool, args)
                samples.append(time.perf_counter() - t0)
            out[label] = statistics.median(samples) * 1000
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--starts", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = init_project(Path(tmp) / "bench", "bench").project_root
        # Alternate the three so that a change in the machine's load hits each alike.
        starts, firsts, floors = [], [], []
        for _ in range(args.starts):
            starts.append(time_initialize(project))
            firsts.append(time_first_status(project))
            floors.append(time_import_floor())
        floor_ms = statistics.median(floors) * 1000
        rows = {"initialize response": [s[0] for s in starts], "tools/list response": [s[1] for s in starts],
                "first status() result": firsts}
        for label, samples in rows.items():
            ms = statistics.median(samples) * 1000
            print(f"{label + ' (stdio):':32s} {ms:7.1f} ms median of {args.starts}"
                  f"  (floor: python + import mcp {floor_ms:.1f} ms, ratio {ms / floor_ms:.2f})")
        t0 = time.perf_counter()
        workspace, record = write_scale_rows(project, args.records)
        print(f"wrote {args.records} records in one transaction in {time.perf_counter() - t0:.1f} s")
        rt = asyncio.run(round_trips(project, workspace, record, args.reps))
        floor = rt["goldfish_version()"]
        for label, ms in rt.items():
            if label.endswith("first call"):
                print(f"{label:32s} {ms:7.2f} ms (cold: first call of the tool in this process; parses store partitions)")
            else:
                print(f"{label:32s} {ms:7.2f} ms median of {args.reps}  (x{ms / floor:.1f} of goldfish_version)")


if __name__ == "__main__":
    main()
