"""The parts of driving a stage run that differ on a remote (cloud) backend.

- ``launch``: the capacity search runs *outside* the project lock (it can take minutes), checking
  for a cancel between attempts; every attempt is recorded on the run as it happens
  (``attempts[-1].capacity``). Only the outcome is written under the lock: if a cancel landed
  meanwhile, the new VM is deleted and the run canceled.
- ``preempted``: a preempted attempt is relaunched (``running → launching``, cause ``preempted``,
  the next attempt number) up to ``gce.max_preemption_retries`` times; the stage's checkpoints are
  keyed by the stage run id, so ``load_checkpoint`` in the new attempt returns the last one the
  previous attempt saved. Past the limit the run ends ``terminated/preempted``.
- ``mirror_logs``: the stage's log lives in Cloud Logging; it is appended to the run's local
  ``logs/stdout.log`` (between Goldfish's own notes), so logs() keeps byte-offset cursors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from filelock import FileLock

from goldfish.errors import GoldfishError
from goldfish.runs import warm_pool
from goldfish.runs.backends.base import Backend, Handle, LaunchSpec, Status
from goldfish.runs.state import now_iso, transition, ws_partition

if TYPE_CHECKING:
    from goldfish.runs.backends.gce import GceBackend
    from goldfish.runs.stage_driver import StageDriver

MIRROR_STATE = "remote_log.json"
RUST_REFUSAL = ("Rust stages run on the local and docker backends only for now; set jobs.backend: local or docker "
                "for this pipeline, or write the stage in Python.")
MIRROR_CHUNK = 1 << 20


def _with_attempt(doc: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    """The run's ``attempts`` (one entry per VM attempt) with the current one updated by ``fields``."""
    attempts = [dict(a) for a in doc.get("attempts") or []]
    number = int(doc.get("attempt") or 1)
    if not attempts or attempts[-1].get("attempt") != number:
        attempts.append({"attempt": number, "started_at": now_iso(), "capacity": [], "outcome": None})
    attempts[-1].update(fields)
    return attempts


def launch(driver: StageDriver, doc: dict[str, Any]) -> None:
    project, backend = driver.project, driver.runner.backend
    if doc.get("cancel_requested"):
        driver.move("launching", "canceled", "manual", f"Canceled: {doc.get('cancel_reason') or 'no reason given'}")
        return
    handle = backend.find_launch(driver.run_dir)
    if handle is None:
        try:
            request = json.loads((driver.run_dir / "launch_request.json").read_text())
            remote = request["remote"]
        except (FileNotFoundError, ValueError, KeyError):
            driver.move("launching", "failed", "launch_error",
                        "The launch request written while preparing is missing; run the stage again.")
            return
        problem = image_problem(driver, remote["image"])
        if problem is not None:
            driver.note(problem)
            driver.move("launching", "failed", "launch_error", problem)
            return

        handle = _warm_or_cold(driver, doc, remote)
        if handle is None:
            return
    orphan: Handle | None = None
    with project.store.transaction() as tx:
        current = tx.table("runs", ws_partition(driver.ws)).require(driver.run_id)
        if current["state"] != "launching":
            orphan = handle
        elif current.get("cancel_requested"):
            orphan = handle
            transition(tx, driver.run_id, "canceled", expected="launching", cause="manual",
                       error=f"Canceled: {current.get('cancel_reason') or 'no reason given'}",
                       source=project.source, workspace=driver.ws)
        else:
            fields = {"backend_handle": handle,
                      "attempts": _with_attempt(current, instance=handle.get("instance"), zone=handle.get("zone"),
                                                machine_type=handle.get("machine_type"),
                                                provisioning_model=handle.get("provisioning_model"),
                                                launched_at=handle.get("launched_at"), warm=handle.get("warm"))}
            transition(tx, driver.run_id, "running", expected="launching", source=project.source,
                       workspace=driver.ws, fields=fields)
    if orphan is not None:
        if orphan.get("pool"):  # the worker got the run: stop it there; the worker returns to the pool
            cast("GceBackend", backend).request_stop(orphan, "canceled before it started")
            with project.store.transaction() as tx:
                current = tx.table("runs", ws_partition(driver.ws)).require(driver.run_id)
                warm_pool.release(tx, {**current, "backend_handle": orphan}, source=project.source, cause="canceled")
        else:
            backend.cleanup(orphan)
    else:
        driver.note(f"VM {handle.get('instance')} in {handle.get('zone')} ({handle.get('provisioning_model')}, "
                    f"{handle.get('machine_type')})" + (" — a warm worker" if handle.get("warm") else ""))


