"""Runner spawning and the reconciler.

``reconcile(project)`` looks at the ``active_pipelines`` table (one small table, never a scan of
every workspace): a pipeline run whose runner lease is dead gets a new runner, which re-attaches to
its stage processes; a stage whose process is gone too, without an exit file, is recorded
``orphaned`` right there (``orphans.settle_lost``), so no reader goes on seeing it ``running``.
It runs whenever a process opens the project (MCP server, CLI status, TUI), every lease interval
in the long-lived ones (``ReconcileTimer``), whenever a reader meets an active run whose lease is
dead (``refresh``), and from ``Runs.wait``/``Runs.cancel``. Concurrent reconcilers are safe: a
dead lease is reserved under the lease's file lock before anything is settled or spawned, so only
one of them acts.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from goldfish.errors import GoldfishError
from goldfish.runs.lease import LeaseFile
from goldfish.runs.orphans import settle_lost
from goldfish.runs.state import PIPELINE_TERMINAL, TERMINAL, ws_partition
from goldfish.runs.stage_env import PACKAGE_ROOT

if TYPE_CHECKING:
    from goldfish.project import Project

log = logging.getLogger(__name__)


def spawn_runner(project: Project, prun_id: str, runner_id: str) -> int:
    """Start ``goldfish runner`` detached (new session, stdin closed, output to runner.log)."""
    prun_dir = project.runs_dir / prun_id
    prun_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "goldfish", "--project", str(project.root), "runner", prun_id,
           "--runner-id", runner_id]
    with open(prun_dir / "runner.log", "ab") as log:
        proc = subprocess.Popen(cmd, cwd=project.root, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, env=env)
    # Reap it when it exits, so a finished runner never lingers as a zombie of this process.
    threading.Thread(target=proc.wait, name=f"reap-{prun_id}", daemon=True).start()
    return proc.pid


def runner_alive(project: Project, prun_id: str) -> bool:
    lease = LeaseFile(project.runs_dir / prun_id).read()
    return lease is not None and lease.live(project.config.jobs.runner_lease_seconds)


def reconcile(project: Project) -> list[str]:
    """Give every active pipeline run with a dead runner a new one; returns their ids."""
    started: list[str] = []
    stale: list[str] = []
    lease_seconds = project.config.jobs.runner_lease_seconds
    for entry in project.store.table("active_pipelines").docs():
        prun_id, workspace = entry["id"], entry.get("workspace")
        prun = project.store.table("pipeline_runs", ws_partition(str(workspace))).get_doc(prun_id)
        if prun is None or prun.get("state") in PIPELINE_TERMINAL:
            stale.append(prun_id)
            continue
        runner_id = LeaseFile(project.runs_dir / prun_id).reserve(lease_seconds)
        if runner_id is None:
            continue
        try:
            settle_lost(project, str(workspace), prun)
        except (GoldfishError, OSError) as exc:  # the new runner settles them instead
            log.warning("settling the lost stages of %s failed (%s); the new runner settles them", prun_id, exc,
                        extra={"run_ids": [prun_id], "workspace": workspace})
        pid = spawn_runner(project, prun_id, runner_id)
        log.info("runner of %s was dead: started a new one (pid %s, runner id %s)", prun_id, pid, runner_id,
                 extra={"run_ids": [prun_id], "workspace": workspace})
        started.append(prun_id)
    if stale:
        with project.store.transaction() as tx:
            table = tx.table("active_pipelines")
            for prun_id in stale:
                table.delete(prun_id)
    try:
        sweep_vms(project)
    except Exception as exc:  # the cloud being unreachable must not stop a project from opening
        print(f"goldfish: VM sweep skipped ({exc})", file=sys.stderr)
        log.warning("VM sweep skipped: %s", exc)
    return started


SWEEP_SECONDS = 60.0
SWEEP_STAMP = "cloud_sweep.json"


def sweep_vms(project: Project, *, force: bool = False) -> list[str]:
    """Delete Goldfish VMs whose stage run is terminal, unknown, or on a later attempt: nothing that
    finished keeps billing, even when its runner died before cleaning up; then reconcile the warm
    pool (expired workers, leases of terminal runs). At most once a minute per project unless
    ``force``; returns the deleted instance names (warm workers are reported by the pool)."""
    import json
    import time

    from goldfish.fsutil import atomic_write

    if project.config.jobs.backend != "gce" or project.config.gce is None:
        return []
    stamp = project.gf_dir / SWEEP_STAMP
    try:
        last = float(json.loads(stamp.read_text()).get("at", 0))
    except (OSError, ValueError):
        last = 0.0
    if not force and time.time() - last < SWEEP_SECONDS:
        return []
    atomic_write(stamp, json.dumps({"at": time.time()}), durable=False)
    from goldfish.runs.backends.gce.api import ComputeApi
    from goldfish.runs.backends.gce.instance import label_value
    from goldfish.runs.cloud import gce_settings

    api = ComputeApi(gce_settings(project.config))
    deleted = []
    found = api.list_labelled({"goldfish-managed": "true",
                               "goldfish-project": label_value(project.config.project_name)})
    for inst in found:
        labels = dict(inst.labels)
        if labels.get("goldfish-pool") == "worker":
            # The pool manages its workers; a worker VM the pool no longer knows is an orphan.
            row = project.store.table("warm_pool").get_doc(inst.name)
            if (row is None or row.get("state") == "gone") and api.delete(inst.zone.rsplit("/", 1)[-1], inst.name):
                deleted.append(inst.name)
            continue
        run_id = labels.get("goldfish-run", "")
        entry = project.store.table("run_index").get_doc(run_id) if run_id else None
        run = (project.store.table("runs", ws_partition(str(entry["workspace"]))).get_doc(run_id)
               if entry else None)
        stale = (run is None or run.get("state") in TERMINAL
                 or str(run.get("attempt") or 1) != labels.get("goldfish-attempt", "1"))
        if stale and api.delete(inst.zone.rsplit("/", 1)[-1], inst.name):
            deleted.append(inst.name)
            log.info("deleted VM %s of %s run %s (attempt %s)", inst.name,
                     run.get("state") if run else "unknown", run_id, labels.get("goldfish-attempt", "1"),
                     extra={"run_ids": [run_id] if run_id else [], "workspace": entry.get("workspace") if entry else None})
    if project.store.table("warm_pool").docs():
        from goldfish.runs import warm_pool

        warm_pool.reconcile(project, api, project.bucket)
    return deleted


def refresh(project: Project, prun_ids: list[str] | None = None) -> bool:
    """For readers: reconcile when one of ``prun_ids`` (default: every active pipeline run) is
    active with a dead runner lease, so what they read next is settled. True when it reconciled."""
    if prun_ids is None:
        try:
            prun_ids = [str(e["id"]) for e in project.store.table("active_pipelines").docs()]
        except (GoldfishError, OSError):
            return False
    for prun_id in prun_ids:
        try:
            active = project.store.table("active_pipelines").get_doc(prun_id) is not None
            if active and not runner_alive(project, prun_id):
                reconcile_quietly(project)
                return True
        except (GoldfishError, OSError):
            return False
    return False


def fresh_run(project: Project, run: dict[str, Any]) -> dict[str, Any]:
    """A stage run document as a reader should show it: when it is active and its runner is dead,
    reconciled first (so a crash is reported, not an eternal ``running``) and read again."""
    if run.get("state") in TERMINAL or not run.get("pipeline_run_id"):
        return run
    if refresh(project, [str(run["pipeline_run_id"])]):
        return project.runs.get(str(run["id"]))
    return run


class ReconcileTimer(threading.Thread):
    """Reconciles every lease interval while a long-lived process (MCP server, TUI) has the project
    open, so a run whose runner died is settled even when no new process opens the project."""

    def __init__(self, project: Project, interval: float | None = None):
        super().__init__(name="goldfish-reconcile", daemon=True)
        self.project = project
        self.interval = interval or float(project.config.jobs.runner_lease_seconds)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                reconcile_quietly(self.project)
            except Exception as exc:  # a timer thread must never die of one bad pass
                print(f"goldfish: reconcile pass failed ({exc})", file=sys.stderr)

    def stop(self) -> None:
        self.stopped.set()


def reconcile_quietly(project: Project) -> list[str]:
    """``reconcile`` for callers that must open the project even when the store is unhappy."""
    try:
        return reconcile(project)
    except (GoldfishError, OSError):
        return []
