"""Bounded inputs and answers: 10 MB text arguments are refused at the tool boundary (nothing is
written), and every answer stays under the result budget even when 1 MB texts were stored before the
limits existed (written straight into the store here), the first entry of a page included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

import tests.scale_rows as scale_rows
from goldfish.init import init_project
from goldfish.project import Project
from goldfish.runs import metric_series
from goldfish.svs.patterns import FailurePattern
from mcp_server.budget import MAX_RESULT_BYTES
from mcp_server.server import build_server
from tests.mcp_helpers import example_arguments
from tests.records_fixture import SPEC
from tests.source_helpers import npy_meta, write_npy

TEN_MB = "x" * (10 * 1024 * 1024)
ONE_MB = "An entry stored before the limits existed. " * 24_400  # ~1 MB
# The MCP answer's JSON may differ from the model's by a little (escapes, structured vs text).
SLACK = 2_000
RUN_ID = "stage-00000001"


def _size(result: Any) -> int:
    return len(json.dumps(result.structured_content).encode())


def _tree(root: Path) -> dict[str, bytes]:
    store = root / ".goldfish" / "store"
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()
            and p.name != ".lock"}


async def test_ten_megabyte_text_arguments_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    project = Project.open(root, source="test")
    project.workspaces.create("exp", "find a good model", "a reason that is long enough")
    project.workspaces.mount("exp", "w1", "a reason that is long enough")
    server, _ctx = build_server(str(root))
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        before = _tree(root)
        cases: list[tuple[str, dict[str, Any]]] = []
        # Every free-text argument (a string of 1,000+ allowed characters) of every tool.
        for name, tool in tools.items():
            for param, schema in tool.input_schema.get("properties", {}).items():
                options = schema.get("anyOf", [schema])
                if any(o.get("type") == "string" and o.get("maxLength", 0) >= 1000 for o in options):
                    cases.append((name, {**example_arguments(tool.input_schema), param: TEN_MB}))
        assert {"log_thought", "create_workspace", "run", "register_source"} <= {c[0] for c in cases}
        # Free text inside object arguments.
        results = {"primary_metric": "acc", "direction": "maximize", "value": 0.5, "dataset_split": "val",
                   "ml_outcome": "partial", "notes": TEN_MB}
        cases += [
            ("finalize_run", {"record_or_run_id": "stage-00000000", "results": results}),
            ("save_results_spec", {"workspace": "exp", "stage": "train", "results_spec": {**SPEC, "context": TEN_MB}}),
            ("run", {"workspace": "w1", "reason": {"description": "a long enough description", "hypothesis": TEN_MB},
                     "results_spec": SPEC}),
            ("run", {"workspace": "w1", "reason": "a reason that is long enough", "results_spec": SPEC,
                     "config_override": {"train": {"note": TEN_MB}}}),
        ]
        for name, args in cases:
            result = await client.call_tool(name, args)
            assert result.is_error, (name, list(args))
            text = result.content[0].text
            assert "Goldfish bug" not in text, text
            assert "maximum" in text or "at most" in text, (name, text[:300])
            assert len(text) < 2_000  # the error does not echo the text
        assert _tree(root) == before


def _store_huge_entries(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Runs, records, versions and thoughts whose reason, context, notes and descriptions are ~1 MB each."""
    for name in ("DESCRIPTION", "HYPOTHESIS", "CONTEXT", "NOTES"):
        monkeypatch.setattr(scale_rows, name, ONE_MB)
    monkeypatch.setattr(scale_rows, "UNFINALIZED", 2)
    workspace, record_id = scale_rows.write_scale_rows(root, 5, versions=4, thoughts=3)
    project = Project.open(root, source="test")
    data = root / "features.npy"
    size = write_npy(data)
    meta = npy_meta(size)
    project.sources.register_source("feat", str(data), meta["description"], "a reason that is long enough", meta,
                                    format="npy", size_bytes=size)
    with project.store.transaction() as tx:
        tx.table("workspaces").patch(workspace, {"goal": ONE_MB, "reason": ONE_MB})
        tx.table("sources").patch("feat", {"description": ONE_MB})
        tx.table("versions", f"ws/{workspace}").patch("v2", {"description": ONE_MB})
        tx.table("patterns").add(FailurePattern(
            id="fp-00000001", status="pending", severity="medium", signature=ONE_MB, symptom=ONE_MB,
            root_cause=ONE_MB, prevention=ONE_MB, created_at="2026-01-01T00:00:00Z",
            last_seen_at="2026-01-01T00:00:00Z",
        ).model_dump(mode="json", exclude={"id"}), doc_id="fp-00000001")
        tx.append_event("audit", {"ts": "2026-01-02T00:00:00.000000Z", "op": "thought", "source": "mcp",
                                  "workspace": workspace, "slot": "w1", "reason": ONE_MB, "details": {"run_id": None}})
    # A run with a long metric series: get_metric_history with max_points=5000.
    run_dir = project.runs_dir / RUN_ID
    metrics = metric_series.metrics_file(run_dir)
    metrics.parent.mkdir(parents=True)
    with open(metrics, "w") as f:
        for step in range(20_000):
            f.write(json.dumps({"type": "metric", "name": "train/loss", "value": 1.0 / (step + 1) + 0.123456789,
                                "step": step, "timestamp": 1_767_225_600 + step}) + "\n")
    while metric_series.ingest(run_dir)[1]:
        pass
    # A stage log of long lines, all matching one word: search_goldfish_logs at its largest limit.
    (run_dir / "logs").mkdir()
    with open(run_dir / "logs" / "stdout.log", "w") as f:
        for i in range(400):
            f.write(f"line {i} checkpoint " + "x" * 20_000 + "\n")
    return workspace, record_id


