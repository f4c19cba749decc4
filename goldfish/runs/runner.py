"""The detached runner of one pipeline run: ``goldfish runner <prun-id> --runner-id <id>``.

Started by run() (or the reconciler) in a new session with its output in
``.goldfish/runs/<prun>/runner.log``. It takes the run's lease, schedules stage runs over the DAG
(independent stages in parallel up to ``jobs.max_parallel_stages``; a stage whose upstream did not
complete is skipped), drives each in a thread (``StageDriver``), and exits once every stage run is
terminal. It owns nothing in memory that matters: everything is in the store and the run dirs, so
a new runner can pick up where a dead one stopped.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from typing import Any

from goldfish.runs.availability import backend_options
from goldfish.runs.backends import get_backend
from goldfish.runs.backends.base import Availability, Backend, BackendUnavailable
from goldfish.errors import GoldfishError
from goldfish.runs.launch_review import drop_archives
from goldfish.runs.lease import LeaseFile, LeaseKeeper
from goldfish.project import Project
from goldfish.runs.hooks import RunHooks, load_hooks
from goldfish.runs.state import TERMINAL, now_iso, settle_pipeline, transition, ws_partition
from goldfish.runs.stage_driver import TICK, StageDriver

MAX_DRIVER_RESTARTS = 20
log = logging.getLogger(__name__)


class Runner:
    def __init__(self, project: Project, prun_id: str, runner_id: str, hooks: RunHooks | None = None):
        self.project = project
        self.prun_id = prun_id
        self.runner_id = runner_id
        entry = project.store.table("run_index").require(prun_id, what="pipeline run")
        self.workspace: str = entry["workspace"]
        self.prun: dict[str, Any] = {}
        self._hooks = hooks
        self.backend_name = project.config.jobs.backend
        self._backend: Backend | None = None
        self.backend_refusal: Availability | None = None
        try:
            self._backend = get_backend(self.backend_name, backend_options(project.config))
        except BackendUnavailable as exc:  # every stage it would start fails backend_unavailable
            self.backend_refusal = exc.availability
        warm = getattr(self._backend, "warm", None)
        if callable(warm):  # e.g. the docker client's imports, overlapped with lease and prepare work
            threading.Thread(target=warm, name="backend-warm", daemon=True).start()
        self.workers: dict[str, threading.Thread] = {}
        self.restarts: dict[str, int] = {}
        self.prun_dir = project.runs_dir / prun_id
        self.lease = LeaseFile(self.prun_dir)
        self.keeper: LeaseKeeper | None = None

    # ------------------------------------------------------------------ misc
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise BackendUnavailable(self.backend_refusal or Availability.refused("no backend", ""))
        return self._backend

    def availability(self, *, gpus: int = 0) -> Availability:
        """Whether the backend can start a stage now (asked before each stage is prepared)."""
        if self._backend is None:
            return self.backend_refusal or Availability.refused("no backend", "")
        return self._backend.availability(gpus=gpus)

    @property
    def hooks(self) -> RunHooks:
        """Hook providers, loaded on first use (scanning entry points is not free)."""
        if self._hooks is None:
            self._hooks = load_hooks()
        return self._hooks

    def log(self, text: str, level: int = logging.INFO) -> None:
        print(f"[{now_iso()[:23]}Z] {text}", flush=True)
        # The same line, structured, in .goldfish/logs/runner.jsonl (searchable with the run's ids).
        log.log(logging.ERROR if "Traceback (most recent call last)" in text else level, "%s", text,
                extra={"run_ids": [self.prun_id], "workspace": self.workspace})

    def lease_lost(self) -> bool:
        return self.keeper is not None and self.keeper.lost.is_set()

    def read(self) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
        part = ws_partition(self.workspace)
        prun = self.project.store.table("pipeline_runs", part).get_doc(self.prun_id)
        if prun is None:
            return None, {}
        runs = self.project.store.table("runs", part)
        docs = {rid: runs.get_doc(rid) or {} for rid in (prun.get("stage_runs") or {}).values()}
        return prun, docs

    # ------------------------------------------------------------------ main
    def main(self) -> int:
        lease_seconds = self.project.config.jobs.runner_lease_seconds
        if not self.lease.acquire(self.runner_id, lease_seconds):
            self.log(f"another runner holds the lease of {self.prun_id}; exiting")
            return 0
        self.keeper = LeaseKeeper(self.lease, self.runner_id, lease_seconds)
        self.keeper.start()
        self.log(f"runner {self.runner_id} (pid {self.project.pid}) drives {self.prun_id}")
        try:
            with self.project.store.transaction() as tx:
                pruns = tx.table("pipeline_runs", ws_partition(self.workspace))
                if pruns.has(self.prun_id):
                    pruns.patch(self.prun_id, {"runner": {"pid": self.project.pid, "runner_id": self.runner_id,
                                                          "started_at": now_iso()}})
            return self.loop()
        finally:
            self.keeper.stopped.set()
            if not self.lease_lost():
                for worker in self.workers.values():
                    worker.join(timeout=60)
                self.lease.release(self.runner_id)

    def loop(self) -> int:
        while True:
            if self.lease_lost():
                self.log("lease taken over by another runner; exiting without touching the run")
                return 3
            try:
                prun, runs = self.read()
                if prun is None:
                    self.log(f"{self.prun_id} vanished from the store; exiting")
                    return 1
                self.prun = prun
                busy = any(w.is_alive() for w in self.workers.values())
                if all(r.get("state") in TERMINAL for r in runs.values()) and not busy:
                    with self.project.store.transaction() as tx:
                        settle_pipeline(tx, self.workspace, self.prun_id, source=self.project.source)
                    drop_archives(self.prun_dir)
                    self.log(f"{self.prun_id} finished")
                    return 0
                self.schedule(prun, runs)
            except GoldfishError as exc:
                self.log(f"store error, retrying: {exc}")
            time.sleep(TICK)

    def schedule(self, prun: dict[str, Any], runs: dict[str, dict[str, Any]]) -> None:
        limit = self.project.config.jobs.max_parallel_stages
        ids = prun.get("stage_runs") or {}
        by_stage = {stage: runs.get(rid) or {} for stage, rid in ids.items()}
        active = [rid for rid, w in self.workers.items() if w.is_alive()]
        for stage in prun.get("stages") or list(ids):
            rid = ids[stage]
            doc = by_stage[stage]
            worker = self.workers.get(rid)
            if worker is not None and worker.is_alive():
                continue
            state = doc.get("state")
            if state in TERMINAL or state is None:
                continue
            if state != "pending":
                self.start(rid)  # re-attach: a stage mid-flight with nobody driving it
                active.append(rid)
                continue
            deps = doc.get("depends_on") or []
            failed = [d for d in deps if by_stage.get(d, {}).get("state") in TERMINAL
                      and by_stage[d].get("state") != "completed"]
            with_cancel = doc.get("cancel_requested")
            if with_cancel or failed:
                with self.project.store.transaction() as tx:
                    if with_cancel:
                        transition(tx, rid, "canceled", expected="pending", cause="manual",
                                   error=f"Canceled: {doc.get('cancel_reason') or 'no reason given'}",
                                   source=self.project.source, workspace=self.workspace)
                    else:
                        up = failed[0]
                        upstream = by_stage[up]
                        # What ended the run, carried down a chain of skips (the gate judges by it).
                        cause_outcome = (upstream.get("upstream_outcome") if upstream.get("infra_outcome") == "skipped"
                                         else upstream.get("infra_outcome"))
                        transition(tx, rid, "skipped", expected="pending", cause="upstream_failed",
                                   error=f"Skipped: upstream stage {up} ended {upstream.get('state')}"
                                         f" ({upstream.get('id')}).",
                                   source=self.project.source, workspace=self.workspace,
                                   fields={"upstream_outcome": cause_outcome})
                continue
            if all(by_stage.get(d, {}).get("state") == "completed" for d in deps) and len(active) < limit:
                self.start(rid)
                active.append(rid)

    def start(self, rid: str) -> None:
        count = self.restarts.get(rid, 0)
        if count >= MAX_DRIVER_RESTARTS:
            return
        self.restarts[rid] = count + 1
        if count:
            time.sleep(min(5.0, 0.5 * count))  # a driver that keeps dying must not spin
        driver = StageDriver(self, rid)

        def run() -> None:
            try:
                driver.drive()
            except Exception:
                self.log(f"{rid} driver crashed: {traceback.format_exc()}")

        worker = threading.Thread(target=run, name=f"stage-{rid}", daemon=True)
        self.workers[rid] = worker
        worker.start()


def main(prun_id: str, runner_id: str, project_path: str | None) -> int:
    project = Project.open(project_path, source="runner")
    from goldfish.logsearch.jsonlog import configure_project

    # runner.log already holds this process's stdout and stderr; the records go to runner.jsonl.
    configure_project(project, "runner", stderr_level=None)
    try:
        return Runner(project, prun_id, runner_id).main()
    except GoldfishError as exc:
        print(f"goldfish runner: {exc}", file=sys.stderr, flush=True)
        return 2
