"""The warm pool: booted GCE workers kept between runs (``gce.warm_pool``).

A worker is a VM whose agent, after a stage, wipes everything but ``preserve_paths``, writes
``pool/<instance>/state.json`` (``idle_ready``, the run it last served) and polls
``pool/<instance>/assignment.json`` for its next run until its idle timeout or watchdog. An object
in the bucket (not instance metadata) carries the assignment: the agent already reads the bucket,
and writing an object needs no Compute API call or VM-side metadata watch.

Workers are rows of the ``warm_pool`` table (project partition), one per instance, with a state:

    launching → busy → draining → idle_ready → busy → …        (and deleting → gone from anywhere)

Every change is a compare-and-set under the project lock, with a history entry on the row and an
event in the ``warm_pool`` log, like run transitions. A lease (``lease: {run_id, runner_id}``) is
taken by moving ``idle_ready → busy`` in one transaction, so two processes never share a worker;
the run that gets none launches a fresh VM, which joins the pool (``launching``) while the pool has
fewer than ``max_instances`` workers. The lease is released in the transaction that makes its run
terminal (or relaunches it after a preemption): ``busy → draining``. ``reconcile`` works from
stored timestamps (``idle_deadline``, ``watchdog_at``), so a worker that expired while no Goldfish
process ran is still deleted: it also releases leases whose run is terminal, promotes drained
workers, and retries deletes until the VM is confirmed gone.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from goldfish.errors import Conflict
from goldfish.runs.state import TERMINAL, now_iso, parse_iso, ws_partition

if TYPE_CHECKING:
    from goldfish.config import GoldfishConfig
    from goldfish.project import Project
    from goldfish.store import Transaction

TABLE = "warm_pool"
EVENTS = "warm_pool"
WorkerState = Literal["launching", "busy", "draining", "idle_ready", "deleting", "gone"]
STATES: tuple[str, ...] = ("launching", "busy", "draining", "idle_ready", "deleting", "gone")
LEGAL: dict[str, frozenset[str]] = {
    "launching": frozenset({"busy", "deleting", "gone"}),
    "busy": frozenset({"draining", "deleting", "gone"}),
    "draining": frozenset({"idle_ready", "deleting", "gone"}),
    "idle_ready": frozenset({"busy", "deleting", "gone"}),
    "deleting": frozenset({"deleting", "gone"}),
}
DRAINING_LIMIT = 600.0  # a worker that never reports idle after its run is replaced, not waited for


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def enabled(config: GoldfishConfig) -> bool:
    return config.jobs.backend == "gce" and config.gce is not None and config.gce.warm_pool.enabled


def participates(config: GoldfishConfig, profile: str) -> bool:
    if not enabled(config):
        return False
    assert config.gce is not None
    wanted = config.gce.warm_pool.profiles
    return not wanted or profile in wanted


def move(tx: Transaction, name: str, to: str, *, expected: str | set[str], cause: str, source: str,
         fields: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Compare-and-set a worker's state; None when it was not in ``expected``."""
    table = tx.table(TABLE)
    row = table.get_doc(name)
    wanted = {expected} if isinstance(expected, str) else set(expected)
    if row is None or row["state"] not in wanted:
        return None
    if to not in LEGAL.get(row["state"], frozenset()):
        raise Conflict(f"Illegal warm worker transition {row['state']} -> {to} ({name}).",
                       fix="This is a Goldfish bug: please report it with the instance name.")
    ts = now_iso()
    entry = {"ts": ts, "from": row["state"], "to": to, "cause": cause, "source": source}
    update = {**(fields or {}), "state": to, "state_since": ts, "history": [*row.get("history", []), entry][-50:]}
    doc = table.cas(name, "state", row["state"], update)
    tx.append_event(EVENTS, {"ts": ts, "instance": name, "from": row["state"], "to": to, "cause": cause,
                             "source": source, "run_id": ((fields or {}).get("lease") or row.get("lease") or {})
                             .get("run_id")})
    return doc


# ------------------------------------------------------------------------- leases