async def test_every_answer_stays_under_budget_with_one_megabyte_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    workspace, record_id = _store_huge_entries(root, monkeypatch)
    server, _ctx = build_server(str(root))
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        calls: dict[str, dict[str, Any]] = {
            "status": {},
            "dashboard": {},
            "inspect_workspace": {"name": workspace},
            "manage_versions": {"workspace": workspace, "action": "list", "include_pruned": True},
            "get_audit_log": {"limit": 1},
            "get_workspace_thoughts": {"workspace": workspace, "limit": 1},
            "list_history": {"workspace": workspace, "limit": 1},
            "list_unfinalized_runs": {"workspace": workspace, "limit": 1},
            "get_experiment_context": {"workspace": workspace},
            "inspect_record": {"ref": record_id, "workspace": workspace,
                               "include": ["results", "comparison", "tags", "spec", "config", "lineage"]},
            "get_debug_info": {"ref": record_id, "workspace": workspace},
            "get_lineage": {"run_id": scale_rows.PRODUCER},
            "inspect_run": {"run_id": RUN_ID, "include": ["dashboard", "metadata", "thoughts", "manifest",
                                                         "provenance", "svs", "attempt"]},
            "manage_sources": {"action": "list"},
            "manage_patterns": {"action": "list"},
            "get_metric_history": {"run_id": RUN_ID, "max_points": 5000},
            "search_goldfish_logs": {"query": "checkpoint", "limit": 1000},
        }
        extra: list[tuple[str, dict[str, Any]]] = [
            ("manage_sources", {"action": "get", "name": "feat"}),
            ("manage_patterns", {"action": "get", "pattern_id": "fp-00000001"}),
            ("manage_versions", {"workspace": workspace, "action": "list", "limit": 1}),
        ]
        for name, tool in tools.items():
            if "limit" in tool.input_schema.get("properties", {}):
                assert name in calls, f"{name} pages with limit but has no case here; add one"
        sizes: dict[str, int] = {}
        for name, args in calls.items():
            result = await client.call_tool(name, args)
            assert not result.is_error, (name, result.content[0].text[:500])
            sizes[name] = _size(result)
        for name, args in extra:
            result = await client.call_tool(name, args)
            assert not result.is_error, (name, args, result.content[0].text[:500])
            sizes[f"{name}({args.get('action')})"] = _size(result)
        too_big = {k: v for k, v in sizes.items() if v > MAX_RESULT_BYTES + SLACK}
        assert not too_big, f"answers over the budget: {too_big} (all: {sizes})"

        # The first entry of a page is shown, truncated, with a note saying so.
        page = (await client.call_tool("get_workspace_thoughts", {"workspace": workspace, "limit": 5}))
        first = page.structured_content["thoughts"][0]
        assert "truncated by Goldfish" in json.dumps(first)
        audit = (await client.call_tool("get_audit_log", {"limit": 1})).structured_content
        assert len(audit["entries"]) == 1 and "truncated by Goldfish" in audit["entries"][0]["reason"]
        history = (await client.call_tool("list_history", {"workspace": workspace, "limit": 200}))
        assert history.structured_content["records"] and _size(history) <= MAX_RESULT_BYTES + SLACK
        metric = (await client.call_tool("get_metric_history", {"run_id": RUN_ID, "max_points": 5000}))
        series = metric.structured_content
        assert 2 < series["max_points_per_metric"] < 5000
        assert series["metrics"][0]["total_points"] == 20_000 and series["metrics"][0]["steps"][-1] == 19_999
