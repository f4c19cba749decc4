"""manage_patterns and get_run_svs_findings through the real MCP client over stdio (`goldfish serve`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from goldfish.svs.findings import Finding
from goldfish.timefmt import now_iso
from tests.svs_helpers import make_project

REPO = Path(__file__).resolve().parent.parent
RUN = "stage-0000beef"


def _params(cwd: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "goldfish", "serve"], cwd=str(cwd),
                                 env={**os.environ, "PYTHONPATH": str(REPO)})


def _seed(tmp_path: Path) -> Path:
    project = make_project(tmp_path)
    finding = Finding(source="monitor", check="loss_spike", severity="warning", stage="train", message="spike",
                      signal="train/loss")
    # The shape the runner stores (goldfish.runs.hooks.ReviewResult + "at"), not the tool's view of it.
    review = {"decision": "warned", "summary": "1 warning", "provider": "rules", "at": "2026-01-01T00:00:00Z",
              "findings": [
        {"source": "rules", "check": "unpinned_requirement", "severity": "warning", "message": "numpy unpinned"}]}
    with project.store.transaction() as tx:
        tx.table("patterns").add({
            "status": "pending", "severity": "high", "stage": "train", "signature": "ZeroDivisionError: x @ a=1/len(b)",
            "symptom": "empty batch", "root_cause": "no guard", "detection": {"kind": "regex", "pattern": r"1/len\(b\)"},
            "prevention": "guard", "source_run_id": RUN, "workspace": "w", "occurrence_count": 2,
            "created_at": "2026-01-01T00:00:00.000000Z", "last_seen_at": "2026-01-01T00:00:00.000000Z",
            "history": []}, doc_id="fp-0000cafe")
        tx.table("run_index").add({"workspace": "w", "kind": "stage"}, doc_id=RUN)
        tx.table("runs", "ws/w").add({
            "stage": "train", "state": "completed", "run_dir": str(project.runs_dir / RUN),
            "svs": {"preflight": {"errors": [], "warnings": [{"location": "stages[1].outputs.model.schema",
                                                               "message": "no contract", "fix": None}]},
                    "review": review, "skip_review": False, "during": [finding.model_dump()], "post": {"fail": False}},
        }, doc_id=RUN)
        # The runner's last transition of it (dashboard() reads recent runs from the transitions log).
        tx.append_event("transitions", {"ts": now_iso(), "run_id": RUN, "workspace": "w", "from": "post_run",
                                        "to": "completed", "cause": None, "source": "runner", "error": None})
    rt = project.runs_dir / RUN / "outputs" / ".goldfish"
    rt.mkdir(parents=True)
    (rt / "svs_findings.json").write_text(json.dumps({"version": 1, "findings": [
        {"source": "stats", "check": "constant_output", "severity": "warning", "signal": "emb",
         "message": "emb is constant", "value": 1, "threshold": None}]}))
    (rt / "svs_stats.json").write_text(json.dumps({"version": 1, "stats": {"emb": {"unique_count": 1}}}))
    return project.root


async def test_svs_tools_over_stdio(tmp_path: Path) -> None:
    root = _seed(tmp_path)
    async with Client(_params(root)) as client:
        listed = await client.call_tool("manage_patterns", {"action": "list", "status": "PENDING"})
        assert not listed.is_error, listed.content
        assert listed.structured_content["total"] == 1
        assert listed.structured_content["patterns"][0]["id"] == "fp-0000cafe"

        bad = await client.call_tool("manage_patterns", {"action": "reject", "pattern_id": "fp-0000cafe"})
        assert bad.is_error and "reason" in bad.content[0].text
        missing = await client.call_tool("manage_patterns", {"action": "approve"})
        assert missing.is_error and "pattern_id" in missing.content[0].text
        unknown = await client.call_tool("manage_patterns", {"action": "explode"})
        assert unknown.is_error

        review = await client.call_tool("manage_patterns", {"action": "review"})
        actions = review.structured_content["review"]["actions"]
        assert [(a["pattern_id"], a["action"], a["applied"]) for a in actions] == [("fp-0000cafe", "approve", False)]

        approved = await client.call_tool("manage_patterns", {"action": "approve", "pattern_id": "fp-0000cafe",
                                                              "reason": "recurring and concrete"})
        assert approved.structured_content["pattern"]["status"] == "approved"

        found = await client.call_tool("get_run_svs_findings", {"stage_run_id": RUN})
        assert not found.is_error, found.content
        sc = found.structured_content
        assert sc["workspace"] == "w" and sc["review"]["verdict"] == "warned" and sc["review"]["text"] == "1 warning"
        assert sc["preflight"]["warnings"][0]["message"] == "no contract"
        assert [f["check"] for f in sc["during_run"]] == ["loss_spike"]
        assert [f["check"] for f in sc["output_findings"]] == ["constant_output"]
        assert sc["stats"]["emb"]["unique_count"] == 1
        assert [p["id"] for p in sc["failure_patterns"]] == ["fp-0000cafe"]

        nope = await client.call_tool("get_run_svs_findings", {"stage_run_id": "stage-00000000"})
        assert nope.is_error and "not found" in nope.content[0].text
        malformed = await client.call_tool("get_run_svs_findings", {"stage_run_id": "../etc"})
        assert malformed.is_error


async def test_dashboard_over_stdio(tmp_path: Path) -> None:
    root = _seed(tmp_path)
    async with Client(_params(root)) as client:
        first = await client.call_tool("dashboard", {})
        assert not first.is_error, first.content
        alerts = first.structured_content["alerts"]["svs_findings"]
        assert {(a["phase"], a["check"]) for a in alerts} == {("review", "unpinned_requirement"),
                                                              ("during_run", "loss_spike")}
        assert first.structured_content["pending_patterns"] == 1
        second = await client.call_tool("dashboard", {})
        assert second.structured_content["alerts"]["svs_findings"] == []