def _warm_or_cold(driver: StageDriver, doc: dict[str, Any], remote: dict[str, Any]) -> Handle | None:
    """An idle warm worker leased to this run, else a new VM (which joins the pool when there is
    room); None when the launch failed or was canceled (the run was moved)."""
    project, backend = driver.project, driver.runner.backend
    config = project.config
    attempt = int(doc.get("attempt") or 1)
    profile = remote["placement"]["options"][0]["profile"]
    pool_name: str | None = None
    extra: dict[str, Any] = {**remote, "attempt": attempt}
    if warm_pool.participates(config, profile) and config.gce is not None:
        warm_pool.promote(project, project.bucket, profile)
        worker = warm_pool.take(project, profile=profile, image=remote["image"], run_id=driver.run_id,
                                runner_id=driver.runner.runner_id)
        if worker is not None:
            driver.note(f"warm worker {worker['id']} leased (no VM to boot)")
            gce = cast("GceBackend", backend)
            handle: Handle = gce.assign(worker, driver.run_id, attempt, remote["metadata"]["goldfish-spec"],
                                        driver.run_dir)
            driver.patch({"attempts": _with_attempt(driver.doc(), capacity=[], warm=True)})
            return handle
        pool_name = warm_pool.reserve(project, profile=profile, image=remote["image"], run_id=driver.run_id,
                                      runner_id=driver.runner.runner_id)
        if pool_name is not None:
            pool = config.gce.warm_pool
            extra["pool"] = {"name": pool_name, "idle_seconds": pool.idle_timeout_minutes * 60,
                             "poll_seconds": config.gce.poll_seconds, "preserve": list(pool.preserve_paths),
                             "watchdog_seconds": pool.watchdog_seconds}

    def record(attempts: list[dict[str, Any]]) -> None:
        driver.patch({"attempts": _with_attempt(driver.doc(), capacity=attempts)})

    extra.update(on_attempt=record, should_stop=lambda: bool(driver.doc().get("cancel_requested")))
    spec = LaunchSpec(run_id=driver.run_id, run_dir=driver.run_dir, argv=[], env={}, cwd=driver.run_dir, extra=extra)
    driver.note(f"searching capacity for attempt {attempt} ({len(remote['placement']['options'])} profile option(s))"
                + (f"; the VM joins the warm pool as {pool_name}" if pool_name else ""))
    try:
        handle = backend.launch(spec)
    except GoldfishError as exc:
        if pool_name is not None:
            warm_pool.launch_failed(project, pool_name)
        current = driver.doc()
        if current.get("cancel_requested"):
            driver.move("launching", "canceled", "manual", f"Canceled: {current.get('cancel_reason') or 'no reason given'}")
        else:
            text = f"{exc.message} Fix: {exc.fix}" if exc.fix else exc.message
            driver.note(f"launch failed: {text}")
            driver.move("launching", "failed", "launch_error", text)
        return None
    if pool_name is not None:
        warm_pool.launched(project, pool_name, handle)
    return handle


