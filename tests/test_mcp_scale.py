"""Result sizes at 10,000 experiment records: every list-ish tool at its largest page stays under
~80 KB of JSON (~20k tokens), and a stage run with a long log and many metrics stays bounded too.

Rows are written in one store transaction (tests/scale_rows.py); the run is a real stage run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from goldfish.init import init_project
from mcp_server.server import build_server
from tests.scale_rows import PRODUCER, write_scale_rows

pytestmark = pytest.mark.slow

MAX_JSON_BYTES = 80_000
N_RECORDS = 10_000

NOISY_PIPELINE = """\
stages:
  - name: noisy
    outputs:
      out:
        type: file
        schema: null
"""
NOISY = '''\
from goldfish.io import get_output_path
from goldfish.metrics import finish, log_metrics

def main():
    for step in range(3000):
        log_metrics({f"m{k:02d}/value": step * 0.001 + k for k in range(25)}, step=step)
    for i in range(20000):
        print(f"line {i:05d} " + "x" * 110)
    get_output_path("out").write_text("done")
    finish()
'''
SPEC = {"primary_metric": "m00/value", "direction": "maximize", "min_value": 0.1, "goal_value": 1.0,
        "dataset_split": "train", "tolerance": 0.01, "context": "A stage that floods its log and metrics."}


def _size(result: Any) -> int:
    return len(json.dumps(result.structured_content).encode())


async def test_every_list_result_stays_small_at_10000_records(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    workspace, record_id = write_scale_rows(root, N_RECORDS)
    run_id = "stage-00000100"
    server, _ctx = build_server(str(root))
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        # Arguments for the largest answer each tool can give.
        calls: dict[str, dict[str, Any]] = {
            "status": {},
            "dashboard": {},
            "validate_config": {},
            "inspect_workspace": {"name": workspace, "include": ["pipeline"]},
            "manage_versions": {"workspace": workspace, "action": "list", "include_pruned": True},
            "get_audit_log": {},
            "get_workspace_thoughts": {"workspace": workspace},
            "list_history": {"workspace": workspace},
            "list_unfinalized_runs": {"workspace": workspace},
            "get_experiment_context": {"workspace": workspace},
            "inspect_record": {"ref": record_id, "workspace": workspace,
                               "include": ["results", "comparison", "tags", "spec", "config", "lineage"]},
            "get_debug_info": {"ref": record_id, "workspace": workspace},
            "get_lineage": {"run_id": PRODUCER},
            "inspect_run": {"run_id": run_id, "include": ["dashboard", "metadata", "thoughts", "manifest",
                                                         "provenance", "svs", "attempt"]},
            "manage_sources": {"action": "list"},
            "manage_patterns": {"action": "list"},
            "search_goldfish_logs": {"query": "stage"},
        }
        for name, tool in tools.items():
            props = tool.input_schema.get("properties", {})
            if "limit" in props and name not in calls:
                pytest.fail(f"{name} pages with limit but has no scale case here; add one")
            if name in calls and "limit" in props:
                calls[name]["limit"] = props["limit"]["maximum"]
        sizes = {}
        for name, args in calls.items():
            if name not in tools:
                continue
            result = await client.call_tool(name, args)
            assert not result.is_error, (name, result.content[0].text)
            sizes[name] = _size(result)
        too_big = {k: v for k, v in sizes.items() if v > MAX_JSON_BYTES}
        assert not too_big, f"results over {MAX_JSON_BYTES} bytes: {too_big} (all: {sizes})"

        lineage = (await client.call_tool("get_lineage", {"run_id": PRODUCER})).structured_content
        assert lineage["total"] > 3000 and lineage["has_more"] and lineage["consumers"]
        upstream = (await client.call_tool("get_lineage", {"run_id": "stage-00000001", "direction": "upstream"}))
        assert upstream.structured_content["producers"][0]["run_id"] == PRODUCER
        queue = (await client.call_tool("list_unfinalized_runs", {"workspace": workspace})).structured_content
        assert queue["count"] == 500 and queue["has_more"] and len(queue["runs"]) == 50
        context = (await client.call_tool("get_experiment_context", {"workspace": workspace})).structured_content
        assert context["awaiting_total"] == 500 and len(context["awaiting_finalization"]) == 10

        history = await client.call_tool("list_history", {"workspace": workspace, "limit": 200})
        page = history.structured_content
        assert page["total"] == N_RECORDS and page["has_more"] is True and page["records"]
        nxt = await client.call_tool("list_history", {"workspace": workspace, "limit": 200,
                                                      "offset": len(page["records"])})
        ids = {r["record_id"] for r in page["records"]}
        assert ids.isdisjoint(r["record_id"] for r in nxt.structured_content["records"])


async def test_a_flooded_run_stays_small(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    server, _ctx = build_server(str(root))
    async with Client(server) as client:
        reason = "a run that floods its log and metrics"
        for tool, args in (("create_workspace", {"name": "noisy", "goal": "size limits", "reason": reason, "template": "none"}),
                           ("mount", {"workspace": "noisy", "slot": "w1", "reason": reason})):
            res = await client.call_tool(tool, args)
            assert not res.is_error, res.content
        slot = root / "workspaces" / "w1"
        (slot / "modules").mkdir(parents=True)
        (slot / "pipeline.yaml").write_text(NOISY_PIPELINE)
        (slot / "modules" / "noisy.py").write_text(NOISY)
        run = await client.call_tool("run", {"workspace": "w1", "reason": reason, "results_spec": SPEC,
                                             "wait": True, "wait_seconds": 300})
        assert not run.is_error and run.structured_content["status"] == "completed", run.content
        run_id = run.structured_content["stage_runs"][0]["stage_run_id"]
        sizes = {}
        for tool, args in (
            ("logs", {"run_id": run_id, "tail": 10_000}),
            ("logs", {"run_id": run_id, "cursor": 0}),
            ("get_metric_history", {"run_id": run_id, "max_points": 5000}),
            ("get_metric_history", {"run_id": run_id, "max_points": 5000,
                                    "names": [f"m{k:02d}/value" for k in range(20)]}),
            ("inspect_run", {"run_id": run_id, "include": ["dashboard", "metadata", "thoughts", "manifest",
                                                           "provenance", "svs", "attempt"]}),
            ("inspect_record", {"ref": run_id, "include": ["results", "comparison", "tags", "spec", "config",
                                                           "lineage"]}),
        ):
            res = await client.call_tool(tool, args)
            assert not res.is_error, (tool, res.content[0].text)
            sizes[f"{tool}({', '.join(args)})"] = _size(res)
        too_big = {k: v for k, v in sizes.items() if v > MAX_JSON_BYTES}
        assert not too_big, f"results over {MAX_JSON_BYTES} bytes: {too_big} (all: {sizes})"
