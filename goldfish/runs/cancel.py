"""Cancel: ask a run's stages to stop, settling a run found dead as orphaned first (never as canceled)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from goldfish import names
from goldfish.runs.reconciler import reconcile, refresh, runner_alive
from goldfish.runs.state import ACTIVE, TERMINAL, now_iso, transition, ws_partition

if TYPE_CHECKING:
    from goldfish.runs.service import Runs


class CancelResult(BaseModel):
    success: bool = Field(description="True when the run is (or is now being) canceled")
    run_id: str
    previous_state: str
    state: str = Field(description="State after the request (terminal once the stage stopped)")
    message: str
    canceled: list[str] = Field(default_factory=list, description="Stage runs the request applies to")


def cancel_run(service: Runs, run_id: str, reason: str, *, wait_seconds: float | None = None) -> CancelResult:
    """Cancel a stage run (or every stage run of a pipeline run) from any non-terminal state."""
    from goldfish.runs.service import audit

    text = names.reason(reason, service.project.config.audit.min_reason_length)
    ws, kind = service._locate(run_id)
    part = ws_partition(ws)
    if kind == "pipeline":
        prun = service.project.store.table("pipeline_runs", part).require(run_id, what="pipeline run")
        targets = list(prun["stage_runs"].values())
        previous = prun["state"]
    else:
        targets = [run_id]
        previous = service.get(run_id)["state"]
    # A run whose runner and stage are both gone is settled orphaned first: a cancel must not
    # record a crash as canceled/manual (which would also free the finalization gate).
    prun_of = run_id if kind == "pipeline" else service.get(run_id)["pipeline_run_id"]
    was = {rid: service.get(rid)["state"] for rid in targets}
    dead: list[str] = []
    if any(state in ACTIVE for state in was.values()) and refresh(service.project, [prun_of]):
        dead = [rid for rid in targets if was[rid] in ACTIVE
                and (service.get(rid)["state"], service.get(rid).get("cause")) == ("terminated", "orphaned")]
    found = (f"{', '.join(dead)} had already died (runner and stage process gone, no exit code): recorded"
             " terminated/orphaned, not canceled. " if dead else "")
    applied: list[str] = []
    with service.project.store.transaction() as tx:
        runs = tx.table("runs", part)
        for rid in targets:
            doc = runs.require(rid, what="stage run")
            if doc["state"] in TERMINAL:
                continue
            applied.append(rid)
            runs.patch(rid, {"cancel_requested": True, "cancel_reason": text,
                             "cancel_requested_at": now_iso(), "cancel_source": service.project.source})
            if doc["state"] == "pending":
                # Nothing of it exists yet outside the store: cancel right here.
                transition(tx, rid, "canceled", expected="pending", cause="manual", error=f"Canceled: {text}",
                           source=service.project.source, workspace=ws)
        if applied:
            audit(tx, service.project, "cancel", workspace=ws, slot=None, reason=text,
                  details={"run_id": run_id, "stage_runs": applied})
    if not applied:
        now_state = service.get(run_id)["state"]
        return CancelResult(success=False, run_id=run_id, previous_state=previous, state=now_state,
                            message=found + f"{run_id} is already {now_state}; nothing to cancel.")
    prun_id = run_id if kind == "pipeline" else service.get(run_id)["pipeline_run_id"]
    if not runner_alive(service.project, prun_id):
        reconcile(service.project)
    grace = float(service.project.config.local.stop_grace_seconds)
    limit = grace + 10.0 if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        states = [service.get(rid)["state"] for rid in applied]
        if all(s in TERMINAL for s in states):
            break
        time.sleep(0.1)
    current = service.get(run_id)["state"]
    still = [rid for rid in applied if service.get(rid)["state"] in ACTIVE]
    message = found + (f"Canceled {', '.join(applied)}." if not still else
               f"Cancel requested for {', '.join(applied)}; {', '.join(still)} still stopping (the runner"
               " stops the stage within local.stop_grace_seconds). Check with inspect_run.")
    return CancelResult(success=True, run_id=run_id, previous_state=previous, state=current, message=message,
                        canceled=applied)
