"""Stages found dead by whoever notices: settled ``orphaned`` in place, without waiting for a runner.

A pipeline run whose runner lease is dead may have stage runs still marked ``running`` whose
process is gone too, without an exit file (both killed, the machine rebooted). The reconciler
calls ``settle_lost`` while it holds the run's lease reservation (so no runner drives the run at
the same time): each such local stage run is recorded ``terminated``/``orphaned`` at once, with
its metrics ingested to the end, and what is left of its process group is killed only when a
member still carries its run id (``LocalBackend.cleanup``). A stage that ended with an exit file
is left to the new runner, which settles it as its own supervisor would have (post-run, hooks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from goldfish.runs.state import transition, ws_partition

if TYPE_CHECKING:
    from goldfish.project import Project

ORPHANED_TEXT = ("The stage process ended without recording an exit code while no runner watched it (the runner and"
                 " the stage were both gone: killed outside Goldfish, or the machine restarted); treated as a "
                 "failure. Rerun it with run().")


def settle_lost(project: Project, workspace: str, prun: dict[str, Any]) -> list[str]:
    """Record every local stage run of ``prun`` that is ``running`` but provably gone as orphaned."""
    from goldfish.runs import postrun
    from goldfish.runs.backends.local import LocalBackend

    part = ws_partition(workspace)
    runs = project.store.table("runs", part)
    backend = LocalBackend()
    lost: list[tuple[str, dict[str, Any]]] = []
    for rid in (prun.get("stage_runs") or {}).values():
        doc = runs.get_doc(rid)
        handle = (doc or {}).get("backend_handle")
        if doc is None or doc.get("state") != "running" or doc.get("backend", "local") != "local" or not handle:
            continue
        status = backend.status(handle)
        if status.alive or status.exit_code is not None:
            continue
        backend.cleanup(handle)
        fields = postrun.collect_metrics(project.runs_dir / rid, doc)
        lost.append((rid, {**fields, "exit_code": None}))
    settled: list[str] = []
    if lost:
        with project.store.transaction() as tx:
            for rid, fields in lost:
                if transition(tx, rid, "terminated", expected="running", cause="orphaned", error=ORPHANED_TEXT,
                              source=project.source, workspace=workspace, fields=fields) is not None:
                    settled.append(rid)
    return settled