def take(project: Project, *, profile: str, image: str, run_id: str, runner_id: str,
         now: float | None = None) -> dict[str, Any] | None:
    """Lease an ``idle_ready`` worker of this profile and image to ``run_id``; None when there is none."""
    now = time.time() if now is None else now
    with project.store.transaction() as tx:
        rows = [r for r in tx.table(TABLE).docs() if r["state"] == "idle_ready" and r.get("profile") == profile
                and r.get("image") == image and not _expired(r, now)]
        for row in sorted(rows, key=lambda r: r.get("state_since") or ""):
            lease = {"run_id": run_id, "runner_id": runner_id, "taken_at": now_iso()}
            return move(tx, row["id"], "busy", expected="idle_ready", cause="lease", source=project.source,
                        fields={"lease": lease, "idle_deadline": None})
    return None


def reserve(project: Project, *, profile: str, image: str, run_id: str, runner_id: str,
            now: float | None = None) -> str | None:
    """Room for one more worker: a ``launching`` row leased to ``run_id`` (its name), or None at
    ``max_instances``."""
    config = project.config
    assert config.gce is not None
    pool = config.gce.warm_pool
    now = time.time() if now is None else now
    with project.store.transaction() as tx:
        table = tx.table(TABLE)
        if sum(1 for r in table.docs() if r["state"] != "gone") >= pool.max_instances:
            return None
        name = f"gfw-{secrets.token_hex(4)}"
        ts = now_iso()
        table.add({"instance": name, "state": "launching", "state_since": ts, "created_at": ts, "profile": profile,
                   "image": image, "zone": None, "machine_type": None, "gpu_count": 0, "accelerator": None,
                   "watchdog_at": _iso(now + pool.watchdog_seconds), "idle_deadline": None,
                   "lease": {"run_id": run_id, "runner_id": runner_id, "taken_at": ts}, "served": [],
                   "history": [{"ts": ts, "from": None, "to": "launching", "cause": "cold_launch",
                                "source": project.source}]}, doc_id=name)
        tx.append_event(EVENTS, {"ts": ts, "instance": name, "from": None, "to": "launching", "cause": "cold_launch",
                                 "source": project.source, "run_id": run_id})
    return name


def launched(project: Project, name: str, handle: dict[str, Any]) -> None:
    with project.store.transaction() as tx:
        move(tx, name, "busy", expected="launching", cause="booted", source=project.source,
             fields={"zone": handle.get("zone"), "machine_type": handle.get("machine_type"),
                     "gpu_count": handle.get("gpu_count") or 0, "accelerator": handle.get("accelerator"),
                     "provisioning_model": handle.get("provisioning_model")})


def launch_failed(project: Project, name: str) -> None:
    with project.store.transaction() as tx:
        move(tx, name, "gone", expected="launching", cause="launch_failed", source=project.source,
             fields={"lease": None})


def release(tx: Transaction, run: dict[str, Any], *, source: str, cause: str) -> None:
    """The run on a worker ended (or is relaunched): its lease goes, the worker drains. Called in
    the transaction that changes the run, so no lease outlives its run."""
    handle = run.get("backend_handle") or {}
    name = handle.get("instance")
    if not handle.get("pool") or not name:
        return
    row = tx.table(TABLE).get_doc(name)
    if row is None or (row.get("lease") or {}).get("run_id") != run.get("id"):
        return
    served = [*row.get("served", []), f"{run['id']}#{handle.get('attempt', 1)}"][-100:]
    move(tx, name, "draining", expected="busy", cause=cause, source=source, fields={"lease": None, "served": served})


def promote(project: Project, objects: Any, profile: str, *, now: float | None = None) -> list[str]:
    """Draining workers of ``profile`` that reported idle after their last run become ``idle_ready``
    (one small read per draining worker; done before each lease so a wiped worker is reused at once)."""
    now = time.time() if now is None else now
    ready = []
    for row in project.store.table(TABLE).docs():
        if (row["state"] == "draining" and row.get("profile") == profile and _reported_idle(objects, row)
                and _make_ready(project, row["id"], now)):
            ready.append(row["id"])
    return ready


def _reported_idle(objects: Any, row: dict[str, Any]) -> bool:
    data = objects.get_bytes(f"pool/{row['id']}/state.json")
    report = json.loads(data) if data else {}
    return bool(report.get("state") == "idle_ready" and report.get("last") == (row.get("served") or [None])[-1])


def _make_ready(project: Project, name: str, now: float) -> bool:
    config = project.config
    assert config.gce is not None
    deadline = _iso(now + config.gce.warm_pool.idle_timeout_minutes * 60)
    with project.store.transaction() as tx:
        return move(tx, name, "idle_ready", expected="draining", cause="wiped", source=project.source,
                    fields={"idle_deadline": deadline}) is not None


