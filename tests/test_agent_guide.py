"""The agent guide ships: `goldfish init` writes .mcp.json and the Claude Code skill, the server that
.mcp.json names answers over stdio, and the guide, its resource and its prompts name only real tools."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mcp import Client, StdioServerParameters

from goldfish.guide import SKILL_NAME, guide_text, skill_markdown, write_mcp_json
from goldfish.init import init_project
from mcp_server.server import build_server

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "agent-guide.md"
GOLDFISH = Path(sys.executable).parent / "goldfish"
PROMPTS = {"start_experiment", "triage_failed_run", "compare_and_finalize"}
# Tools other work in progress adds; the guide names them already. Once registered, their
# parameters are checked like every other tool's.
PENDING: set[str] = set()


def guide_tables(text: str) -> dict[str, list[str]]:
    """Tool name -> parameter names, from every "| `tool()` | purpose | key parameters |" row."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`(\w+)\(\)`\s*\|[^|]*\|\s*([^|]*)\|\s*$", line)
        if m:
            raw = m.group(2).strip()
            out[m.group(1)] = [] if raw in ("", "None") else [p.strip() for p in raw.split(",")]
    return out


def front_matter(text: str) -> tuple[dict[str, object], str]:
    assert text.startswith("---\n"), text[:80]
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body.removeprefix("\n")


@pytest.mark.skipif(not GOLDFISH.is_file(), reason="the goldfish script is installed in the venv")
async def test_init_writes_mcp_json_whose_server_answers_over_stdio(tmp_path: Path) -> None:
    project = tmp_path / "P"
    done = subprocess.run([str(GOLDFISH), "init", str(project)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert ".mcp.json" in done.stdout and "claude" in done.stdout

    config = json.loads((project / ".mcp.json").read_text())
    server = config["mcpServers"]["goldfish"]
    assert Path(server["command"]).is_absolute() and Path(server["command"]) == GOLDFISH
    assert server["args"] == ["serve", "--project", str(project.resolve())]

    skill = (project / ".claude" / "skills" / "goldfish" / "SKILL.md").read_text()
    meta, body = front_matter(skill)
    assert meta["name"] == SKILL_NAME == "goldfish"
    assert isinstance(meta["description"], str) and "Goldfish" in meta["description"]
    assert body == GUIDE.read_text()

    # What `claude` does in that directory: start the named command over stdio, from the project dir.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    params = StdioServerParameters(command=server["command"], args=server["args"], cwd=str(project), env=env)
    async with Client(params, read_timeout_seconds=120) as client:
        status = await client.call_tool("status", {})
        assert not status.is_error, status.content
        assert status.structured_content and status.structured_content["initialized"] is True
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"goldfish://state", "goldfish://guide"} <= resources
        served = (await client.read_resource("goldfish://guide")).contents[0]
        assert served.text == GUIDE.read_text()  # type: ignore[union-attr]
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == PROMPTS
        assert [a.name for a in prompts["start_experiment"].arguments or []] == ["goal", "workspace"]
        got = await client.get_prompt("start_experiment", {"goal": "Beat 0.95 on digits"})
        text = got.messages[0].content.text  # type: ignore[union-attr]
        assert "Beat 0.95 on digits" in text and "goldfish://guide" in text
        got = await client.get_prompt("triage_failed_run", {"run_id": "stage-abc"})
        assert "stage-abc" in got.messages[0].content.text  # type: ignore[union-attr]


async def test_every_tool_the_guide_and_prompts_name_exists_with_its_parameters(tmp_path: Path) -> None:
    server, _ctx = build_server(start=tmp_path)
    async with Client(server) as client:
        tools = {t.name: set(t.input_schema.get("properties", {})) for t in (await client.list_tools()).tools}
        prompts = [(await client.get_prompt(name, {"goal": "g"} if name == "start_experiment" else {}))
                   for name in sorted(PROMPTS)]
    tables = guide_tables(GUIDE.read_text())
    assert len(tables) >= 40, sorted(tables)
    missing = sorted(t for t in tables if t not in tools and t not in PENDING)
    assert not missing, f"the guide names tools that do not exist: {missing}"
    wrong = {t: [p for p in params if p not in tools[t]] for t, params in tables.items() if t in tools}
    assert not {t: p for t, p in wrong.items() if p}, f"parameters the guide names but the tools lack: {wrong}"
    unlisted = sorted(set(tools) - set(tables))
    assert not unlisted, f"tools the guide does not list: {unlisted}"
    # Every `name(` the guide's examples and the prompts call is a tool or a stage SDK function.
    sdk = {"load_input", "save_output", "heartbeat", "should_stop", "runtime_log", "log_metric", "get_config",
           "save_checkpoint", "load_checkpoint", "main", "range", "Path"}
    texts = [GUIDE.read_text(), *(p.messages[0].content.text for p in prompts)]  # type: ignore[union-attr]
    called = {m for text in texts for m in re.findall(r"\b([a-z_]+)\(", text)}
    unknown = sorted(called - set(tools) - PENDING - sdk)
    assert not unknown, f"calls that are neither tools nor SDK functions: {unknown}"


def test_skill_file_front_matter_parses_and_carries_the_guide() -> None:
    meta, body = front_matter(skill_markdown())
    assert meta == {"name": "goldfish", "description": meta["description"]}
    assert body == guide_text() == GUIDE.read_text()


def test_mcp_json_keeps_other_servers_and_refuses_a_broken_file(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "P", "P").project_root)
    other = {"mcpServers": {"other": {"command": "/bin/other", "args": []}}, "extra": 1}
    (root / ".mcp.json").write_text(json.dumps(other))
    path, written = write_mcp_json(root, ["/opt/gf/bin/goldfish"])
    data = json.loads(path.read_text())
    assert written and data["extra"] == 1 and data["mcpServers"]["other"] == other["mcpServers"]["other"]
    assert data["mcpServers"]["goldfish"]["command"] == "/opt/gf/bin/goldfish"
    assert write_mcp_json(root, ["/opt/gf/bin/goldfish"])[1] is False  # unchanged: not rewritten

    (root / ".mcp.json").write_text("{not json")
    with pytest.raises(Exception, match="not valid JSON") as err:
        write_mcp_json(root, ["/opt/gf/bin/goldfish"])
    assert "skill install --mcp-json" in str(err.value)
    assert (root / ".mcp.json").read_text() == "{not json"


def test_skill_install_writes_the_skill_from_anywhere_with_project(tmp_path: Path) -> None:
    root = Path(init_project(tmp_path / "P", "P").project_root)
    skill = root / ".claude" / "skills" / "goldfish" / "SKILL.md"
    assert not skill.exists()  # init_project (the MCP tool's path) writes no agent files
    run = [sys.executable, "-m", "goldfish", "skill", "install", "--project", str(root)]
    done = subprocess.run(run, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert skill.read_text() == skill_markdown()
    assert not (root / ".mcp.json").exists()  # only with --mcp-json
    again = subprocess.run([*run, "--mcp-json"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert again.returncode == 0 and "already current" in again.stdout, again.stdout + again.stderr
    assert json.loads((root / ".mcp.json").read_text())["mcpServers"]["goldfish"]["args"][-1] == str(root)
