"""A human-readable project summary for ``goldfish status``."""

from __future__ import annotations

from goldfish.project import Project


def render_status_text(project: Project) -> str:
    cfg = project.config
    lines = [
        f"Goldfish project {cfg.project_name}",
        f"  project:  {project.root}",
        f"  dev repo: {project.dev_path}",
        f"  backend:  {cfg.jobs.backend}",
        "  slots:",
    ]
    for info in project.workspaces.slot_status():
        if info.workspace is None:
            lines.append(f"    {info.slot}: (empty)")
            continue
        state = f"dirty ({info.changed_count} files)" if info.dirty else ("clean" if info.dirty is False else "unknown")
        lines.append(f"    {info.slot}: {info.workspace} {info.current_version or '(no versions)'} {state}")
    return "\n".join(lines)
