"""The record tools through the real MCP client over stdio against `goldfish serve`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from tests.records_fixture import Rows, final, new_project

REPO = Path(__file__).resolve().parent.parent
TOOLS = {"finalize_run", "list_history", "inspect_record", "tag_record", "list_unfinalized_runs",
         "get_experiment_context", "get_debug_info", "get_lineage", "save_results_spec"}


def _params(cwd: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "goldfish", "serve"], cwd=str(cwd),
                                 env={**os.environ, "PYTHONPATH": str(REPO)})


async def test_record_tools_over_stdio(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    rows = Rows(project)
    rows.workspace("lstm")
    rows.mount("lstm", "w1")
    done = rows.run("lstm", value=0.68)
    crashed = rows.run("lstm", state="failed", cause="exit_nonzero", value=None)
    async with Client(_params(project.root)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert set(listed) >= TOOLS
        assert listed["list_history"].annotations.read_only_hint is True
        assert listed["finalize_run"].annotations.read_only_hint is False
        assert listed["tag_record"].annotations.idempotent_hint is True
        assert listed["list_history"].input_schema["properties"]["limit"]["maximum"] == 200
        assert "record_id" in str(listed["list_history"].output_schema)

        queue = await client.call_tool("list_unfinalized_runs", {"workspace": "w1"})
        assert not queue.is_error
        assert [r["stage_run_id"] for r in queue.structured_content["runs"]] == [done, crashed]

        bad = await client.call_tool("finalize_run", {"record_or_run_id": done, "results": {"value": "high"}})
        assert bad.is_error
        text = bad.content[0].text
        assert all(k in text for k in ("primary_metric", "direction", "value", "notes", "Fix:"))

        ok = await client.call_tool("finalize_run", {"record_or_run_id": done, "results": final(0.68)})
        assert not ok.is_error, ok.content
        assert ok.structured_content["results_status"] == "finalized"
        assert ok.structured_content["unfinalized_remaining"] == [crashed]

        tagged = await client.call_tool("tag_record", {"ref": done, "tag": "best"})
        assert tagged.structured_content["version"] == "v1"

        history = await client.call_tool("list_history", {"workspace": "lstm", "limit": 1})
        sc = history.structured_content
        assert sc["total"] == 2 and sc["has_more"] is True
        [newest] = sc["records"]
        assert newest["stage_run_id"] == crashed and "tags" not in newest

        too_many = await client.call_tool("list_history", {"workspace": "lstm", "limit": 500})
        assert too_many.is_error

        record = await client.call_tool("inspect_record", {"ref": "@best", "workspace": "lstm",
                                                           "include": ["results", "spec"]})
        assert record.structured_content["results"]["results_final"]["value"] == 0.68
        assert record.structured_content["spec"]["primary_metric"] == "acc"
        no_ws = await client.call_tool("inspect_record", {"ref": "@best"})
        assert no_ws.is_error and "workspace" in no_ws.content[0].text

        context = await client.call_tool("get_experiment_context", {"workspace": "lstm"})
        assert context.structured_content["current_best"]["stage_run_id"] == done

        debug = await client.call_tool("get_debug_info", {"ref": done})
        assert debug.structured_content["stage_run_id"] == done

        lineage = await client.call_tool("get_lineage", {"run_id": done, "direction": "upstream"})
        assert lineage.structured_content["producers"] == []

        spec = await client.call_tool("save_results_spec", {"workspace": "lstm", "stage": "train",
                                                            "results_spec": {"primary_metric": "acc"}})
        assert spec.is_error and "goal_value" in spec.content[0].text
