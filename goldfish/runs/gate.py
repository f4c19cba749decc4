"""The finalization gate, counting each pipeline run once.

A new run() in a workspace is refused while one of its pipeline runs has an unjudged result: its
result stage run (``goldfish.records.roles``) ended completed, preempted or crashed — or was
skipped because an upstream stage of the same run crashed or was preempted — and is not
finalized. Supporting stages never hold the gate; neither do canceled or blocked runs (preflight,
review, input errors): nothing ran that needs judging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from goldfish.errors import Blocked
from goldfish.records.roles import RESULT, role_of

if TYPE_CHECKING:
    from goldfish.project import Project

BLOCKING_OUTCOMES = frozenset({"completed", "preempted", "crashed"})
SHOWN = 3


def result_outcome(run: dict[str, Any]) -> str | None:
    """How a result stage run's pipeline run ended for judging: its infra outcome, or the outcome of
    the upstream stage that made it skip (``upstream_outcome``, set when the runner skips it)."""
    outcome = run.get("infra_outcome")
    if outcome == "skipped" and run.get("upstream_outcome"):
        return str(run["upstream_outcome"])
    return outcome


def blocks_gate(run: dict[str, Any]) -> bool:
    """The result stage run of a pipeline run that ran to an end worth judging, not yet finalized."""
    return (role_of(run) == RESULT and result_outcome(run) in BLOCKING_OUTCOMES
            and run.get("results_status") != "finalized")


def unfinalized_runs(project: Project, workspace: str) -> list[dict[str, Any]]:
    """Stage runs of ``workspace`` that block new runs, oldest first."""
    from goldfish.records.view import workspace_view  # the history index keeps them: no scan of the runs

    return workspace_view(project, workspace).blocking_oldest_first


def gate_message(workspace: str, runs: list[dict[str, Any]]) -> tuple[str, str]:
    """(message, fix) naming the blocking runs."""
    shown = ", ".join(f"{r['id']} ({r.get('stage')}, {result_outcome(r)})" for r in runs[:SHOWN])
    more = f" and {len(runs) - SHOWN} more" if len(runs) > SHOWN else ""
    message = (
        f"Workspace {workspace} has {len(runs)} unfinalized result{'s' if len(runs) != 1 else ''}: "
        f"{shown}{more}. Judge each result before starting another run."
    )
    first = runs[0]["id"]
    fix = (
        f"Call finalize_run('{first}', results) for each (list_unfinalized_runs('{workspace}') lists them; "
        "inspect_record/inspect_run show their auto results). Finalizing a result also settles the supporting "
        "stages of its pipeline run; a run that produced no value takes value null with ml_outcome miss or unknown."
    )
    return message, fix


def check_gate(project: Project, workspace: str) -> None:
    """Raise Blocked naming the runs when the workspace has unfinalized runs."""
    runs = unfinalized_runs(project, workspace)
    if runs:
        message, fix = gate_message(workspace, runs)
        raise Blocked(message, fix=fix, details={"unfinalized": [r["id"] for r in runs]})
