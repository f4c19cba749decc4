"""The agent guide's text (``docs/agent-guide.md``) and the Claude Code skill made from it."""

from __future__ import annotations

from pathlib import Path

from goldfish.errors import GoldfishError

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # goldfish/, where a wheel puts _agent_guide.md
SKILL_NAME = "goldfish"
SKILL_DESCRIPTION = (
    "Run and remember ML experiments with the Goldfish MCP server: workspaces and versions, "
    "pipeline.yaml and stage configs, run() with a results_spec, finalize_run, data sources with "
    "strict metadata, and triage of failed runs. Use whenever the goldfish tools are available or "
    "the project has a goldfish.yaml."
)


def _guide_path() -> Path:
    for candidate in (PACKAGE_DIR / "_agent_guide.md", PACKAGE_DIR.parent / "docs" / "agent-guide.md"):
        if candidate.is_file():
            return candidate
    raise GoldfishError(
        "The agent guide (docs/agent-guide.md) is missing from this installation.",
        fix="Reinstall Goldfish from a complete source checkout: pip install -e .",
    )


def guide_text() -> str:
    """The agent guide as markdown."""
    return _guide_path().read_text(encoding="utf-8")


def skill_markdown() -> str:
    """SKILL.md: YAML front matter (name, description) followed by the guide."""
    # A plain scalar cannot hold ': ' safely; a double-quoted one with escaped quotes always parses.
    description = SKILL_DESCRIPTION.replace("\\", "\\\\").replace('"', '\\"')
    return f'---\nname: {SKILL_NAME}\ndescription: "{description}"\n---\n\n{guide_text()}'
