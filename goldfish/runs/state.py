"""The run state machine: states, legal transitions, compare-and-set.

Stage run: ``pending → preparing → launching → running → post_run → completed``, with exits to
``failed | terminated | canceled | skipped``. Pipeline run: ``pending → running → completed |
failed | canceled``, derived from its stage runs in the same transaction as the stage transition
that makes it terminal.

Every transition is a compare-and-set on the current state inside a store transaction and appends
a ``transitions`` event ``{ts, run_id, workspace, from, to, cause, source, error}`` plus a history
entry on the run document. A transition that is not in ``LEGAL`` is a programming error and raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from goldfish.errors import Conflict, NotFound
from goldfish.store import Transaction

StageState = Literal[
    "pending", "preparing", "launching", "running", "post_run",
    "completed", "failed", "terminated", "canceled", "skipped",
]
PipelineState = Literal["pending", "running", "completed", "failed", "canceled"]
InfraOutcome = Literal["completed", "preempted", "crashed", "canceled", "blocked", "skipped"]

STAGE_STATES: tuple[str, ...] = get_args(StageState)
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "terminated", "canceled", "skipped"})
ACTIVE: frozenset[str] = frozenset(STAGE_STATES) - TERMINAL
PIPELINE_TERMINAL: frozenset[str] = frozenset({"completed", "failed", "canceled"})

TRANSITIONS_LOG = "transitions"
CANCEL = "manual"

# from → {to → allowed causes}; None in a set means "no cause".
LEGAL: dict[str, dict[str, frozenset[str | None]]] = {
    "pending": {
        "preparing": frozenset({None}),
        "canceled": frozenset({CANCEL}),
        "skipped": frozenset({"upstream_failed", "run_blocked"}),
        # run() reviews every stage before the first launches: a blocked stage never leaves pending.
        "failed": frozenset({"preflight", "review_blocked"}),
    },
    "preparing": {
        "launching": frozenset({None}),
        "failed": frozenset({"preflight", "review_blocked", "prepare_error", "input_error", "environment",
                             "backend_unavailable"}),
        "canceled": frozenset({CANCEL}),
    },
    "launching": {
        "running": frozenset({None}),
        "failed": frozenset({"launch_error", "backend_unavailable"}),
        "canceled": frozenset({CANCEL}),
        "terminated": frozenset({"orphaned"}),
    },
    "running": {
        "post_run": frozenset({None}),
        # A preempted spot VM: the same stage run is launched again as its next attempt.
        "launching": frozenset({"preempted"}),
        "failed": frozenset({"exit_nonzero"}),
        "terminated": frozenset(
            {"timeout", "max_runtime_exceeded", "no_heartbeat", "ai_stopped", "orphaned", "preempted"}
        ),
        "canceled": frozenset({CANCEL}),
    },
    "post_run": {
        "completed": frozenset({None}),
        "failed": frozenset({"missing_output", "contract", "post_run_error"}),
        "canceled": frozenset({CANCEL}),
    },
}

# Nothing of the stage's code ran: no result to finalize.
_BLOCKED_CAUSES = frozenset({"preflight", "review_blocked", "input_error", "prepare_error", "environment",
                             "backend_unavailable"})


def now_iso() -> str:
    """UTC now as ``2026-01-01T00:00:00.000000Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str | None) -> float | None:
    """Unix seconds of an ISO timestamp written by ``now_iso`` (None when absent or unreadable)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def infra_outcome(state: str, cause: str | None) -> InfraOutcome | None:
    """How a terminal stage run ended, for the finalization gate (None while active)."""
    if state == "completed":
        return "completed"
    if state == "canceled":
        return "canceled"
    if state == "skipped":
        return "skipped"
    if state == "terminated":
        return "preempted" if cause == "preempted" else "crashed"
    if state == "failed":
        return "blocked" if cause in _BLOCKED_CAUSES else "crashed"
    return None


def check_legal(frm: str, to: str, cause: str | None) -> None:
    allowed = LEGAL.get(frm, {}).get(to)
    if allowed is None or cause not in allowed:
        raise Conflict(
            f"Illegal run transition {frm} -> {to} (cause {cause!r}).",
            fix="This is a Goldfish bug: please report it with the run id.",
        )


def pipeline_state_of(states: Iterable[str]) -> PipelineState:
    """A pipeline's state from its stage states (terminal only when every stage is)."""
    states = list(states)
    if all(s == "pending" for s in states):
        return "pending"
    if any(s not in TERMINAL for s in states):
        return "running"
    if all(s == "completed" for s in states):
        return "completed"
    if any(s in ("failed", "terminated") for s in states):
        return "failed"
    if any(s == "canceled" for s in states):
        return "canceled"
    return "failed"  # only skipped stages left: nothing produced what was asked


