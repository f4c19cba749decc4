"""Actions a person takes in the dashboard: each one calls the service the MCP tool calls.

The project is opened with ``source="tui"``, so every state transition and audit row these
services write says the person did it. Nothing here writes to the store itself. Each function
runs in a worker thread and returns a one-line summary for a notification; errors
(``GoldfishError`` with its fix) go to the app's central worker-error handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from goldfish.project import Project


def _service(project: Project, name: str) -> Any:
    """``project.records`` / ``project.patterns``: looked up by name because those services land on
    main from parallel branches; a checkout without one reports it through the error handler."""
    return getattr(project, name)


def cancel_run(project: Project, run_id: str, reason: str) -> str:
    """``cancel(run_id, reason)``."""
    return project.runs.cancel(run_id, reason).message


def finalize_run(project: Project, ref: str, results: dict[str, Any]) -> str:
    """``finalize_run(record_or_run_id, results)``."""
    result = _service(project, "records").finalize_run(ref, results)
    text = (f"Finalized {result.stage_run_id or ref} ({result.ml_outcome}): "
            f"{results.get('primary_metric')} = {results.get('value')}.")
    return text + (" It replaced an earlier finalization." if result.refinalized else "")


def tag_record(project: Project, ref: str, tag: str) -> str:
    """``tag_record(ref, tag)``."""
    return _service(project, "records").tag_record(ref, tag).message


def approve_pattern(project: Project, pattern_id: str, reason: str | None = None) -> str:
    """``manage_patterns(action="approve", pattern_id)``."""
    pattern = _service(project, "patterns").approve(pattern_id, reason)
    return f"Approved {pattern.id}: later reviews check it."


def reject_pattern(project: Project, pattern_id: str, reason: str) -> str:
    """``manage_patterns(action="reject", pattern_id, reason)``."""
    pattern = _service(project, "patterns").reject(pattern_id, reason)
    return f"Rejected {pattern.id}."


def save_version(project: Project, slot: str, message: str) -> str:
    """``save_version(slot, message)``."""
    result = project.workspaces.save_version(slot, message)
    return result.message if not result.created else f"Saved {result.workspace} {result.version} from {slot}."
