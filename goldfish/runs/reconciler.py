"""Runner spawning and the reconciler (DESIGN §1).

``reconcile(project)`` looks at the ``active_pipelines`` table (one small table, never a scan of
every workspace): a pipeline run whose runner lease is dead gets a new runner, which re-attaches to
its stage processes. It runs whenever a process opens the project (MCP server, CLI status, TUI),
and from ``Runs.wait``/``Runs.cancel`` when they notice a dead runner. Concurrent reconcilers are
safe: a dead lease is reserved under the lease's file lock before the runner is spawned, so only
one of them spawns.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

from goldfish.errors import GoldfishError
from goldfish.runs.lease import LeaseFile
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


def reconcile_quietly(project: Project) -> list[str]:
    """``reconcile`` for callers that must open the project even when the store is unhappy."""
    try:
        return reconcile(project)
    except (GoldfishError, OSError):
        return []