def ws_partition(workspace: str) -> str:
    return f"ws/{workspace}"


def workspace_of(tx: Transaction, run_id: str) -> str:
    entry = tx.table("run_index").get_doc(run_id)
    if entry is None:
        raise NotFound(f"Run {run_id!r} not found.", fix="Use a run id returned by run() or list_history().")
    return str(entry["workspace"])


def transition(
    tx: Transaction,
    run_id: str,
    to: str,
    *,
    expected: str | Iterable[str],
    source: str,
    cause: str | None = None,
    error: str | None = None,
    workspace: str | None = None,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Move stage run ``run_id`` to ``to`` if its state is ``expected``; None when it was not.

    Appends the transition event and history entry; on a terminal state sets ``finished_at`` and
    ``infra_outcome`` and settles the pipeline run. ``error`` is only ever added, never cleared.
    """
    ws = workspace or workspace_of(tx, run_id)
    runs = tx.table("runs", ws_partition(ws))
    current = runs.require(run_id, what="stage run")
    frm = current.get("state")
    wanted = {expected} if isinstance(expected, str) else set(expected)
    if frm not in wanted:
        return None
    check_legal(str(frm), to, cause)
    ts = now_iso()
    entry = {"ts": ts, "from": frm, "to": to, "cause": cause, "source": source}
    if error:
        entry["error"] = error[:2000]
    update: dict[str, Any] = {
        **(fields or {}),
        "state": to,
        "updated_at": ts,
        "history": [*current.get("history", []), entry],
    }
    if cause is not None and to in TERMINAL:  # a relaunch's cause lives in the history only
        update["cause"] = cause
    if error:
        update["error"] = error[:4000]
    if to == "running" and not current.get("started_at"):
        update["started_at"] = ts
    if to in TERMINAL:
        update["finished_at"] = ts
        update["infra_outcome"] = infra_outcome(to, cause)
    doc = runs.cas(run_id, "state", frm, update)
    assert doc is not None  # same transaction, state just read
    if (current.get("backend_handle") or {}).get("pool") and (to in TERMINAL or to == "launching"):
        from goldfish.runs.warm_pool import release

        release(tx, current, source=source, cause=f"run_{to}")  # the lease never outlives its run
    tx.append_event(
        TRANSITIONS_LOG,
        {"ts": ts, "run_id": run_id, "workspace": ws, "from": frm, "to": to, "cause": cause,
         "source": source, "error": error[:2000] if error else None},
    )
    prun = current.get("pipeline_run_id")
    if prun:
        settle_pipeline(tx, ws, prun, source=source)
    return doc


def settle_pipeline(tx: Transaction, workspace: str, prun_id: str, *, source: str) -> dict[str, Any] | None:
    """Bring the pipeline run's state in line with its stage runs (in the caller's transaction)."""
    pruns = tx.table("pipeline_runs", ws_partition(workspace))
    prun = pruns.get_doc(prun_id)
    if prun is None:
        return None
    runs = tx.table("runs", ws_partition(workspace))
    states = [
        (runs.get_doc(rid) or {}).get("state", "pending") for rid in (prun.get("stage_runs") or {}).values()
    ]
    new = pipeline_state_of(states)
    old = prun.get("state")
    if new == old or old in PIPELINE_TERMINAL:
        return prun
    ts = now_iso()
    update: dict[str, Any] = {"state": new, "updated_at": ts}
    if new in PIPELINE_TERMINAL:
        update["finished_at"] = ts
        tx.table("active_pipelines").delete(prun_id)
    doc = pruns.cas(prun_id, "state", old, update)
    tx.append_event(
        TRANSITIONS_LOG,
        {"ts": ts, "run_id": prun_id, "workspace": workspace, "from": old, "to": new, "cause": None,
         "source": source, "error": None},
    )
    return doc
