"""``goldfish demo``: a whole experiment on the embedded default, for a newcomer's first look."""

from __future__ import annotations

from pathlib import Path

from goldfish.init import init_project
from goldfish.project import Project
from goldfish.status import render_status_text


def run_demo(directory: Path) -> int:
    result = init_project(directory)
    print(result.message)
    project = Project.open(result.project_root)
    print(render_status_text(project))
    print(f"\nProject: {result.project_root}")
    print(f"Connect Claude Code: cd {result.project_root} && claude mcp add goldfish -- goldfish serve")
    return 0
