"""Actions a person takes in the dashboard: each one calls the service the MCP tool calls.

The project is opened with ``source="tui"``, so every state transition and audit row these
services write says the person did it. Nothing here writes to the store itself. Each function
runs in a worker thread started by the modal that asked for it; a ``GoldfishError`` (with its fix)
is shown in that modal, which stays open so the person can correct the input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from goldfish.project import Project
    from goldfish.records.models import Comparison, FinalizeResult


def cancel_run(project: Project, run_id: str, reason: str) -> str:
    """``cancel(run_id, reason)``."""
    return project.runs.cancel(run_id, reason).message


def finalize_run(project: Project, ref: str, results: dict[str, Any]) -> FinalizeResult:
    """``finalize_run(record_or_run_id, results)``: the result model, comparison and warnings included."""
    return project.records.finalize_run(ref, results)


def tag_record(project: Project, ref: str, tag: str) -> str:
    """``tag_record(ref, tag)``."""
    return project.records.tag_record(ref, tag).message


def approve_pattern(project: Project, pattern_id: str, reason: str) -> str:
    """``manage_patterns(action="approve", pattern_id, reason)``."""
    pattern = project.patterns.approve(pattern_id, reason)
    return f"Approved {pattern.id}: later pre-run reviews check it."


def reject_pattern(project: Project, pattern_id: str, reason: str) -> str:
    """``manage_patterns(action="reject", pattern_id, reason)``."""
    pattern = project.patterns.reject(pattern_id, reason)
    return f"Rejected {pattern.id}: reviews ignore it."


def archive_pattern(project: Project, pattern_id: str, reason: str) -> str:
    """``manage_patterns(action="archive", pattern_id, reason)``."""
    pattern = project.patterns.archive(pattern_id, reason)
    return f"Archived {pattern.id}: reviews no longer check it."


def acknowledge_alert(project: Project, key: str, reason: str) -> str:
    """``dashboard(acknowledge=[key], acknowledge_reason=reason)``."""
    from goldfish.runs.alerts import acknowledge

    return acknowledge(project, [key], reason).message


def save_version(project: Project, slot: str, message: str) -> str:
    """``save_version(slot, message)``."""
    result = project.workspaces.save_version(slot, message)
    return result.message if not result.created else f"Saved {result.workspace} {result.version} from {slot}."


# ----------------------------------------------------------------------------- finalize report (pure)


def finalize_summary(result: FinalizeResult) -> str:
    """One line for the notification."""
    runs = result.runs
    what = ", ".join(f"{r.stage_run_id} ({r.stage})" for r in runs)
    value = f": {runs[0].value:g}" if len(runs) == 1 else ""
    again = " It replaced an earlier finalization." if result.refinalized else ""
    return f"Finalized {what} as {result.ml_outcome}{value}.{again}"


def comparison_lines(comparison: Comparison | None) -> list[str]:
    """vs_previous and vs_best of a finalization, as the person reads them (positive Δ = better)."""
    if comparison is None:
        return ["No comparison (several stage runs were finalized; inspect each record)."]
    out = []
    prev = comparison.vs_previous
    if prev is None:
        out.append("vs previous: none (first finalized run of this stage)")
    else:
        out.append(f"vs previous {prev.stage_run_id}: {prev.primary_metric} {prev.value:g}, "
                   f"Δ {_delta(prev.delta)}")
    best = comparison.vs_best
    if best is None:
        out.append("vs best: none (no baseline_run and no best/best-* tag yet)")
    else:
        label = f"@{best.tag}" if best.tag else best.record_id
        out.append(f"vs best {label} ({best.via}): {best.primary_metric} {best.value:g}, Δ {_delta(best.delta)}")
    if comparison.config_diff:
        changed = ", ".join(f"{k}: {v[0]!r} → {v[1]!r}" for k, v in list(comparison.config_diff.items())[:6])
        more = len(comparison.config_diff) - 6
        out.append(f"config vs previous: {changed}" + (f" (+{more} more)" if more > 0 else ""))
    return out


def _delta(value: float | None) -> str:
    if value is None:
        return "n/a (different metric)"
    word = "better" if value > 0 else ("worse" if value < 0 else "equal")
    return f"{value:+.4g} ({word})"


def finalize_report(result: FinalizeResult) -> list[str]:
    """What the finalize result screen shows: summary, comparison, warnings, what is left."""
    lines = [finalize_summary(result), ""]
    lines += comparison_lines(result.comparison)
    if result.outcome_hint:
        lines.append(f"The results_spec thresholds suggest: {result.outcome_hint}")
    if result.not_finalized:
        lines.append("Left alone: " + ", ".join(f"{n.stage_run_id} ({n.why})" for n in result.not_finalized))
    lines.append("")
    if result.warnings:
        lines.append(f"Warnings ({len(result.warnings)}):")
        lines += [f"  ▲ {w}" for w in result.warnings]
    else:
        lines.append("No warnings.")
    remaining = result.unfinalized_remaining
    lines.append("")
    lines.append(f"Still unfinalized here: {', '.join(remaining[:5])}{' …' if len(remaining) > 5 else ''}"
                 if remaining else "The finalization gate of this workspace is clear.")
    return lines
