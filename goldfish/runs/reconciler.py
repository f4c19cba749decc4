"""Runner spawning and the reconciler (DESIGN §1).

``reconcile(project)`` looks at the ``active_pipelines`` table (one small table, never a scan of
every workspace): a pipeline run whose runner lease is dead gets a new runner, which re-attaches to
its stage processes. It runs whenever a process opens the project (MCP server, CLI status, TUI),
and from ``Runs.wait``/``Runs.cancel`` when they notice a dead runner. Concurrent reconcilers are
safe: a dead lease is reserved under the lease's file lock before the runner is spawned, so only
one of them spawns.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

from goldfish.errors import GoldfishError
from goldfish.runs.lease import LeaseFile
from goldfish.runs.state import PIPELINE_TERMINAL, ws_partition
from goldfish.runs.stage_env import PACKAGE_ROOT

if TYPE_CHECKING:
    from goldfish.project import Project


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
        spawn_runner(project, prun_id, runner_id)
        started.append(prun_id)
    if stale:
        with project.store.transaction() as tx:
            table = tx.table("active_pipelines")
            for prun_id in stale:
                table.delete(prun_id)
    return started


def reconcile_quietly(project: Project) -> list[str]:
    """``reconcile`` for callers that must open the project even when the store is unhappy."""
    try:
        return reconcile(project)
    except (GoldfishError, OSError):
        return []
