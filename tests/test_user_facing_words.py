"""What users read speaks of Goldfish alone: no README line, doc page, tool description, prompt,
docstring or error message refers to documents or implementations Goldfish was built from."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from mcp import Client

from mcp_server.server import INSTRUCTIONS, build_server

REPO = Path(__file__).resolve().parent.parent
WORDS = re.compile(
    r"\bthe seed\b|\bseed's|\bthe spec\b|\bspec's|spec was silent|\bthe skill\b|\bskill's|"
    r"reference implementation|earlier implementation|DESIGN\s*§|DESIGN\.md|\bthe brief\b|\bbrief's|design doc",
    re.IGNORECASE,
)
PACKAGES = ("goldfish", "mcp_server", "tui", "stage_sdk")


def hits(label: str, text: str) -> list[str]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        for m in WORDS.finditer(line):
            out.append(f"{label}:{number}: {m.group(0)!r} in {line.strip()[:120]!r}")
    return out


def test_the_pattern_catches_what_it_should() -> None:
    assert hits("x", "Where this differs from the reference implementation")
    assert hits("x", "example values are the seed's; Decisions where the spec was silent")
    assert hits("x", "(DESIGN §4.7)") and hits("x", "grouped as in the skill the agent reads")
    assert not hits("x", "the results_spec's tolerance; a random seed; the Claude Code skill; goldfish skill install")


def test_readme_and_docs() -> None:
    files = [REPO / "README.md", REPO / "DEVELOPERS.md", *sorted((REPO / "docs").glob("*.md")),
             *sorted((REPO / "fixtures").rglob("*.md"))]
    found = [h for f in files for h in hits(str(f.relative_to(REPO)), f.read_text(encoding="utf-8"))]
    assert not found, "\n".join(found)


def test_docstrings_and_messages_in_the_code() -> None:
    """Every string literal (docstrings, descriptions, error messages and fixes) in the shipped packages."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found += hits(f"{path.relative_to(REPO)}:{node.lineno}", node.value)
    assert not found, "\n".join(found)


async def test_tools_resources_prompts_and_errors_over_the_client(tmp_path: Path) -> None:
    server, _ctx = build_server(start=tmp_path)
    async with Client(server) as client:
        assert client.instructions == INSTRUCTIONS
        tools = (await client.list_tools()).tools
        surface = json.dumps([t.model_dump(mode="json", by_alias=True) for t in tools], indent=1)
        resources = (await client.list_resources()).resources
        surface += json.dumps([r.model_dump(mode="json") for r in resources], indent=1)
        for resource in resources:
            surface += (await client.read_resource(str(resource.uri))).contents[0].text  # type: ignore[union-attr]
        for prompt in (await client.list_prompts()).prompts:
            surface += json.dumps(prompt.model_dump(mode="json"), indent=1)
            args = {a.name: "x" for a in prompt.arguments or [] if a.required}
            surface += (await client.get_prompt(prompt.name, args)).messages[0].content.text  # type: ignore[union-attr]
        # Errors: no project, bad arguments, an unknown tool.
        errors = []
        for name, args in [("mount", {"workspace": "w", "slot": "w1", "reason": "a reason long enough"}),
                           ("run", {"workspace": "w1", "results_spec": {"primary_metric": 3}}),
                           ("finalize_run", {"record_or_run_id": "prun-x", "results": {}}),
                           ("list_history", {"workspace": "../x", "limit": -1}),
                           ("initialize_project", {"project_name": "p", "project_root": "relative"}),
                           ("finalise_run", {})]:
            result = await client.call_tool(name, args)
            assert result.is_error, (name, args)
            errors.append(result.content[0].text)  # type: ignore[union-attr]
        surface += "\n".join(errors)
    found = hits("mcp", INSTRUCTIONS + "\n" + surface)
    assert not found, "\n".join(found)
