"""The finalization gate (DESIGN §4.7).

A new run() in a workspace is refused while that workspace has stage runs whose infra outcome is
completed, preempted or crashed and whose results are not finalized. Canceled, blocked (preflight,
review, input errors) and skipped runs never block: nothing ran that needs judging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from goldfish.errors import Blocked
from goldfish.runs.state import ws_partition

if TYPE_CHECKING:
    from goldfish.project import Project

BLOCKING_OUTCOMES = frozenset({"completed", "preempted", "crashed"})
SHOWN = 3


def blocks_gate(run: dict[str, Any]) -> bool:
    return run.get("infra_outcome") in BLOCKING_OUTCOMES and run.get("results_status") != "finalized"


def unfinalized_runs(project: Project, workspace: str) -> list[dict[str, Any]]:
    """Stage runs of ``workspace`` that block new runs, oldest first."""
    runs = project.store.table("runs", ws_partition(workspace))
    found = [dict(r) for r in runs.iter_raw() if blocks_gate(r)]
    found.sort(key=lambda r: (r.get("finished_at") or "", r["id"]))
    return found


def gate_message(workspace: str, runs: list[dict[str, Any]]) -> tuple[str, str]:
    """(message, fix) naming the blocking runs."""
    shown = ", ".join(f"{r['id']} ({r.get('stage')}, {r.get('infra_outcome')})" for r in runs[:SHOWN])
    more = f" and {len(runs) - SHOWN} more" if len(runs) > SHOWN else ""
    message = (
        f"Workspace {workspace} has {len(runs)} unfinalized run{'s' if len(runs) != 1 else ''}: "
        f"{shown}{more}. Judge each result before starting another run."
    )
    first = runs[0]["id"]
    fix = (
        f"Call finalize_run('{first}', results) for each (list_unfinalized_runs('{workspace}') lists them; "
        "inspect_record/inspect_run show their auto results)."
    )
    return message, fix


def check_gate(project: Project, workspace: str) -> None:
    """Raise Blocked naming the runs when the workspace has unfinalized runs."""
    runs = unfinalized_runs(project, workspace)
    if runs:
        message, fix = gate_message(workspace, runs)
        raise Blocked(message, fix=fix, details={"unfinalized": [r["id"] for r in runs]})
