"""The agent guide: its text, its Claude Code skill file, and the project's ``.mcp.json``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.guide.install import (
        AgentFilesResult,
        goldfish_command,
        install_agent_files,
        install_skill,
        write_mcp_json,
    )
    from goldfish.guide.text import SKILL_DESCRIPTION, SKILL_NAME, guide_text, skill_markdown

__all__ = [
    "SKILL_DESCRIPTION",
    "SKILL_NAME",
    "AgentFilesResult",
    "goldfish_command",
    "guide_text",
    "install_agent_files",
    "install_skill",
    "skill_markdown",
    "write_mcp_json",
]

__getattr__ = lazy_face(__name__, {
    "SKILL_DESCRIPTION": "text",
    "SKILL_NAME": "text",
    "guide_text": "text",
    "skill_markdown": "text",
    "AgentFilesResult": "install",
    "goldfish_command": "install",
    "install_agent_files": "install",
    "install_skill": "install",
    "write_mcp_json": "install",
})
