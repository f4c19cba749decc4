"""The gce backend: one Compute Engine VM per stage run attempt, followed through the API and the
objects its agent writes to the bucket.

Objects of an attempt (``runs/<id>/attempts/<n>/``, written by the agent): ``agent.json`` (its
heartbeat: staging, running), ``runtime/<file>`` (the stage's heartbeat, metrics, SVS files),
``stdout.log``, and ``exit.json`` last — the only evidence of how the stage ended. The runner writes
``stop`` there to ask the stage to stop. Files in the run dir: ``launch_intent.json`` (the VM about
to be created; a runner that dies before ``launch.json`` finds it again by its labels),
``launch.json`` (the handle), ``remote_sync.json`` (what was mirrored).

Status is read at most every ``poll_seconds`` (the runner polls faster): the exit object first, then
the VM. A VM that is gone (or stopped) without an exit object was preempted when the zone's
operations say so, and is lost otherwise; a VM whose agent has not reported within
``launching_grace_seconds`` of its creation is lost too (lessons: booting states are not "stopped",
and a silent worker is noticed).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from goldfish.fsutil import atomic_write
from goldfish.runs.backends.base import Availability, BackendContext, Capabilities, Handle, LaunchSpec, Objects, Status
from goldfish.runs.backends.gce.api import ApiError, ComputeApi
from goldfish.runs.backends.gce.capacity import Candidate, candidates, search
from goldfish.runs.backends.gce.checks import availability
from goldfish.runs.backends.gce.cloud_logs import stage_log_bytes
from goldfish.runs.backends.gce.instance import build_instance, instance_name
from goldfish.runs.backends.gce.startup import startup_script
from goldfish.timefmt import now_iso

LAUNCH_FILE = "launch.json"
INTENT_FILE = "launch_intent.json"
SYNC_FILE = "remote_sync.json"
WORKER_FILE = "worker.json"  # the agent's last report, mirrored (stage_started_unix: the stage's start)
ALIVE_STATES = {"PROVISIONING", "STAGING", "RUNNING", "REPAIRING"}
RUNTIME_FILES = ("heartbeat", "metrics.jsonl", "logs.txt", "svs_stats.json", "svs_findings.json",
                 "svs_findings_during.json")


def attempt_prefix(run_id: str, attempt: int) -> str:
    return f"runs/{run_id}/attempts/{attempt}/"


class GceBackend:
    name = "gce"

    def __init__(self, context: BackendContext):
        self.settings = context.settings
        self._objects = context.objects
        self.api = ComputeApi(self.settings)
        self._seen: dict[str, tuple[float, Status]] = {}
        self._lock = threading.Lock()

    @property
    def objects(self) -> Objects:
        if self._objects is None:
            raise RuntimeError("the gce backend needs the bucket store (gcs.bucket)")
        return self._objects

    def capabilities(self) -> Capabilities:
        return Capabilities(reattach=True, signals=False, live_logs=True, memory_limit=True, gpus=True, remote=True)

    def warm(self) -> None:
        """Import google-cloud-compute and build its clients (seconds) while the runner prepares."""
        with contextlib.suppress(Exception):
            _ = (self.api.instances, self.api.operations)

    def availability(self, *, gpus: int = 0) -> Availability:
        """Credentials, the Compute Engine API, the zones and the bucket (cached a minute); GPUs are a
        matter of the profile's quota, found by the capacity search."""
        return availability(self.settings, self._objects)

    # ------------------------------------------------------------------ launch
    def launch(self, spec: LaunchSpec) -> Handle:
        extra = spec.extra
        attempt = int(extra.get("attempt") or 1)
        pool = extra.get("pool")  # a warm-pool worker: named by the pool, kept after the stage
        name = pool["name"] if pool else instance_name(spec.run_id, attempt)
        atomic_write(spec.run_dir / INTENT_FILE, json.dumps({"run_id": spec.run_id, "attempt": attempt, "name": name}))
        labels = {**(extra.get("labels") or {}), "goldfish-run": spec.run_id, "goldfish-attempt": str(attempt),
                  "goldfish-managed": "true"}
        metadata = {**(extra.get("metadata") or {}), "goldfish-run": spec.run_id, "goldfish-attempt": str(attempt),
                    "startup-script": startup_script()}
        max_run = int(extra.get("max_run_seconds") or 21600)
        if pool:
            labels["goldfish-pool"] = "worker"
            metadata.update({"goldfish-pool": "1", "goldfish-idle-seconds": str(pool["idle_seconds"]),
                             "goldfish-poll-seconds": str(pool["poll_seconds"]),
                             "goldfish-preserve": ",".join(pool.get("preserve") or []),
                             "goldfish-watchdog-seconds": str(pool["watchdog_seconds"])})
            max_run = int(pool["watchdog_seconds"]) + 600
        settings = self.settings

        def insert(cand: Candidate) -> None:
            body = build_instance(name, cand.zone, cand.spec, cand.provisioning, metadata=metadata, labels=labels,
                                  service_account=settings.get("service_account"), max_run_seconds=max_run)
            self.api.insert(cand.zone, body)

        cand, attempts = search(
            insert, candidates(extra.get("placement") or {}),
            initial_backoff=float(settings.get("initial_backoff_sec", 10.0)),
            multiplier=float(settings.get("backoff_multiplier", 1.5)),
            max_attempts=int(settings.get("max_attempts", 150)),
            timeout=float(settings.get("search_timeout_sec", 900)),
            should_stop=extra.get("should_stop") or (lambda: False),
            on_attempt=extra.get("on_attempt") or (lambda attempts: None),
        )
        option = cand.spec
        handle: Handle = {
            "instance": name, "zone": cand.zone, "project": self.api.project, "run_id": spec.run_id,
            "attempt": attempt, "run_dir": str(spec.run_dir), "provisioning_model": cand.provisioning,
            "machine_type": option.get("machine_type"), "accelerator": option.get("accelerator"),
            "gpu_count": option.get("gpu_count") or 0, "profile": option.get("profile"),
            "launched_at": now_iso(), "launched_unix": time.time(), "capacity_attempts": len(attempts),
            "pool": bool(pool), "warm": False,
        }
        atomic_write(spec.run_dir / LAUNCH_FILE, json.dumps(handle))
        return handle

    def assign(self, worker: dict[str, Any], run_id: str, attempt: int, spec_key: str, run_dir: Path) -> Handle:
        """Give an idle warm worker its next run: the assignment object it polls for (no VM call)."""
        handle: Handle = {
            "instance": worker["id"], "zone": worker.get("zone"), "project": self.api.project, "run_id": run_id,
            "attempt": attempt, "run_dir": str(run_dir), "provisioning_model": worker.get("provisioning_model"),
            "machine_type": worker.get("machine_type"), "accelerator": worker.get("accelerator"),
            "gpu_count": worker.get("gpu_count") or 0, "profile": worker.get("profile"),
            "launched_at": now_iso(), "launched_unix": time.time(), "pool": True, "warm": True,
        }
        atomic_write(run_dir / INTENT_FILE, json.dumps({"run_id": run_id, "attempt": attempt, "name": worker["id"],
                                                         "warm": handle, "spec": spec_key}))
        self._assign(handle, spec_key)
        atomic_write(run_dir / LAUNCH_FILE, json.dumps(handle))
        return handle

    def _assign(self, handle: Handle, spec_key: str) -> None:
        doc = {"run_id": handle["run_id"], "attempt": handle["attempt"], "spec": spec_key, "assigned_at": now_iso()}
        self.objects.put_bytes(json.dumps(doc).encode(), f"pool/{handle['instance']}/assignment.json")

    def find_launch(self, run_dir: Path) -> Handle | None:
        try:
            handle = json.loads((run_dir / LAUNCH_FILE).read_text())
            return handle if isinstance(handle, dict) and handle.get("instance") else None
        except (FileNotFoundError, ValueError):
            pass
        try:
            intent = json.loads((run_dir / INTENT_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if intent.get("warm"):  # a warm assignment: the worker is known; (re)post its assignment
            handle = dict(intent["warm"])
            self._assign(handle, intent["spec"])
            atomic_write(run_dir / LAUNCH_FILE, json.dumps(handle))
            return handle
        # The runner died between creating the VM and recording it: find the VM by its labels.
        found = self.api.list_labelled({"goldfish-run": intent["run_id"], "goldfish-attempt": str(intent["attempt"])})
        if not found:
            return None
        inst = found[0]
        handle = {"instance": inst.name, "zone": inst.zone.rsplit("/", 1)[-1], "project": self.api.project,
                  "run_id": intent["run_id"], "attempt": intent["attempt"], "run_dir": str(run_dir),
                  "provisioning_model": inst.scheduling.provisioning_model,
                  "machine_type": inst.machine_type.rsplit("/", 1)[-1], "launched_at": now_iso(),
                  "launched_unix": time.time(), "adopted": True}
        atomic_write(run_dir / LAUNCH_FILE, json.dumps(handle))
        return handle

    # ------------------------------------------------------------------- watch
    def _exit(self, handle: Handle) -> Status | None:
        data = self.objects.get_bytes(attempt_prefix(handle["run_id"], handle["attempt"]) + "exit.json")
        if data is None:
            return None
        doc = json.loads(data)
        code = doc.get("exit_code")
        return Status(alive=False, exit_code=int(code) if code is not None else 125, detail=doc.get("error"))

    def status(self, handle: Handle) -> Status:
        key = f"{handle['run_id']}/{handle['attempt']}"
        poll = float(self.settings.get("poll_seconds", 5.0))
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and time.monotonic() - seen[0] < poll:
                return seen[1]
        status = self._status(handle)
        with self._lock:
            self._seen[key] = (time.monotonic(), status)
        return status

    def _status(self, handle: Handle) -> Status:
        ended = self._exit(handle)
        self.sync(handle)
        if ended is not None:
            return ended
        zone, name = handle["zone"], handle["instance"]
        try:
            inst = self.api.get(zone, name)
        except ApiError:
            return Status(alive=True)  # the API had a hiccup: ask again next poll
        if inst is not None and inst.status in ALIVE_STATES:
            grace = float(self.settings.get("launching_grace_seconds", 600))
            started = float(handle.get("launched_unix") or time.time())
            if time.time() - started > grace and not self._agent_reported(handle):
                return Status(alive=False, detail=f"the VM {name} never reported within {grace:.0f}s "
                                                  "(defaults.launching_grace_seconds); its startup failed")
            return Status(alive=True)
        ended = self._exit(handle)  # it may have written its exit object and deleted itself just now
        if ended is not None:
            return ended
        try:
            preempted = self.api.preempted(zone, name)
        except ApiError:
            return Status(alive=True)
        state = inst.status if inst is not None else "deleted"
        if preempted:
            return Status(alive=False, preempted=True, detail=f"the spot VM {name} in {zone} was preempted")
        return Status(alive=False, detail=f"the VM {name} in {zone} is {state} and left no exit status")

    def _agent_reported(self, handle: Handle) -> bool:
        return self.objects.get_bytes(attempt_prefix(handle["run_id"], handle["attempt"]) + "agent.json") is not None

    def sync(self, handle: Handle) -> None:
        """Mirror the stage's runtime files into the run dir; send a local stop request to the VM."""
        run_dir = Path(handle["run_dir"])
        runtime = run_dir / "outputs" / ".goldfish"
        prefix = attempt_prefix(handle["run_id"], handle["attempt"])
        state_path = run_dir / SYNC_FILE
        try:
            state = json.loads(state_path.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        if state.get("attempt") != handle["attempt"]:
            state = {"attempt": handle["attempt"], "files": {}, "stop_sent": False}
            (run_dir / WORKER_FILE).unlink(missing_ok=True)
        changed = False
        worker = self.objects.list(prefix + "agent.json")
        if worker and state.get("agent") != worker[0].generation:  # when the stage itself started
            self.objects.get_file(worker[0].key, run_dir / WORKER_FILE)
            state["agent"] = worker[0].generation
            changed = True
        for info in self.objects.list(prefix + "runtime/"):
            name = info.key.rsplit("/", 1)[-1]
            if name in RUNTIME_FILES and state["files"].get(name) != info.generation:
                runtime.mkdir(parents=True, exist_ok=True)
                self.objects.get_file(info.key, runtime / name)
                state["files"][name] = info.generation
                changed = True
        stop_file = runtime / "stop_requested"
        if stop_file.exists() and not state.get("stop_sent"):
            reason = stop_file.read_text(errors="replace").strip() or "stop requested"
            self.objects.put_bytes(json.dumps({"reason": reason, "signal": False}).encode(), prefix + "stop")
            state["stop_sent"] = changed = True
        if changed:
            atomic_write(state_path, json.dumps(state), durable=False)

    def logs(self, handle: Handle, offset: int = 0, limit: int = 1 << 20) -> tuple[bytes, int]:
        launched = float(handle.get("launched_unix") or 0) - 3600  # clocks differ; a margin costs nothing
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(0.0, launched)))
        return stage_log_bytes(self.settings, handle["run_id"], int(handle["attempt"]), offset, limit, since=since)

    # -------------------------------------------------------------------- stop
    def cancel(self, handle: Handle, grace_seconds: float) -> Status:
        """Ask the stage to stop (SIGTERM), wait for its exit object, then delete the VM."""
        prefix = attempt_prefix(handle["run_id"], handle["attempt"])
        reason = "stopped by Goldfish"
        stop_file = Path(handle["run_dir"]) / "outputs" / ".goldfish" / "stop_requested"
        if stop_file.exists():
            reason = stop_file.read_text(errors="replace").strip() or reason
        status = Status(alive=False)
        try:
            self.objects.put_bytes(json.dumps({"reason": reason, "signal": True, "grace_seconds": grace_seconds})
                                   .encode(), prefix + "stop")
            inst = self.api.get(handle["zone"], handle["instance"])
            if inst is not None and inst.status in ALIVE_STATES and self._agent_reported(handle):
                # The agent reads the request at its next sync, then gives the stage grace_seconds.
                deadline = time.monotonic() + grace_seconds + 2 * float(self.settings.get("sync_seconds", 5)) + 5
                while time.monotonic() < deadline:
                    ended = self._exit(handle)
                    if ended is not None:
                        status = ended
                        break
                    time.sleep(0.5)
        finally:
            if not handle.get("pool") or status.exit_code is None:  # a warm worker that stopped cleanly stays
                self.delete(handle)
        return status

    def request_stop(self, handle: Handle, reason: str) -> None:
        """Ask the stage to stop without waiting (a warm worker then returns to the pool)."""
        prefix = attempt_prefix(handle["run_id"], handle["attempt"])
        self.objects.put_bytes(json.dumps({"reason": reason, "signal": True, "grace_seconds": 0}).encode(),
                               prefix + "stop")

    def cleanup(self, handle: Handle) -> None:
        """Delete the VM if it still exists (idempotent; a VM that deleted itself is fine). A warm
        pool worker is kept: the pool drains and reuses it."""
        if not handle.get("pool"):
            self.delete(handle)

    def delete(self, handle: Handle) -> None:
        # A failure is not fatal here: the reconciler deletes VMs labelled for terminal runs.
        with contextlib.suppress(ApiError):
            self.api.delete(handle["zone"], handle["instance"])
