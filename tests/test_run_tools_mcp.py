"""The run lifecycle tools through the real MCP client (in-process server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.server import build_server
from tests.run_helpers import REASON, SPEC, make_env

STAGE = '''
import time
from goldfish.metrics import log_metric, finish
from goldfish.io import get_output_path, runtime_log
for step in range(300):
    log_metric("train/loss", 1.0 / (step + 1), step=step)
for i in range(3):
    runtime_log(f"epoch {i}")
finish()
get_output_path("out").write_text("ok")
time.sleep(0.3)
print("last line", flush=True)
'''
SLOW = "import time\nprint('waiting', flush=True)\ntime.sleep(30)\n"


async def test_run_inspect_logs_history_cancel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([{"name": "train", "outputs": {"out": {"type": "file", "schema": None}}},
               {"name": "slow", "outputs": {}}], {"train": STAGE, "slow": SLOW})
    server, _ctx = build_server(str(env.root))
    async with Client(server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"run", "inspect_run", "logs", "cancel", "get_metric_history"} <= names

        bad = await client.call_tool("run", {"workspace": "w1", "reason": REASON})
        assert bad.is_error and "results_spec" in bad.content[0].text

        dry = await client.call_tool("run", {"workspace": "w1", "dry_run": True})
        assert not dry.is_error and dry.structured_content["dry_run"] is True

        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append((done, total, message))

        res = await client.call_tool("run", {"workspace": "w1", "stages": ["train"], "reason": REASON,
                                             "results_spec": SPEC, "wait": True}, progress_callback=on_progress)
        assert not res.is_error, res.content
        sc = res.structured_content
        assert sc["done"] and sc["status"] == "completed" and sc["version"] == "v1"
        assert progress and progress[-1][0] == 1 and progress[-1][1] == 1
        run_id = sc["stage_runs"][0]["stage_run_id"]

        ins = await client.call_tool("inspect_run", {"run_id": run_id,
                                                     "include": ["dashboard", "metadata", "manifest", "provenance",
                                                                 "svs", "attempt", "thoughts"]})
        isc = ins.structured_content
        assert isc["metadata"]["state"] == "completed" and isc["metadata"]["reason"] == REASON
        assert isc["dashboard"]["metrics"]["train/loss"]["count"] == 300
        assert isc["provenance"]["sha"] == sc["sha"] and isc["attempt"]["attempt"] == 1
        assert isc["manifest"]["outputs"]["out"]["exists"] is True

        wrong = await client.call_tool("inspect_run", {"run_id": run_id, "include": ["dashbord"]})
        assert wrong.is_error

        first = (await client.call_tool("logs", {"run_id": run_id, "tail": 2})).structured_content
        assert first["logs"].splitlines()[-1] == "last line" and len(first["logs"].splitlines()) == 2
        again = (await client.call_tool("logs", {"run_id": run_id, "cursor": first["cursor"]})).structured_content
        assert again["logs"] == "" and again["cursor"] == first["cursor"] and again["done"]
        whole = (await client.call_tool("logs", {"run_id": run_id, "cursor": 0})).structured_content
        assert "epoch 0" in whole["logs"] and whole["logs"].endswith("last line")

        hist = (await client.call_tool("get_metric_history", {"run_id": run_id, "max_points": 50})).structured_content
        series = hist["metrics"][0]
        assert series["name"] == "train/loss" and series["total_points"] == 300 and series["downsampled"]
        assert len(series["steps"]) == 50 and series["steps"][0] == 0 and series["steps"][-1] == 299
        assert series["values"][0] == 1.0
        same = (await client.call_tool("get_metric_history", {"run_id": run_id, "max_points": 50})).structured_content
        assert same == hist

        blocked = await client.call_tool("run", {"workspace": "w1", "stages": ["slow"], "reason": REASON,
                                                 "results_spec": SPEC})
        assert blocked.is_error and run_id in blocked.content[0].text and "finalize_run" in blocked.content[0].text
        project = env.project
        with project.store.transaction() as tx:
            tx.table("runs", "ws/exp").patch(run_id, {"results_status": "finalized"})

        slow = (await client.call_tool("run", {"workspace": "w1", "stages": ["slow"], "reason": REASON,
                                               "results_spec": SPEC})).structured_content
        slow_id = slow["stage_runs"][0]["stage_run_id"]
        short = await client.call_tool("cancel", {"run_id": slow_id, "reason": "short"})
        assert short.is_error and "too short" in short.content[0].text
        canceled = (await client.call_tool("cancel", {"run_id": slow_id,
                                                      "reason": "no longer needed for this test"})).structured_content
        assert canceled["success"] and canceled["state"] == "canceled"
        follow = (await client.call_tool("logs", {"run_id": slow_id, "follow": True})).structured_content
        assert "Canceled: no longer needed" in (follow["error"] or "")