def image_problem(driver: StageDriver, image: str) -> str | None:
    from goldfish.runs.cloud_checks import image_exists

    try:
        if image_exists(driver.project.config, image):
            return None
    except GoldfishError as exc:
        return f"Could not check the image {image} in the registry: {exc}"
    return (f"The project image {image} is not in the registry (gce.artifact_registry). Fix: build and push it "
            "(manage_base_images(action='build', target='project', image_type=...), then action='push'), or pin "
            "an existing tag with docker.project_image_version.")


def preempted(driver: StageDriver, doc: dict[str, Any], handle: Handle, status: Status) -> None:
    """End the attempt of a preempted VM; relaunch the stage run unless the retries are used up."""
    gce = driver.project.config.gce
    limit = gce.max_preemption_retries if gce is not None else 0
    attempt = int(handle.get("attempt") or doc.get("attempt") or 1)
    mirror_logs(driver.runner.backend, handle, driver.run_dir)
    fields = driver.collect(doc)
    driver.runner.backend.cleanup(handle)
    attempts = _with_attempt(doc, outcome="preempted", ended_at=now_iso(), detail=status.detail)
    if attempt <= limit:
        for name in ("launch.json", "launch_intent.json"):
            path = driver.run_dir / name
            if path.exists():
                os.replace(path, driver.run_dir / f"{Path(name).stem}.a{attempt}.json")
        driver.note(f"{status.detail or 'preempted'}; relaunching as attempt {attempt + 1} "
                    f"(retry {attempt} of {limit}, gce.max_preemption_retries); checkpoints carry over")
        attempts.append({"attempt": attempt + 1, "started_at": now_iso(), "capacity": [], "outcome": None})
        driver.move("running", "launching", "preempted", None, attempt=attempt + 1, attempts=attempts,
                    backend_handle=None, **fields)
        return
    text = (f"Preempted {attempt} time(s); gce.max_preemption_retries = {limit} relaunches were used. Finalize it "
            "(its checkpoints are kept), then run again, raise gce.max_preemption_retries, or use an on-demand profile.")
    driver.note(text)
    driver.move("running", "terminated", "preempted", text, attempts=attempts, **fields)


def finished(driver: StageDriver, doc: dict[str, Any], handle: Handle, status: Status) -> dict[str, Any]:
    """The attempt's record once its VM ended (any way): the run's ``attempts`` updated."""
    mirror_logs(driver.runner.backend, handle, driver.run_dir)
    outcome = "exited" if status.exit_code is not None else "lost"
    return {"attempts": _with_attempt(doc, outcome=outcome, ended_at=now_iso(), exit_code=status.exit_code,
                                      detail=status.detail)}


def stage_started(run_dir: Path) -> float | None:
    """When the worker started the stage process (its mirrored report), or None before that."""
    try:
        value = json.loads((run_dir / "worker.json").read_text()).get("stage_started_unix")
    except (FileNotFoundError, ValueError):
        return None
    return float(value) if value else None


def mirror_logs(backend: Backend, handle: Handle | None, run_dir: Path) -> None:
    """Append the stage log lines written since the last mirror to ``logs/stdout.log``."""
    if not handle or not backend.capabilities().remote:
        return
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    state_path = log_dir / MIRROR_STATE
    with FileLock(str(log_dir / ".remote_log.lock"), timeout=60):
        try:
            state = json.loads(state_path.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        attempt = int(handle.get("attempt") or 1)
        offset = int(state.get("offset", 0)) if state.get("attempt") == attempt else 0
        while True:
            try:
                data, after = backend.logs(handle, offset, MIRROR_CHUNK)
            except Exception:  # Cloud Logging unreachable: the next call catches up
                return
            if not data:
                break
            with open(log_dir / "stdout.log", "ab") as f:
                f.write(data)
            offset = after
            state = {"attempt": attempt, "offset": offset}
            state_path.write_text(json.dumps(state))
            if len(data) < MIRROR_CHUNK:
                break
        if state.get("attempt") != attempt:
            state_path.write_text(json.dumps({"attempt": attempt, "offset": offset}))
