"""Write the agent guide into a project as a Claude Code skill, and the project's ``.mcp.json``.

``claude`` started in a project directory reads ``.mcp.json`` there and loads the skills under
``.claude/skills/``: with both written, the agent finds the server and the guide with no setup.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from goldfish.errors import GoldfishError, InvalidInput
from goldfish.fsutil import atomic_write
from goldfish.guide.text import SKILL_NAME, skill_markdown

SKILL_FILE = Path(".claude") / "skills" / SKILL_NAME / "SKILL.md"
MCP_JSON = ".mcp.json"
SERVER_NAME = "goldfish"


class AgentFilesResult(BaseModel):
    skill_file: str | None = Field(default=None, description="Path of SKILL.md (None when it was not written)")
    skill_written: bool = Field(default=False, description="False when SKILL.md already held this text")
    mcp_json: str | None = Field(default=None, description="Path of .mcp.json (None when it was not written)")
    mcp_json_written: bool = Field(default=False, description="False when .mcp.json already named this server")
    command: list[str] = Field(default_factory=list, description="The command .mcp.json starts the server with")
    notes: list[str] = Field(default_factory=list, description="What could not be written, with the fix")


def goldfish_command() -> list[str]:
    """How to start the ``goldfish`` that is running now: its script by absolute path, else the one
    on PATH, else this interpreter with ``-m goldfish``."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 and Path(argv0).name == "goldfish":
        path = Path(os.path.abspath(argv0))
        if path.is_file() and os.access(path, os.X_OK):
            return [str(path)]
    found = shutil.which("goldfish")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "goldfish"]


def install_skill(root: Path) -> tuple[Path, bool]:
    """Write ``<root>/.claude/skills/goldfish/SKILL.md``; (path, False when it was already current)."""
    path = Path(root) / SKILL_FILE
    text = skill_markdown()
    try:
        if path.read_text(encoding="utf-8") == text:
            return path, False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)
    return path, True


def _server_entry(root: Path, command: list[str]) -> dict[str, Any]:
    return {"type": "stdio", "command": command[0], "args": [*command[1:], "serve", "--project", str(root)]}


def write_mcp_json(root: Path, command: list[str] | None = None) -> tuple[Path, bool]:
    """Add (or update) the ``goldfish`` server in ``<root>/.mcp.json``, keeping every other server.

    Refuses a file that is not a JSON object with a mapping ``mcpServers`` (nothing is written)."""
    root = Path(root).resolve()
    command = command or goldfish_command()
    path = root / MCP_JSON
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(
                f"{path} is not valid JSON ({exc}); Goldfish left it unchanged.",
                fix="Fix or remove it, then run `goldfish skill install --mcp-json` again.",
            ) from None
        if not isinstance(loaded, dict) or not isinstance(loaded.get("mcpServers", {}), dict):
            raise InvalidInput(
                f"{path} is not an MCP server list (an object with an \"mcpServers\" mapping); Goldfish left it unchanged.",
                fix="Fix or remove it, then run `goldfish skill install --mcp-json` again.",
            )
        data = loaded
    servers = dict(data.get("mcpServers") or {})
    entry = _server_entry(root, command)
    if servers.get(SERVER_NAME) == entry:
        return path, False
    servers[SERVER_NAME] = entry
    data["mcpServers"] = servers
    atomic_write(path, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    return path, True


def install_agent_files(root: Path, *, skill: bool = True, mcp_json: bool = True,
                        command: list[str] | None = None) -> AgentFilesResult:
    """SKILL.md and/or .mcp.json for the project at ``root``; a file that cannot be written becomes a
    note (the project itself is fine without them)."""
    result = AgentFilesResult(command=command or goldfish_command())
    if skill:
        try:
            path, result.skill_written = install_skill(root)
            result.skill_file = str(path)
        except GoldfishError as exc:
            result.notes.append(str(exc))
        except OSError as exc:
            result.notes.append(f"SKILL.md was not written: {exc}. Fix: run `goldfish skill install` once it can be.")
    if mcp_json:
        try:
            path, result.mcp_json_written = write_mcp_json(root, result.command)
            result.mcp_json = str(path)
        except GoldfishError as exc:
            result.notes.append(str(exc))
        except OSError as exc:
            result.notes.append(f".mcp.json was not written: {exc}. Fix: run `goldfish skill install --mcp-json` once it can be.")
    return result
