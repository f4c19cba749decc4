"""The MCP tool surface: seed names and parameters, conventions every tool follows, the tools/list
snapshot, the uninitialized path for every tool, the STATE.md resource."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from goldfish.init import init_project
from mcp_server.server import INSTRUCTIONS, build_server
from tests.mcp_helpers import PROJECTLESS, SEED, SEED_TOOLS, example_arguments, seed_key_parameters

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"
# Read at import: the autouse fixture strips GOLDFISH_* variables from the environment of each test.
UPDATE_SNAPSHOTS = os.environ.get("GOLDFISH_UPDATE_SNAPSHOTS") == "1"


async def _tools(tmp_path: Path) -> list[dict[str, Any]]:
    server, _ctx = build_server(start=tmp_path)
    async with Client(server) as client:
        listed = await client.list_tools()
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]


@pytest.fixture
async def tools(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in await _tools(tmp_path)}


def test_seed_tables_parse() -> None:
    params = seed_key_parameters()
    assert params["run"] == ["workspace", "stages", "results_spec", "reason"]
    assert params["list_history"][-1] == "finalized_only"
    assert params["status"] == []
    assert params["create_workspace"] == ["name", "goal", "reason", "from_workspace", "from_version"]


async def test_every_seed_tool_exists_with_seed_parameters(tools: dict[str, dict[str, Any]]) -> None:
    missing = [name for name in SEED_TOOLS if name not in tools]
    assert not missing, f"seed tools not registered: {missing}"
    seed = seed_key_parameters(SEED)
    wrong = {}
    for name in SEED_TOOLS:
        props = tools[name]["inputSchema"].get("properties", {})
        absent = [p for p in seed.get(name, []) if p not in props]
        if absent:
            wrong[name] = absent
    assert not wrong, f"parameters named by the seed but missing: {wrong}"


async def test_every_tool_follows_the_conventions(tools: dict[str, dict[str, Any]]) -> None:
    problems: list[str] = []
    for name, tool in tools.items():
        ann = tool.get("annotations") or {}
        if not ann.get("title"):
            problems.append(f"{name}: no annotations.title")
        for hint in ("readOnlyHint", "openWorldHint"):
            if hint not in ann:
                problems.append(f"{name}: annotations.{hint} not set")
        if ann.get("readOnlyHint") is False:
            for hint in ("destructiveHint", "idempotentHint"):
                if hint not in ann:
                    problems.append(f"{name}: writes but annotations.{hint} not set")
        out = tool.get("outputSchema")
        if not out or out.get("type") != "object" or not out.get("properties") or "result" in out["properties"]:
            problems.append(f"{name}: no pydantic result model (outputSchema {out})")
        if len(tool.get("description", "")) < 40:
            problems.append(f"{name}: description too short for the model to know when to use it")
        for pname, prop in tool["inputSchema"].get("properties", {}).items():
            if not prop.get("description"):
                problems.append(f"{name}.{pname}: no description")
            problems += [f"{name}.{pname}: {p}" for p in _unbounded(prop)]
    assert not problems, "\n".join(problems)


def _unbounded(schema: dict[str, Any]) -> list[str]:
    """Strings need maxLength, arrays maxItems (enums and refs to models are bounded by their shape)."""
    out: list[str] = []
    options = schema.get("anyOf") or [schema]
    for opt in options:
        kind = opt.get("type")
        if kind == "string" and "maxLength" not in opt and "enum" not in opt and "const" not in opt:
            out.append("string without maxLength")
        if kind == "array":
            if "maxItems" not in opt:
                out.append("array without maxItems")
            out += _unbounded(opt.get("items", {}))
    return out


async def test_list_tools_paginate(tools: dict[str, dict[str, Any]]) -> None:
    """A tool with a limit argument also takes offset and reports has_more (or a cursor)."""
    problems = []
    for name, tool in tools.items():
        props = tool["inputSchema"].get("properties", {})
        if "limit" in props:
            if "maximum" not in props["limit"]:
                problems.append(f"{name}: limit has no maximum")
            if "offset" not in props and "cursor" not in props:
                problems.append(f"{name}: limit without offset or cursor")
            out = json.dumps(tool.get("outputSchema", {}))
            if "has_more" not in out:
                problems.append(f"{name}: result has no has_more")
    assert not problems, "\n".join(problems)


async def test_tools_list_snapshot(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    current = sorted(await _tools(tmp_path), key=lambda t: t["name"])
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    update = UPDATE_SNAPSHOTS or bool(request.config.getoption("--snapshot-update", default=False))
    if update or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text)
        if not update:
            pytest.fail(f"{SNAPSHOT} did not exist; written now, commit it")
    stored = json.loads(SNAPSHOT.read_text())
    changed = sorted(
        {t["name"] for t in current} ^ {t["name"] for t in stored}
        | {a["name"] for a, b in zip(current, stored, strict=False) if a != b}
    )
    assert stored == current, (
        f"tools/list changed for {changed}; if intended, regenerate with GOLDFISH_UPDATE_SNAPSHOTS=1 "
        "(or --snapshot-update) and commit tests/snapshots/tools_list.json"
    )


async def test_every_tool_without_a_project_says_how_to_initialize(tmp_path: Path) -> None:
    server, _ctx = build_server(start=tmp_path)
    async with Client(server) as client:
        assert client.instructions == INSTRUCTIONS
        listed = await client.list_tools()
        checked = 0
        for tool in listed.tools:
            if tool.name == "initialize_project":
                continue  # it would create the project; covered by its own test
            args = example_arguments(tool.input_schema)
            result = await client.call_tool(tool.name, args)
            text = result.content[0].text if result.content else ""
            if tool.name in PROJECTLESS:
                assert not result.is_error, (tool.name, text)
                continue
            assert result.is_error, (tool.name, args, result.structured_content)
            assert "initialize_project(project_name, project_root)" in text, (tool.name, args, text)
            checked += 1
        assert checked == len(listed.tools) - len(PROJECTLESS)
        state = await client.read_resource("goldfish://state")
        assert "initialize_project" in state.contents[0].text
    assert list(tmp_path.iterdir()) == []


async def test_state_resource_reads_the_file_each_time(tmp_path: Path) -> None:
    init_project(tmp_path / "proj", "proj")
    server, ctx = build_server(str(tmp_path / "proj"))
    async with Client(server) as client:
        resources = await client.list_resources()
        assert sorted(str(r.uri) for r in resources.resources) == ["goldfish://guide", "goldfish://state"]
        first = (await client.read_resource("goldfish://state")).contents[0].text
        assert first.startswith("# proj")
        ctx.project().state_md_path.write_text("# proj\n\nedited by hand\n")
        second = (await client.read_resource("goldfish://state")).contents[0].text
        assert "edited by hand" in second


async def test_initialize_project_refuses_relative_roots_and_a_second_project(tmp_path: Path) -> None:
    server, _ctx = build_server(start=tmp_path)
    async with Client(server) as client:
        rel = await client.call_tool("initialize_project", {"project_name": "p", "project_root": "rel/p"})
        assert rel.is_error and "absolute path" in rel.content[0].text
        ok = await client.call_tool("initialize_project", {"project_name": "p", "project_root": str(tmp_path / "p")})
        assert not ok.is_error, ok.content
        again = await client.call_tool("initialize_project", {"project_name": "p", "project_root": str(tmp_path / "p")})
        assert not again.is_error and again.structured_content["created"] is False
        other = await client.call_tool("initialize_project", {"project_name": "q", "project_root": str(tmp_path / "q")})
        assert other.is_error and "already serves the project" in other.content[0].text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p", "p-dev"]


async def test_argument_errors_are_one_line_per_argument(tmp_path: Path) -> None:
    server, _ctx = build_server(start=tmp_path)
    async with Client(server) as client:
        bad = await client.call_tool("initialize_project", {"project_name": "z" * 1000, "project_root": 5})
        text = bad.content[0].text
        assert bad.is_error
        assert text.splitlines()[:3] == [
            "Invalid arguments for initialize_project:",
            "- project_name: String should have at most 64 characters (got a 1000-character string)",
            "- project_root: Input should be a valid string (got 5)",
        ]
        assert "Fix:" in text and "errors.pydantic.dev" not in text
        missing = await client.call_tool("initialize_project", {})
        assert "- project_name: required but missing" in missing.content[0].text
        unknown = await client.call_tool("statsu", {})
        assert unknown.is_error and 'Did you mean "status"?' in unknown.content[0].text
    assert list(tmp_path.iterdir()) == []


async def test_a_crash_is_reported_as_a_bug_not_a_bare_error(tmp_path: Path) -> None:
    server, _ctx = build_server(start=tmp_path)
    server.wait_registered()

    @server.tool(name="crash_for_test")
    def crash_for_test() -> dict[str, int]:
        """A tool added by this test that always divides by zero."""
        return {"x": 1 // 0}

    async with Client(server) as client:
        res = await client.call_tool("crash_for_test", {})
        text = res.content[0].text
        assert res.is_error and text.startswith("Internal error in crash_for_test (ZeroDivisionError")
        assert "Goldfish bug" in text and "Fix:" in text
        assert not (await client.call_tool("goldfish_version", {})).is_error
