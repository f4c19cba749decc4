"""``warm_pool_status()`` and ``warm_pool_cleanup()``: what the pool holds, and the emergency drain."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from goldfish.runs import warm_pool
from goldfish.runs.state import TERMINAL

if TYPE_CHECKING:
    from goldfish.project import Project

CLEANUP_REASON = "warm_pool_cleanup: emergency drain of the warm pool (its worker is deleted)"


class WarmWorker(BaseModel):
    instance_name: str
    zone: str | None = Field(description="Zone of the VM (None while launching)")
    machine_type: str | None
    gpu_count: int
    accelerator: str | None = None
    profile: str | None = Field(description="Compute profile the worker serves")
    state: str = Field(description="launching, busy, draining, idle_ready, deleting or gone")
    state_entered_at: str | None
    active_lease_run: str | None = Field(description="Stage run holding the worker (busy/launching)")
    idle_deadline: str | None = Field(default=None, description="When an idle worker is deleted")
    watchdog_at: str | None = Field(default=None, description="When the worker is deleted whatever it does")


class WarmPoolStatus(BaseModel):
    enabled: bool
    message: str | None = Field(default=None, description="Why the pool is off and how to turn it on")
    max_instances: int | None = None
    idle_timeout_minutes: int | None = None
    watchdog_seconds: int | None = None
    profiles: list[str] = Field(default_factory=list, description="Profiles that use the pool ([] = all)")
    total: int = Field(default=0, description="Workers not gone")
    by_state: dict[str, int] = Field(default_factory=dict)
    instances: list[WarmWorker] = Field(default_factory=list, description="Workers not gone, oldest first")


class WarmPoolCleanupResult(BaseModel):
    success: bool = Field(description="True when every worker is gone")
    deleted: list[str] = Field(default_factory=list, description="Workers whose VM is confirmed deleted")
    pending: list[str] = Field(default_factory=list, description="Deletes requested but not confirmed yet")
    skipped: list[str] = Field(default_factory=list, description="Workers left alone, with the reason in message")
    canceled_runs: list[str] = Field(default_factory=list, description="Runs canceled because they held a worker")
    remaining: int = Field(description="Workers not gone after the drain")
    remaining_instances: list[str] = Field(default_factory=list)
    message: str


def _worker(row: dict[str, Any]) -> WarmWorker:
    return WarmWorker(
        instance_name=row["id"], zone=row.get("zone"), machine_type=row.get("machine_type"),
        gpu_count=int(row.get("gpu_count") or 0), accelerator=row.get("accelerator"), profile=row.get("profile"),
        state=row["state"], state_entered_at=row.get("state_since"),
        active_lease_run=(row.get("lease") or {}).get("run_id"), idle_deadline=row.get("idle_deadline"),
        watchdog_at=row.get("watchdog_at"),
    )


def status(project: Project) -> WarmPoolStatus:
    config = project.config
    rows = sorted((r for r in project.store.table(warm_pool.TABLE).docs() if r["state"] != "gone"),
                  key=lambda r: r.get("created_at") or "")
    counts = {state: sum(1 for r in rows if r["state"] == state) for state in warm_pool.STATES if state != "gone"}
    common: dict[str, Any] = {"total": len(rows), "by_state": counts, "instances": [_worker(r) for r in rows]}
    if not warm_pool.enabled(config):
        why = ("jobs.backend is not gce" if config.jobs.backend != "gce" else "gce.warm_pool.enabled is false")
        return WarmPoolStatus(enabled=False, **common, message=(
            f"The warm pool is disabled ({why}). To keep GCE workers booted between runs, set in goldfish.yaml: "
            "jobs.backend: gce and gce.warm_pool: {enabled: true, max_instances: 2, profiles: [h100-spot]} "
            "(profiles: [] means every profile), then call reload_config()."))
    assert config.gce is not None
    pool = config.gce.warm_pool
    return WarmPoolStatus(enabled=True, max_instances=pool.max_instances, idle_timeout_minutes=pool.idle_timeout_minutes,
                          watchdog_seconds=pool.watchdog_seconds, profiles=list(pool.profiles), **common)


def _api(project: Project) -> Any:
    from goldfish.runs.backends.gce.api import ComputeApi
    from goldfish.runs.cloud import gce_settings

    return ComputeApi(gce_settings(project.config))


def cleanup(project: Project, *, confirm_seconds: float = 60.0) -> WarmPoolCleanupResult:
    """Delete every worker: idle ones at once; a busy one's run is canceled first (with the reason);
    a stuck delete is retried until the VM is confirmed gone or ``confirm_seconds`` pass."""
    api = _api(project)
    result = WarmPoolCleanupResult(success=False, remaining=0, message="")
    rows = [r for r in project.store.table(warm_pool.TABLE).docs() if r["state"] != "gone"]
    for row in rows:
        run_id = (row.get("lease") or {}).get("run_id")
        if row["state"] in ("busy", "launching") and run_id:
            try:
                project.runs.cancel(run_id, CLEANUP_REASON)
            except Exception as exc:  # the run may be gone or already ended: the worker goes anyway
                result.skipped.append(f"{run_id}: cancel failed ({exc})")
            else:
                result.canceled_runs.append(run_id)
            if project.runs.get(run_id).get("state") not in TERMINAL:
                with project.store.transaction() as tx:  # force the lease off; the run loses its VM
                    tx.table(warm_pool.TABLE).patch(row["id"], {"lease": None})
        gone = warm_pool.retire(project, api, row["id"], cause="cleanup")
        (result.deleted if gone else result.pending).append(row["id"])
    deadline = time.monotonic() + confirm_seconds
    while result.pending and time.monotonic() < deadline:
        time.sleep(0.5)
        for name in list(result.pending):
            if warm_pool.retire(project, api, name, cause="cleanup"):
                result.pending.remove(name)
                result.deleted.append(name)
    left = [r["id"] for r in project.store.table(warm_pool.TABLE).docs() if r["state"] != "gone"]
    result.remaining, result.remaining_instances = len(left), left
    result.success = not left
    result.message = (f"Deleted {len(result.deleted)} worker(s)"
                      + (f", canceled {len(result.canceled_runs)} run(s) that held one" if result.canceled_runs else "")
                      + (f"; {len(result.pending)} delete(s) not confirmed yet: call warm_pool_cleanup() again"
                         if result.pending else "") + ".")
    return result
