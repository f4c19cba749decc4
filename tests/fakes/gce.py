"""A loopback fake of the Google Cloud services the gce backend talks to, for tests only.

One HTTP server (``FakeCloud``) serves
- the Compute Engine REST API the real google-cloud-compute client calls: zones list/get, instances
  insert/get/delete/aggregatedList, zone operations get/wait/list;
- the metadata server a VM's agent reads (``/_vm/<id>/computeMetadata/v1/...``);
- the Docker Registry v2 manifest endpoint (images registered with ``add_image``);
- Cloud Logging ``entries:write`` / ``entries:list`` (filters: ``tests/fakes/log_filter.py``).

Each created VM is realised as a local process group running the VM's *real* startup script (from
its metadata) after a configurable boot delay, with ``GOLDFISH_VM_RUNTIME=process`` (no Docker
daemon here) and ``GCE_METADATA_HOST`` pointing at its own metadata. Deleting or preempting the VM
kills that group. Tests script stockouts, quota errors, transient errors, stuck deletes and
preemptions, and read the calls the product made.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from tests.fakes.log_filter import FilterError, matches

REPO = Path(__file__).resolve().parent.parent.parent
BASE = "https://www.googleapis.com/compute/v1"
DEFAULT_ZONES = ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "us-east1-b", "us-east1-c",
                 "us-west1-a", "us-west1-b", "us-west4-a", "us-west4-b", "europe-west4-a", "europe-west4-b"]


@dataclass
class Vm:
    name: str
    zone: str
    body: dict[str, Any]
    id: str
    status: str = "PROVISIONING"
    created: float = field(default_factory=time.time)
    running_since: float | None = None
    proc: subprocess.Popen[bytes] | None = None
    container: Any = None
    deleted: bool = False
    stuck_deletes: int = 0

    @property
    def metadata(self) -> dict[str, str]:
        return {i["key"]: i.get("value", "") for i in (self.body.get("metadata") or {}).get("items", [])}

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body.get("labels") or {})

    def resource(self, project: str) -> dict[str, Any]:
        return {**self.body, "kind": "compute#instance", "id": self.id, "status": self.status,
                "zone": f"{BASE}/projects/{project}/zones/{self.zone}",
                "selfLink": f"{BASE}/projects/{project}/zones/{self.zone}/instances/{self.name}",
                "machineType": f"{BASE}/projects/{project}/zones/{self.zone}/" + self.body["machineType"].split("/", 2)[-1],
                "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00", time.gmtime(self.created))}


class ApiFail(Exception):
    def __init__(self, status: int, message: str, reason: str = "", code: str = ""):
        super().__init__(message)
        self.status, self.message, self.reason, self.code = status, message, reason, code


class FakeCloud:
    def __init__(self, root: Path, project: str = "fake-project", zones: list[str] | None = None,
                 docker: Any = None, vm_image: str | None = None, docker_socket: str | None = None):
        self.root = Path(root)
        # With a Docker client, a VM is a container of ``vm_image`` (host network, the daemon's socket
        # mounted) and its agent runs each stage as a real container of the project image.
        self.docker, self.vm_image, self.docker_socket = docker, vm_image, docker_socket
        self.project = project
        self.zones = list(zones or DEFAULT_ZONES)
        self.vms: dict[tuple[str, str], Vm] = {}
        self.gone: list[Vm] = []
        self.ops: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.images: set[str] = set()
        self.entries: list[dict[str, Any]] = []
        self.log_filters: list[str] = []  # the filter of every entries:list call, in order
        self.lock = threading.RLock()
        self.ids = itertools.count(1000)
        # script
        self.boot_delay = 0.2
        self.outcomes: dict[str, list[str]] = {}  # zone -> queue of stockout|quota|transient|ok
        self.no_quota: set[str] = set()  # accelerator types with quota 0
        self.stuck_deletes: dict[str, int] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A client that hangs up mid-answer (a killed VM) is not an error of the fake.
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        threading.Thread(target=self.server.serve_forever, name="fake-cloud", daemon=True).start()
        threading.Thread(target=self._watch, name="fake-cloud-watch", daemon=True).start()

    # ------------------------------------------------------------- test API
    def add_image(self, ref: str) -> None:
        """Register ``host/path/name:tag`` (the host part is ignored) as present in the registry."""
        self.images.add(ref.split("/", 1)[1])

    def script(self, zone: str, *outcomes: str) -> None:
        self.outcomes.setdefault(zone, []).extend(outcomes)

    def inserts(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["op"] == "insert"]

    def live(self) -> list[Vm]:
        with self.lock:
            return [vm for vm in self.vms.values() if not vm.deleted]

    def find(self, **labels: str) -> list[Vm]:
        return [vm for vm in self.live() if all(vm.labels.get(k) == v for k, v in labels.items())]

    def preempt(self, vm: Vm) -> None:
        with self.lock:
            self._kill(vm)
            self._op(vm.zone, "compute.instances.preempted", vm.name)
            self._remove(vm)

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            got = predicate()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"fake cloud: {what} not reached in {timeout}s")
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        with self.lock:
            for vm in list(self.vms.values()):
                self._kill(vm)
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------- internals
    def _op(self, zone: str, kind: str, target: str, error: ApiFail | None = None) -> dict[str, Any]:
        name = f"operation-{next(self.ids)}"
        op: dict[str, Any] = {
            "kind": "compute#operation", "id": name.split("-")[1], "name": name, "operationType": kind,
            "zone": f"{BASE}/projects/{self.project}/zones/{zone}", "status": "DONE", "progress": 100,
            "targetLink": f"{BASE}/projects/{self.project}/zones/{zone}/instances/{target}",
            "insertTime": time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00", time.gmtime()),
        }
        if error is not None:
            op["error"] = {"errors": [{"code": error.code, "message": error.message}]}
            op["httpErrorStatusCode"] = error.status
            op["httpErrorMessage"] = {403: "FORBIDDEN", 503: "SERVICE UNAVAILABLE", 409: "CONFLICT"}.get(error.status, "ERROR")
        self.ops[name] = op
        return op

    def _kill(self, vm: Vm) -> None:
        """The machine vanishes: every process of it dies (the agent and the stage, which runs in its
        own session, are found by the VM's root directory in their environment; in container mode,
        the VM's container and the stage containers it started)."""
        if vm.container is not None:
            for found in self.docker.containers.list(all=True, filters={"label": f"goldfish-instance={vm.name}"}):
                with suppress(Exception):
                    found.remove(force=True)
            with suppress(Exception):
                vm.container.remove(force=True)
            vm.container = None
            return
        if vm.proc is None:
            return
        marker = str(self.root / f"{vm.name}-{vm.id}").encode()
        for _ in range(3):
            pids = [vm.proc.pid] if vm.proc.poll() is None else []
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    with suppress(OSError):
                        if marker in Path(f"/proc/{entry}/environ").read_bytes():
                            pids.append(int(entry))
            if not pids:
                break
            for pid in pids:
                with suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        with suppress(subprocess.TimeoutExpired):
            vm.proc.wait(timeout=10)

    def _remove(self, vm: Vm) -> None:
        vm.deleted = True
        vm.status = "TERMINATED"
        self.vms.pop((vm.zone, vm.name), None)
        self.gone.append(vm)

    def _boot(self, vm: Vm) -> None:
        time.sleep(self.boot_delay)
        with self.lock:
            if vm.deleted:
                return
            vm.status = "STAGING"
        with self.lock:
            if vm.deleted:
                return
            vm.status = "RUNNING"
            vm.running_since = time.time()
            home = self.root / f"{vm.name}-{vm.id}"
            (home / "root").mkdir(parents=True, exist_ok=True)
            if self.docker is not None:
                self._boot_container(vm, home)
                return
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                   "GCE_METADATA_HOST": f"127.0.0.1:{self.port}/_vm/{vm.id}", "GOLDFISH_VM_ROOT": str(home / "root"),
                   "GOLDFISH_VM_RUNTIME": "process", "GOLDFISH_VM_PYTHON": sys.executable,
                   "GOLDFISH_VM_AGENT_PYTHON": sys.executable, "GOLDFISH_VM_PYTHONPATH": str(REPO)}
            with open(home / "console.log", "ab") as log:
                vm.proc = subprocess.Popen(["bash", "-c", vm.metadata.get("startup-script", "true")], env=env,
                                           stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, cwd=home)

    def _boot_container(self, vm: Vm, home: Path) -> None:
        root = str(home / "root")
        env = {"GCE_METADATA_HOST": f"127.0.0.1:{self.port}/_vm/{vm.id}", "GOLDFISH_VM_ROOT": root,
               "GOLDFISH_VM_RUNTIME": "docker", "GOLDFISH_VM_AGENT_PYTHON": "python3",
               "GOLDFISH_VM_CONTAINER_NETWORK": "host"}  # this "VM" shares the host's loopback
        volumes = {root: {"bind": root, "mode": "rw"},  # same path inside: the stage's binds name host paths
                   str(self.docker_socket): {"bind": "/var/run/docker.sock", "mode": "rw"}}
        vm.container = self.docker.containers.run(
            self.vm_image, ["bash", "-c", vm.metadata.get("startup-script", "true")], detach=True,
            network_mode="host", environment=env, volumes=volumes, name=f"fakevm-{vm.name}-{vm.id}",
            labels={"goldfish-fake-vm": vm.id}, entrypoint=[])

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            with self.lock:
                for vm in list(self.vms.values()):
                    limit = ((vm.body.get("scheduling") or {}).get("maxRunDuration") or {}).get("seconds")
                    if limit and vm.running_since and time.time() - vm.running_since > float(limit):
                        self._kill(vm)
                        self._op(vm.zone, "compute.instances.stop", vm.name)
                        self._remove(vm)
                    if vm.proc is not None:
                        vm.proc.poll()

    # ------------------------------------------------------------- compute
    def insert(self, zone: str, body: dict[str, Any]) -> dict[str, Any]:
        if zone not in self.zones:
            raise ApiFail(404, f"The resource 'projects/{self.project}/zones/{zone}' was not found", "notFound")
        name = body["name"]
        self.calls.append({"op": "insert", "zone": zone, "name": name, "t": time.time(),
                           "provisioning": (body.get("scheduling") or {}).get("provisioningModel")})
        queue = self.outcomes.get(zone) or []
        outcome = queue.pop(0) if queue else "ok"
        if outcome == "transient":
            raise ApiFail(503, "Internal error. Please try again or contact Google Support.", "backendError")
        accels = [a["acceleratorType"].rsplit("/", 1)[-1] for a in body.get("guestAccelerators") or []]
        region = zone.rsplit("-", 1)[0]
        if outcome == "quota" or set(accels) & self.no_quota:
            quota = "NVIDIA_H100_GPUS" if "nvidia-h100-80gb" in accels else "GPUS_ALL_REGIONS" if accels else "CPUS"
            return self._op(zone, "insert", name, ApiFail(403, f"Quota '{quota}' exceeded.  Limit: 0.0 in region {region}.",
                                                           code="QUOTA_EXCEEDED"))
        if outcome == "stockout":
            return self._op(zone, "insert", name, ApiFail(
                503, f"The zone 'projects/{self.project}/zones/{zone}' does not have enough resources available to "
                     "fulfill the request.  Try a different zone, or try again later.",
                code="ZONE_RESOURCE_POOL_EXHAUSTED"))
        with self.lock:
            if (zone, name) in self.vms:
                return self._op(zone, "insert", name, ApiFail(
                    409, f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' already exists",
                    code="RESOURCE_ALREADY_EXISTS"))
            vm = Vm(name=name, zone=zone, body=body, id=str(next(self.ids)),
                    stuck_deletes=self.stuck_deletes.get(name, 0))
            self.vms[(zone, name)] = vm
        threading.Thread(target=self._boot, args=(vm,), daemon=True).start()
        return self._op(zone, "insert", name)

    def delete(self, zone: str, name: str) -> dict[str, Any]:
        self.calls.append({"op": "delete", "zone": zone, "name": name, "t": time.time()})
        with self.lock:
            vm = self.vms.get((zone, name))
            if vm is None:
                raise ApiFail(404, f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' was not found",
                              "notFound")
            if vm.stuck_deletes > 0:
                vm.stuck_deletes -= 1
                vm.status = "STOPPING"
                return self._op(zone, "delete", name)
            vm.status = "STOPPING"
            self._kill(vm)
            self._remove(vm)
        return self._op(zone, "delete", name)

    # ------------------------------------------------------------- HTTP
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                return json.loads(raw) if raw.strip() else {}

            def _route(self) -> None:
                url = urlparse(self.path)
                parts = [unquote(p) for p in url.path.strip("/").split("/")]
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    if parts[:1] == ["_vm"]:
                        return self._metadata(parts[1], parts[4:])
                    if parts[:1] == ["v2"] and parts[-1:] in (["entries:write"], ["entries:list"]):
                        return self._logging(parts[-1])
                    if parts[:1] == ["v2"]:
                        return self._registry(parts[1:])
                    if parts[:2] == ["compute", "v1"]:
                        return self._compute(parts[4:], query)
                    self._send(404, {"error": {"code": 404, "message": f"no route {url.path}"}})
                except ApiFail as exc:
                    self._send(exc.status, {"error": {"code": exc.status, "message": exc.message,
                                                      "errors": [{"message": exc.message, "reason": exc.reason,
                                                                  "domain": "global"}]}})

            do_GET = do_POST = do_DELETE = do_HEAD = _route

            def _compute(self, p: list[str], q: dict[str, str]) -> None:
                method = self.command
                if p == ["zones"]:
                    return self._send(200, {"items": [{"name": z, "status": "UP"} for z in cloud.zones]})
                if p[:1] == ["aggregated"] and p[1:] == ["instances"]:
                    items: dict[str, Any] = {}
                    for vm in cloud.live():
                        if _label_filter(q.get("filter", ""), vm.labels):
                            items.setdefault(f"zones/{vm.zone}", {"instances": []})["instances"].append(
                                vm.resource(cloud.project))
                    return self._send(200, {"items": items})
                if len(p) == 2 and p[0] == "zones":
                    if p[1] not in cloud.zones:
                        raise ApiFail(404, f"The resource 'projects/{cloud.project}/zones/{p[1]}' was not found", "notFound")
                    return self._send(200, {"name": p[1], "status": "UP"})
                zone = p[1]
                if p[2:3] == ["operations"]:
                    if len(p) == 3:
                        ops = [o for o in cloud.ops.values() if o["zone"].endswith("/" + zone)]
                        want = q.get("filter", "")
                        if "compute.instances.preempted" in want:
                            ops = [o for o in ops if o["operationType"] == "compute.instances.preempted"]
                        return self._send(200, {"items": ops})
                    op = cloud.ops.get(p[3])
                    if op is None:
                        raise ApiFail(404, f"operation {p[3]} was not found", "notFound")
                    return self._send(200, op)
                if p[2:3] == ["instances"]:
                    if len(p) == 3 and method == "POST":
                        return self._send(200, cloud.insert(zone, self._body()))
                    if len(p) == 3:
                        found = [vm.resource(cloud.project) for vm in cloud.live() if vm.zone == zone
                                 and _label_filter(q.get("filter", ""), vm.labels)]
                        return self._send(200, {"items": found})
                    name = p[3]
                    if method == "DELETE":
                        return self._send(200, cloud.delete(zone, name))
                    cloud.calls.append({"op": "get", "zone": zone, "name": name, "t": time.time()})
                    with cloud.lock:
                        vm = cloud.vms.get((zone, name))
                    if vm is None:
                        raise ApiFail(404, f"The resource 'projects/{cloud.project}/zones/{zone}/instances/{name}' "
                                           "was not found", "notFound")
                    return self._send(200, vm.resource(cloud.project))
                raise ApiFail(404, f"no compute route {'/'.join(p)}", "notFound")

            def _metadata(self, vm_id: str, p: list[str]) -> None:
                vm = next((v for v in [*cloud.vms.values(), *cloud.gone] if v.id == vm_id), None)
                if vm is None or self.headers.get("Metadata-Flavor") != "Google":
                    return self._send(404, b"not found")
                path = "/".join(p)
                if path == "instance/service-accounts/default/token":
                    return self._send(200, {"access_token": "fake-token", "expires_in": 3600, "token_type": "Bearer"})
                values = {"instance/name": vm.name, "instance/zone": f"projects/1234/zones/{vm.zone}",
                          "project/project-id": cloud.project, "instance/id": vm.id}
                if path.startswith("instance/attributes/"):
                    value = vm.metadata.get(path.split("/", 2)[2])
                else:
                    value = values.get(path)
                if value is None:
                    return self._send(404, b"not found")
                self._send(200, value.encode())

            def _registry(self, p: list[str]) -> None:
                if not p or p == [""]:
                    return self._send(200, {})
                if "manifests" in p:
                    i = p.index("manifests")
                    ref = "/".join(p[:i]) + ":" + p[i + 1]
                    if ref in cloud.images:
                        return self._send(200, {"schemaVersion": 2}, {"Docker-Content-Digest": "sha256:" + "0" * 64})
                return self._send(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})

            def _logging(self, action: str) -> None:
                body = self._body()
                if action == "entries:write":
                    with cloud.lock:
                        seen = {e.get("insertId") for e in cloud.entries}
                        for entry in body.get("entries", []):
                            if entry.get("insertId") not in seen:
                                cloud.entries.append({**entry, "_seq": len(cloud.entries)})
                    return self._send(200, {})
                cloud.log_filters.append(str(body.get("filter", "")))
                try:
                    found = [e for e in cloud.entries if matches(body.get("filter", ""), e)]
                except FilterError as exc:
                    raise ApiFail(400, f"Invalid filter: {exc}", "badRequest") from None
                desc = "desc" in str(body.get("orderBy", "")).lower()
                found.sort(key=lambda e: (e.get("timestamp", ""), e["_seq"]), reverse=desc)
                start = int(body.get("pageToken") or 0)
                size = int(body.get("pageSize") or 1000)
                page = [{k: v for k, v in e.items() if k != "_seq"} for e in found[start:start + size]]
                out: dict[str, Any] = {"entries": page}
                if start + size < len(found):
                    out["nextPageToken"] = str(start + size)
                return self._send(200, out)

        return Handler


def _label_filter(text: str, labels: dict[str, str]) -> bool:
    """``labels.k = "v" AND ...`` (what the backend sends); an empty filter matches everything."""
    for clause in filter(None, (c.strip() for c in text.split(" AND "))):
        key, _, value = clause.partition("=")
        key = key.strip().removeprefix("labels.").strip()
        if labels.get(key) != value.strip().strip('"'):
            return False
    return True


@contextmanager
def fake_cloud(root: Path, **kwargs: Any) -> Iterator[FakeCloud]:
    cloud = FakeCloud(root, **kwargs)
    try:
        yield cloud
    finally:
        cloud.close()
