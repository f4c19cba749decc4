"""create_workspace(template=...): a new workspace that validates and runs before the agent writes a
line. Real `goldfish serve` over stdio, real runner and stage processes, then `goldfish status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from goldfish.init import init_project
from goldfish.workspaces.templates import EXAMPLE_SPEC
from tests.mcp_helpers import REPO, stdio_params

pytestmark = pytest.mark.slow

REASON = {"description": "First run of the starter pipeline", "hypothesis": "The line fit reaches val_loss 0.003"}


class Agent:
    def __init__(self, client: Client):
        self.client = client

    async def __call__(self, tool: str, **args: Any) -> dict[str, Any]:
        res = await self.client.call_tool(tool, args)
        assert not res.is_error, f"{tool}({args}) failed: {res.content[0].text if res.content else res}"
        assert isinstance(res.structured_content, dict)
        return res.structured_content

    async def error(self, tool: str, **args: Any) -> str:
        res = await self.client.call_tool(tool, args)
        assert res.is_error, f"{tool}({args}) should have failed: {res.structured_content}"
        return str(res.content[0].text)


def _status_json(root: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "goldfish", "status", "--json", "--project", str(root)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def test_minimal_template_runs_and_finalizes_with_no_file_written(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    async with Client(stdio_params(root), read_timeout_seconds=120) as client:
        call = Agent(client)
        created = await call("create_workspace", name="first", goal="See Goldfish run something",
                             reason="Trying the starter pipeline")
        assert created["template"] == "minimal"
        assert created["files"] == ["configs/train.yaml", "modules/train.py", "pipeline.yaml"]
        assert "results_spec" in created["next_step"]
        await call("mount", workspace="first", slot="w1", reason="Look at the starter files")
        slot = root / "workspaces" / "w1"
        assert (slot / "modules" / "train.py").is_file() and (slot / "configs" / "train.yaml").is_file()

        check = await call("validate_config", workspace="w1")
        assert check["valid"], check["errors"]
        done = await call("run", workspace="w1", reason=REASON, results_spec=EXAMPLE_SPEC, wait=True,
                          wait_seconds=120)
        assert done["status"] == "completed", done
        [stage] = done["stage_runs"]
        run_id = stage["stage_run_id"]

        queued = _status_json(root)
        assert queued["finalization_queue"] == [{"workspace": "first", "count": 1, "run_ids": [run_id]}]
        assert queued["slots"][0]["workspace"] == "first" and queued["best"] == []

        metrics = (await call("inspect_run", run_id=run_id, include=["dashboard"]))["dashboard"]["metrics"]
        value = metrics["val_loss"]["last"]
        assert value < EXAMPLE_SPEC["min_value"]
        final = await call("finalize_run", record_or_run_id=run_id, results={
            "primary_metric": "val_loss", "direction": "minimize", "value": value, "dataset_split": "val",
            "ml_outcome": "success", "notes": "The starter line fit, unchanged."})
        assert final["unfinalized_remaining"] == []

    after = _status_json(root)
    assert after["finalization_queue"] == []
    [best] = after["best"]
    assert (best["workspace"], best["metric"], best["stage_run_id"], best["source"]) == (
        "first", "val_loss", run_id, "finalized")
    assert best["value"] == value


async def test_two_stage_and_none_templates_and_refusals(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    async with Client(stdio_params(root), read_timeout_seconds=120) as client:
        call = Agent(client)
        two = await call("create_workspace", name="pair", goal="Two stages", reason="Trying from_stage inputs",
                         template="two-stage")
        assert "modules/prepare.py" in two["files"]
        await call("mount", workspace="pair", slot="w1", reason="Look at the starter files")
        check = await call("validate_config", workspace="w1")
        assert check["valid"], check["errors"]
        ran = await call("run", workspace="w1", reason=REASON, results_spec=EXAMPLE_SPEC, wait=True,
                         wait_seconds=120)
        assert ran["status"] == "completed", ran
        assert {s["stage"]: s["role"] for s in ran["stage_runs"]} == {"prepare": "supporting", "train": "result"}

        empty = await call("create_workspace", name="blank", goal="Start empty", reason="Writing my own pipeline",
                           template="none")
        assert empty["template"] is None and empty["files"] == []
        await call("mount", workspace="blank", slot="w2", reason="Write my own pipeline")
        assert [p.name for p in (root / "workspaces" / "w2").iterdir() if p.name != "STATE.md"
                and not p.name.startswith(".")] == []

        forked = await call.error("create_workspace", name="fork", goal="Fork", reason="Fork it with a template",
                                  from_workspace="pair", template="minimal")
        assert "template='none'" in forked
        plain_fork = await call("create_workspace", name="fork", goal="Fork", reason="Fork of the pair",
                                from_workspace="pair")
        assert plain_fork["template"] is None and plain_fork["forked_from"].startswith("pair@")
        assert "template" in await call.error("create_workspace", name="bad", goal="x", reason="Unknown template",
                                              template="three-stage")
