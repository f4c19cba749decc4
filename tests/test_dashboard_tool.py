"""dashboard() through the MCP client on real runs: failures, findings shown once, active runs,
pending finalizations, mounted workspaces with their unsaved-edit flag."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from mcp import Client

from goldfish.init import init_project
from mcp_server.server import build_server

REASON = "dashboard test: exercise every section"
SPEC = {"primary_metric": "acc", "direction": "maximize", "min_value": 0.5, "goal_value": 0.9,
        "dataset_split": "val", "tolerance": 0.01, "context": "Dashboard test runs on a tiny stage."}
PIPELINE = """\
stages:
  - name: good
    outputs:
      out: {type: file, schema: null}
  - name: bad
    outputs:
      out: {type: file, schema: null}
  - name: slow
    outputs:
      out: {type: file, schema: null}
"""
GOOD = ("from goldfish.io import get_output_path\nfrom goldfish.metrics import log_metric, finish\n"
        "log_metric('acc', 0.7, step=0)\nget_output_path('out').write_text('ok')\nfinish()\n")
BAD = "raise RuntimeError('the data loader exploded')\n"
SLOW = "import time\ntime.sleep(60)\n"


async def _call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    res = await client.call_tool(tool, args)
    assert not res.is_error, (tool, res.content[0].text)
    assert isinstance(res.structured_content, dict)
    return res.structured_content


async def test_dashboard_sections(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    server, _ctx = build_server(str(root))
    async with Client(server) as client:
        empty = await _call(client, "dashboard")
        assert empty["mounted"] == [] and empty["active"] == [] and empty["source_count"] == 0

        await _call(client, "create_workspace", name="dash", goal="G" * 100, reason=REASON, template="none")
        await _call(client, "mount", workspace="dash", slot="w1", reason=REASON)
        slot = root / "workspaces" / "w1"
        (slot / "modules").mkdir()
        (slot / "pipeline.yaml").write_text(PIPELINE)
        for name, code in (("good", GOOD), ("bad", BAD), ("slow", SLOW)):
            (slot / "modules" / f"{name}.py").write_text(code)

        bad = await _call(client, "run", workspace="w1", stages=["bad"], reason=REASON, results_spec=SPEC,
                          wait=True, wait_seconds=60)
        bad_id = bad["stage_runs"][0]["stage_run_id"]
        assert bad["status"] == "failed"

        (slot / "notes.txt").write_text("unsaved edit")
        for _ in range(100):  # the slot watcher notices the edit asynchronously
            first = await _call(client, "dashboard")
            if first["mounted"][0]["dirty"]:
                break
            await asyncio.sleep(0.05)
        [failed] = first["alerts"]["failed_recent"]
        assert failed["run_id"] == bad_id and failed["cause"] == "exit_nonzero" and failed["stage"] == "bad"
        pending = first["pending_finalization"]["dash"]
        assert pending["count"] == 1 and pending["run_ids"] == [bad_id] and REASON[:20] in pending["example"]
        [mounted] = first["mounted"]
        assert mounted["slot"] == "w1" and mounted["workspace"] == "dash" and mounted["goal"] == "G" * 80
        assert mounted["dirty"] is True
        assert "1 failure(s) in the last 24 h" in first["message"] and failed["key"] == f"failed:{bad_id}"

        again = await _call(client, "dashboard")
        shown = {(f["run_id"], f["check"], f["message"]) for f in first["alerts"]["svs_findings"]}
        assert shown.isdisjoint((f["run_id"], f["check"], f["message"]) for f in again["alerts"]["svs_findings"])
        assert again["alerts"]["failed_recent"] == first["alerts"]["failed_recent"]

        # Acknowledging: a wrong key or a short reason changes nothing; the right call sets it aside.
        wrong = await client.call_tool("dashboard", {"acknowledge": ["failed:stage-00000000"],
                                                     "acknowledge_reason": "Looked at it, known data bug."})
        assert wrong.is_error and failed["key"] in wrong.content[0].text  # type: ignore[union-attr]
        short = await client.call_tool("dashboard", {"acknowledge": [failed["key"]], "acknowledge_reason": "ok"})
        assert short.is_error and "too short" in short.content[0].text  # type: ignore[union-attr]
        acked = await _call(client, "dashboard", acknowledge=[failed["key"]],
                            acknowledge_reason="Known loader bug; fixed in the next version of bad.py")
        assert acked["acknowledged_now"] == [failed["key"]] and acked["alerts"]["failed_recent"] == []
        assert acked["alerts"]["acknowledged"] == 1
        audit = [e for e in _ctx.project().store.tail_events("audit", 5) if e["op"] == "acknowledge_alert"]
        assert audit and audit[0]["reason"].startswith("Known loader bug") and audit[0]["source"] == "mcp"

        await _call(client, "finalize_run", record_or_run_id=bad_id, results={
            "primary_metric": "acc", "direction": "maximize", "value": None, "dataset_split": "val",
            "ml_outcome": "miss", "notes": "The data loader crashed; nothing to judge."})
        slow = await _call(client, "run", workspace="w1", stages=["slow"], reason=REASON, results_spec=SPEC)
        slow_id = slow["stage_runs"][0]["stage_run_id"]
        for _ in range(100):
            active = (await _call(client, "dashboard"))["active"]
            if active and active[0]["state"] == "running":
                break
            await asyncio.sleep(0.1)
        assert [a["run_id"] for a in active] == [slow_id] and active[0]["stage"] == "slow"
        assert active[0]["elapsed"].endswith("s") and REASON[:20] in (active[0]["reason"] or "")
        await _call(client, "cancel", run_id=slow_id, reason="dashboard test is done with it")
        done = await _call(client, "dashboard")
        assert done["active"] == [] and done["pending_finalization"] == {}
        assert len(json.dumps(done)) < 20_000


def test_regressions_are_the_experiment_contexts(tmp_path: Path) -> None:
    """dashboard() and get_experiment_context share one definition: worse than the best tag by more
    than that run's own spec tolerance (a plain negative delta at finalization is not enough)."""
    from goldfish.runs.dashboard import dashboard
    from tests.tui_snapshot_data import build

    project = build(tmp_path)
    assert dashboard(project, mark_notified=False).alerts.regressions == []
    project.records.tag_record("stage-0000a005", "best")
    project.records.finalize_run("stage-0000a002", {
        "primary_metric": "val_acc", "direction": "maximize", "value": 0.75, "dataset_split": "val",
        "ml_outcome": "partial", "notes": "Worse than the baseline: the wider LSTM overfits."})
    [expected] = project.records.get_experiment_context("sentiment").regression_alerts
    [shown] = dashboard(project, mark_notified=False).alerts.regressions
    assert (shown.run_id, shown.workspace, shown.against, shown.delta, shown.message) == (
        expected.stage_run_id, "sentiment", "vs_best", expected.delta, expected.message)
    assert shown.metric == "val_acc" and shown.delta < 0
