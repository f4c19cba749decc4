"""The Goldfish worker agent: what runs on a GCE VM (standalone, stdlib only, python3 >= 3.11).

The startup script writes this file to the VM and runs it. It reads its instructions from the
instance metadata (``goldfish-*`` attributes) and the run's spec object in the bucket, then for one
assignment (a stage run attempt):

1. pulls the project image (or, with ``GOLDFISH_VM_RUNTIME=process``, checks it exists and runs
   the stage as a process: test machines without a Docker daemon);
2. stages ``/app`` (the version's code) and ``/mnt/inputs`` from the bucket, each download checked
   against the object's md5;
3. runs the stage with ``/mnt/outputs`` writable, its stdout+stderr to a log;
4. every ``sync_seconds``: ships new log lines to Cloud Logging (labelled with the run ids, each
   line with its byte offset), uploads changed runtime files (heartbeat, metrics, SVS) and its own
   heartbeat (``agent.json``), and obeys a stop request object;
5. at the end uploads the outputs, the whole log and — last — ``exit.json``; then deletes its VM
   (or, as a warm worker, wipes everything but the preserved paths and polls for its next
   assignment until its idle timeout or watchdog).

A watchdog deletes the VM once ``goldfish-watchdog-seconds`` have passed, whatever happens; the
instance's own ``maxRunDuration`` is the backstop if this process dies. Every failure is written to
``exit.json`` (``exit_code`` 125, ``error``) before the VM goes away, so nothing ends unexplained.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tarfile
import threading
import time

try:  # on the worker the two files sit side by side
    from agent_io import SETUP_FAILED, DockerRuntime, Gcs, Http, Metadata, ProcessRuntime, _files, now_iso, registry_check, say
except ImportError:  # imported as part of Goldfish (tests, type checks)
    from goldfish.runs.backends.gce.agent_io import (
        SETUP_FAILED, DockerRuntime, Gcs, Http, Metadata, ProcessRuntime, _files, now_iso, registry_check, say)

RUNTIME_FILES = ("heartbeat", "metrics.jsonl", "logs.txt", "svs_stats.json", "svs_findings.json",
                 "svs_findings_during.json")
MAX_LINE = 64 * 1024
LOG_BATCH = 500


class Agent:
    def __init__(self) -> None:
        self.meta = Metadata()
        self.http = Http(self.meta.token)
        attr = self.meta.attr
        self.project = attr("goldfish-project") or self.meta.get("project/project-id") or ""
        self.zone = (self.meta.get("instance/zone") or "").rsplit("/", 1)[-1]
        self.name = self.meta.get("instance/name") or socket.gethostname()
        self.bucket = attr("goldfish-bucket") or ""
        self.storage_endpoint = attr("goldfish-storage-endpoint") or "https://storage.googleapis.com"
        self.compute_endpoint = attr("goldfish-compute-endpoint") or "https://compute.googleapis.com"
        self.logging_endpoint = attr("goldfish-logging-endpoint") or "https://logging.googleapis.com"
        self.gcs = Gcs(self.http, self.storage_endpoint, self.bucket)
        self.root = os.environ.get("GOLDFISH_VM_ROOT", "/var/lib/goldfish")
        kind = os.environ.get("GOLDFISH_VM_RUNTIME") or attr("goldfish-runtime") or "docker"
        self.runtime_kind = kind
        self.started = time.time()
        self.current: dict | None = None
        self.rt: DockerRuntime | ProcessRuntime | None = None
        self.log_state: dict = {"offset": 0, "runtime": {}}

    # --------------------------------------------------------------- VM end
    def delete_self(self, why: str) -> None:
        say(f"deleting this VM ({why})")
        url = (f"{self.compute_endpoint.rstrip('/')}/compute/v1/projects/{self.project}/zones/{self.zone}"
               f"/instances/{self.name}")
        for _ in range(5):
            try:
                self.http.request("DELETE", url, ok404=True)
                return
            except RuntimeError as exc:
                say(f"self-delete failed ({exc}); retrying")
                time.sleep(2)

    def watchdog(self, seconds: float) -> None:
        def fire() -> None:
            time.sleep(seconds)
            say(f"watchdog: {seconds:.0f}s of VM lifetime reached")
            rt = getattr(self, "rt", None)
            if rt is not None:
                rt.signal(signal.SIGKILL)
                run = getattr(self, "current", None)
                if run is not None:
                    self.write_exit(run, 124, f"the worker's watchdog ({seconds:.0f}s) stopped the stage")
            self.delete_self("watchdog")
            os._exit(0)

        threading.Thread(target=fire, name="watchdog", daemon=True).start()

    # ----------------------------------------------------------- one stage
    def prefix(self, run: dict) -> str:
        return f"runs/{run['run_id']}/attempts/{run['attempt']}/"

    def write_exit(self, run: dict, code: int | None, error: str | None) -> None:
        doc = {"run_id": run["run_id"], "attempt": run["attempt"], "exit_code": code, "error": error,
               "instance": self.name, "zone": self.zone, "started_at": run.get("started_at"),
               "finished_at": now_iso()}
        self.gcs.write(self.prefix(run) + "exit.json", json.dumps(doc).encode())

    def heartbeat(self, run: dict, state: str) -> None:
        doc = {"state": state, "instance": self.name, "zone": self.zone, "updated_at": now_iso(),
               "stage_started_at": run.get("stage_started_at"), "stage_started_unix": run.get("stage_started_unix")}
        self.gcs.write(self.prefix(run) + "agent.json", json.dumps(doc).encode())

    def run_assignment(self, run_id: str, attempt: int, spec_key: str) -> None:
        run = {"run_id": run_id, "attempt": attempt, "started_at": now_iso()}
        self.current = run
        self.log_state = {"offset": 0, "runtime": {}}  # per run: a warm worker serves many
        spec: dict = {}
        log_path = os.path.join(self.root, "logs", f"{run_id}.{attempt}.log")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        try:
            loaded = json.loads(self.gcs.read(spec_key) or b"null")
            if not isinstance(loaded, dict):
                raise RuntimeError(f"the run spec gs://{self.bucket}/{spec_key} is missing")
            spec = loaded
            self.heartbeat(run, "staging")
            self.stage(spec, run)
            env = dict(spec.get("env") or {})
            if "googleapis.com" not in self.storage_endpoint:
                env["STORAGE_EMULATOR_HOST"] = self.storage_endpoint
            assert self.rt is not None
            self.rt.start(spec, env, log_path)
            run.update(stage_started_at=now_iso(), stage_started_unix=time.time())
            self.heartbeat(run, "running")
            say(f"{run_id} attempt {attempt} started")
        except Exception as exc:  # setup failed: say why, in the exit object
            say(f"setup failed: {exc}")
            with open(log_path, "a") as log:
                log.write(f"[goldfish-agent] could not start the stage: {exc}\n")
            self.ship_logs(spec, run, log_path, final=True)
            self.write_exit(run, SETUP_FAILED, f"the worker could not start the stage: {exc}")
            self.current = None
            return
        code = self.supervise(spec, run, log_path)
        self.finish(spec, run, log_path, code)
        self.current = None

    def stage(self, spec: dict, run: dict) -> None:
        for sub in ("app", "mnt/inputs", "mnt/outputs"):
            path = os.path.join(self.root, sub)
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path, exist_ok=True)
        os.makedirs(os.path.join(self.root, "preserve"), exist_ok=True)
        self.rt = DockerRuntime(self.root, self.name) if self.runtime_kind == "docker" else ProcessRuntime(self.root)
        registry_check(self.http, spec["image"])
        self.rt.prepare(spec["image"], self.meta.token())
        tar_path = os.path.join(self.root, "app.tar.gz")
        self.gcs.download(spec["app"], tar_path)
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():  # Goldfish built it; refuse anything odd all the same
                if member.name.startswith("/") or ".." in member.name.split("/") or member.issym() or member.islnk():
                    raise RuntimeError(f"the code archive holds an unsafe entry {member.name!r}")
            tar.extractall(os.path.join(self.root, "app"))
        os.unlink(tar_path)
        for item in spec.get("inputs", []):
            bucket, _, key = item["uri"][len("gs://"):].partition("/")
            gcs = self.gcs if bucket == self.bucket else Gcs(self.http, self.storage_endpoint, bucket)
            dest = os.path.join(self.root, "mnt", "inputs", item["name"])
            if item.get("dir"):
                base = key.rstrip("/") + "/"
                for obj in gcs.list(base):
                    gcs.download(obj["name"], os.path.join(dest, obj["name"][len(base):]))
            else:
                gcs.download(key, dest)
        os.makedirs(os.path.join(self.root, "mnt", "outputs", ".goldfish"), exist_ok=True)

    def supervise(self, spec: dict, run: dict, log_path: str) -> int:
        sync = float(spec.get("sync_seconds", 5))
        deadline = time.time() + float(spec.get("max_runtime_seconds", 86400)) + float(spec.get("deadline_slack", 300))
        stop_seen: float | None = None
        grace = float(spec.get("stop_grace_seconds", 10))
        state = self.log_state
        next_sync = 0.0
        rt = self.rt
        assert rt is not None
        while True:
            code = rt.poll()
            if code is not None:
                return code
            now = time.time()
            if now >= next_sync:
                next_sync = now + sync
                try:
                    self.ship_logs(spec, run, log_path)
                    self.sync_runtime(run, state)
                    self.heartbeat(run, "running")
                    control = self.gcs.read(self.prefix(run) + "stop")
                except RuntimeError as exc:
                    say(f"sync failed ({exc}); retrying")
                    control = None
                if control and stop_seen is None:
                    req = json.loads(control)
                    stop_file = os.path.join(self.root, "mnt", "outputs", ".goldfish", "stop_requested")
                    with open(stop_file, "w") as f:
                        f.write(req.get("reason") or "stop requested")
                    if req.get("signal"):
                        stop_seen = now
                        grace = float(req.get("grace_seconds", grace))
                        rt.signal(signal.SIGTERM)
            if stop_seen is not None and now - stop_seen > grace:
                rt.signal(signal.SIGKILL)
                stop_seen = float("inf")
            if now > deadline:
                say("the stage outlived max_runtime_seconds; stopping it")
                rt.signal(signal.SIGKILL)
            time.sleep(min(0.2, sync))

    def ship_logs(self, spec: dict, run: dict, log_path: str, final: bool = False) -> None:
        """New whole lines of the stage log → Cloud Logging, each with its byte offset."""
        state = self.log_state
        try:
            with open(log_path, "rb") as f:
                f.seek(state["offset"])
                data = f.read()
        except FileNotFoundError:
            return
        if not final:
            data = data[: data.rfind(b"\n") + 1]
        if not data:
            return
        labels = {"goldfish_run": run["run_id"], "goldfish_attempt": str(run["attempt"]),
                  **{k.replace("-", "_"): v for k, v in (spec.get("labels") or {}).items()}}
        entries, offset = [], state["offset"]
        for line in data.splitlines(keepends=True):
            text = line.decode(errors="replace").rstrip("\n")[:MAX_LINE]
            entries.append({
                "logName": f"projects/{self.project}/logs/{spec.get('log_name', 'goldfish-stage')}",
                "resource": {"type": "gce_instance", "labels": {"instance_id": self.name, "zone": self.zone}},
                "labels": labels, "timestamp": now_iso(), "severity": "DEFAULT",
                "insertId": f"{run['run_id']}-{run['attempt']}-{offset}",
                "jsonPayload": {"offset": offset, "text": text, "attempt": run["attempt"]},
            })
            offset += len(line)
        url = f"{self.logging_endpoint.rstrip('/')}/v2/entries:write"
        for i in range(0, len(entries), LOG_BATCH):
            self.http.request("POST", url, json.dumps({"entries": entries[i:i + LOG_BATCH]}).encode(),
                              {"Content-Type": "application/json"})
        state["offset"] = offset

    def sync_runtime(self, run: dict, state: dict) -> None:
        base = os.path.join(self.root, "mnt", "outputs", ".goldfish")
        for name in RUNTIME_FILES:
            path = os.path.join(base, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            mark = (st.st_size, st.st_mtime_ns)
            if state["runtime"].get(name) != mark:
                self.gcs.upload(path, self.prefix(run) + "runtime/" + name)
                state["runtime"][name] = mark

    def finish(self, spec: dict, run: dict, log_path: str, code: int) -> None:
        error = None
        try:
            self.ship_logs(spec, run, log_path, final=True)
            self.sync_runtime(run, self.log_state)
            outputs = os.path.join(self.root, "mnt", "outputs")
            for rel in _files(outputs):
                if rel.split(os.sep)[0] == ".goldfish":
                    continue
                self.gcs.upload(os.path.join(outputs, rel), spec["outputs_prefix"] + rel.replace(os.sep, "/"))
            self.gcs.upload(log_path, self.prefix(run) + "stdout.log")
        except Exception as exc:
            error = f"the stage exited {code} but its outputs could not be uploaded: {exc}"
            say(error)
            code = SETUP_FAILED if code == 0 else code
        self.write_exit(run, code, error)
        say(f"{run['run_id']} attempt {run['attempt']} ended with {code}")

    # ------------------------------------------------------------ lifetime
    def main(self) -> int:
        attr = self.meta.attr
        self.watchdog(float(attr("goldfish-watchdog-seconds") or 21600))
        run_id = attr("goldfish-run")
        if run_id:
            self.run_assignment(run_id, int(attr("goldfish-attempt") or 1), attr("goldfish-spec") or "")
        if attr("goldfish-pool") == "1":
            self.pool_loop(float(attr("goldfish-idle-seconds") or 1800), float(attr("goldfish-poll-seconds") or 2),
                           [p for p in (attr("goldfish-preserve") or "").split(",") if p])
        self.delete_self("done")
        return 0

    def pool_loop(self, idle: float, poll: float, preserve: list[str]) -> None:
        """A warm worker: wipe, report idle, take the next assignment, until the idle timeout."""
        last = f"{self.meta.attr('goldfish-run') or ''}#{self.meta.attr('goldfish-attempt') or 1}"
        while True:
            self.wipe(preserve)
            since = time.time()
            self.gcs.write(f"pool/{self.name}/state.json", json.dumps(
                {"state": "idle_ready", "since": now_iso(), "instance": self.name, "zone": self.zone,
                 "last": last}).encode())
            assignment = None
            while time.time() - since < idle:
                data = self.gcs.read(f"pool/{self.name}/assignment.json")
                if data:
                    doc = json.loads(data)
                    key = f"{doc.get('run_id')}#{doc.get('attempt', 1)}"
                    if doc.get("run_id") and key != last:
                        assignment = doc
                        break
                time.sleep(poll)
            if assignment is None:
                say(f"idle for {idle:.0f}s")
                return
            last = f"{assignment['run_id']}#{assignment.get('attempt', 1)}"
            self.run_assignment(assignment["run_id"], int(assignment.get("attempt", 1)), assignment["spec"])

    def wipe(self, preserve: list[str]) -> None:
        """Everything of the last run goes but the ``preserve`` paths under ``/mnt/preserve`` (a pip or
        dataset cache), so one run's files never reach the next."""
        keep = {os.path.normpath(p).strip("/").split("/")[0] for p in preserve} - {"", ".", ".."}
        cache = os.path.join(self.root, "preserve")
        if os.path.isdir(cache):
            for entry in os.listdir(cache):
                if entry not in keep:
                    path = os.path.join(cache, entry)
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        with contextlib.suppress(OSError):
                            os.unlink(path)
        for entry in os.listdir(self.root):
            if entry == "preserve":
                continue
            path = os.path.join(self.root, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


if __name__ == "__main__":
    os.makedirs(os.environ.get("GOLDFISH_VM_ROOT", "/var/lib/goldfish"), exist_ok=True)
    try:
        sys.exit(Agent().main())
    except Exception as exc:  # the VM must not keep billing for an agent that crashed
        say(f"agent crashed: {exc}")
        try:
            Agent().delete_self("agent crashed")
        finally:
            sys.exit(1)
