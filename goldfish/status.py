"""A human-readable project summary for ``goldfish status``."""

from __future__ import annotations

from goldfish.project import Project


def render_status_text(project: Project) -> str:
    cfg = project.config
    mounts = {d["id"]: d for d in project.store.table("mounts").docs()}
    lines = [
        f"Goldfish project {cfg.project_name}",
        f"  project:  {project.root}",
        f"  dev repo: {project.dev_path}",
        f"  backend:  {cfg.jobs.backend}",
        "  slots:",
    ]
    for slot in cfg.slots:
        m = mounts.get(slot)
        lines.append(f"    {slot}: {m['workspace']}" if m else f"    {slot}: (empty)")
    return "\n".join(lines)