# ------------------------------------------------------------------------ reconcile


def _expired(row: dict[str, Any], now: float) -> bool:
    watchdog = parse_iso(row.get("watchdog_at"))
    idle = parse_iso(row.get("idle_deadline"))
    return (watchdog is not None and now >= watchdog) or (idle is not None and now >= idle)


def retire(project: Project, api: Any, name: str, *, cause: str, now: float | None = None) -> bool:
    """Move a worker to ``deleting`` and delete its VM; ``gone`` once the VM is confirmed absent.
    Returns True when it is gone."""
    with project.store.transaction() as tx:
        row = tx.table(TABLE).get_doc(name)
        if row is None or row["state"] == "gone":
            return True
        if row["state"] != "deleting":
            move(tx, name, "deleting", expected=row["state"], cause=cause, source=project.source,
                 fields={"delete_requested_at": now_iso()})
    row = project.store.table(TABLE).require(name)
    zone = row.get("zone")
    if zone:
        api.delete(zone, name)
        if api.get(zone, name) is not None:
            with project.store.transaction() as tx:
                tx.table(TABLE).patch(name, {"delete_attempts": int(row.get("delete_attempts") or 0) + 1})
            return False
    with project.store.transaction() as tx:
        move(tx, name, "gone", expected="deleting", cause="deleted", source=project.source, fields={"lease": None})
    return True


def refresh(project: Project, objects: Any, api: Any, row: dict[str, Any], now: float) -> None:
    """A draining worker that reported idle for its last run becomes ``idle_ready``; one whose VM is
    gone becomes ``gone``."""
    name, zone = row["id"], row.get("zone")
    if zone and api.get(zone, name) is None:
        with project.store.transaction() as tx:
            move(tx, name, "gone", expected={"draining", "idle_ready", "busy", "launching"}, cause="vm_gone",
                 source=project.source, fields={"lease": None})
        return
    if row["state"] != "draining":
        return
    if _reported_idle(objects, row):
        _make_ready(project, name, now)
    elif now - (parse_iso(row.get("state_since")) or now) > DRAINING_LIMIT:
        retire(project, api, name, cause="never_drained", now=now)


def reconcile(project: Project, api: Any, objects: Any, *, now: float | None = None) -> dict[str, list[str]]:
    """Bring the pool in line with the runs, the clock and the VMs (see the module docstring)."""
    now = time.time() if now is None else now
    done: dict[str, list[str]] = {"released": [], "retired": [], "gone": [], "ready": []}
    for row in project.store.table(TABLE).docs():
        name, state = row["id"], row["state"]
        if state == "gone":
            continue
        lease = row.get("lease") or {}
        run = _run(project, lease["run_id"]) if state == "busy" and lease.get("run_id") else None
        if run is not None and (not run or run.get("state") in TERMINAL):
            served = [*row.get("served", []), f"{lease['run_id']}#{(run or {}).get('attempt') or 1}"]
            with project.store.transaction() as tx:
                if move(tx, name, "draining", expected="busy", cause="run_terminal", source=project.source,
                        fields={"lease": None, "served": served[-100:]}):
                    done["released"].append(name)
            row = project.store.table(TABLE).require(name)
            state = row["state"]
        watchdog = parse_iso(row.get("watchdog_at"))
        idle = parse_iso(row.get("idle_deadline")) if state == "idle_ready" else None
        if state == "deleting" or (watchdog is not None and now >= watchdog) or (idle is not None and now >= idle):
            cause = "deleting" if state == "deleting" else ("watchdog" if watchdog and now >= watchdog else "idle_timeout")
            if retire(project, api, name, cause=cause, now=now):
                done["gone" if state == "deleting" else "retired"].append(name)
            continue
        if state in ("draining", "idle_ready", "busy") and row.get("zone"):
            refresh(project, objects, api, row, now)
            after = project.store.table(TABLE).require(name)["state"]
            if after == "idle_ready" and state == "draining":
                done["ready"].append(name)
            elif after == "gone":
                done["gone"].append(name)
    return done


def _run(project: Project, run_id: str) -> dict[str, Any]:
    """The stage run a lease names ({} when it no longer exists)."""
    entry = project.store.table("run_index").get_doc(run_id)
    if entry is None:
        return {}
    return project.store.table("runs", ws_partition(str(entry["workspace"]))).get_doc(run_id) or {}
