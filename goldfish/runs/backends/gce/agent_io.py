"""Network and process plumbing of the worker agent (standalone, stdlib only): the metadata server,
authenticated HTTP with retries, the GCS JSON API, the registry check, and the two ways to run a
stage (a Docker container through the Engine API socket, or a process group)."""


from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, UTC
import contextlib

SETUP_FAILED = 125


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def say(text: str) -> None:
    print(f"[goldfish-agent {now_iso()[:19]}Z] {text}", flush=True)


class Http:
    """JSON over HTTP(S) with a bearer token and retries on connection errors and 5xx/429."""

    def __init__(self, token: Callable[[], str]):
        self.token = token

    def request(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None,
                ok404: bool = False, tries: int = 4, timeout: float = 60) -> tuple[int, bytes, dict]:
        hdrs = {"Authorization": f"Bearer {self.token()}", **(headers or {})}
        delay = 0.5
        for attempt in range(tries):
            req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    return resp.status, resp.read(), dict(resp.headers)
            except urllib.error.HTTPError as exc:
                data = exc.read()
                if exc.code == 404 and ok404:
                    return 404, data, dict(exc.headers)
                if exc.code in (429, 500, 502, 503, 504) and attempt + 1 < tries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise RuntimeError(f"{method} {url.split('?')[0]} -> HTTP {exc.code}: {data[:300]!r}") from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt + 1 < tries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise RuntimeError(f"{method} {url.split('?')[0]} failed: {exc}") from None
        raise RuntimeError("unreachable")


class Metadata:
    def __init__(self) -> None:
        self.base = "http://" + os.environ.get("GCE_METADATA_HOST", "metadata.google.internal") + "/computeMetadata/v1/"
        self._token: tuple[str, float] = ("", 0.0)
        self._lock = threading.Lock()

    def get(self, path: str, default: str | None = None) -> str | None:
        req = urllib.request.Request(self.base + path, headers={"Metadata-Flavor": "Google"})
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.read().decode()
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return default
                time.sleep(0.2 * (attempt + 1))
            except (urllib.error.URLError, OSError):
                time.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"metadata server unreachable for {path}")

    def attr(self, name: str, default: str | None = None) -> str | None:
        return self.get(f"instance/attributes/{name}", default)

    def token(self) -> str:
        with self._lock:
            tok, until = self._token
            if time.time() < until - 60:
                return tok
            data = json.loads(self.get("instance/service-accounts/default/token") or "{}")
            self._token = (data.get("access_token", ""), time.time() + float(data.get("expires_in", 300)))
            return self._token[0]


class Gcs:
    """The GCS JSON API: what the agent needs of it."""

    def __init__(self, http: Http, endpoint: str, bucket: str):
        self.http, self.base, self.bucket = http, endpoint.rstrip("/"), bucket

    def _q(self, key: str) -> str:
        return urllib.parse.quote(key, safe="")

    def meta(self, key: str) -> dict | None:
        status, data, _ = self.http.request("GET", f"{self.base}/storage/v1/b/{self.bucket}/o/{self._q(key)}", ok404=True)
        return json.loads(data) if status == 200 else None

    def read(self, key: str) -> bytes | None:
        status, data, _ = self.http.request(
            "GET", f"{self.base}/download/storage/v1/b/{self.bucket}/o/{self._q(key)}?alt=media", ok404=True)
        return data if status == 200 else None

    def download(self, key: str, dest: str) -> None:
        meta = self.meta(key)
        if meta is None:
            raise RuntimeError(f"gs://{self.bucket}/{key} does not exist")
        data = self.read(key)
        if data is None:
            raise RuntimeError(f"gs://{self.bucket}/{key} vanished while being read")
        want = meta.get("md5Hash")
        got = base64.b64encode(hashlib.md5(data).digest()).decode()
        if len(data) != int(meta.get("size", len(data))) or (want and want != got):
            raise RuntimeError(f"download of gs://{self.bucket}/{key} is corrupted (md5 {got} != {want})")
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        tmp = dest + ".gf-tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)

    def write(self, key: str, data: bytes) -> None:
        url = f"{self.base}/upload/storage/v1/b/{self.bucket}/o?uploadType=media&name={self._q(key)}"
        self.http.request("POST", url, data, {"Content-Type": "application/octet-stream"})

    def upload(self, path: str, key: str) -> None:
        size = os.path.getsize(path)
        if size <= 8 << 20:
            with open(path, "rb") as f:
                self.write(key, f.read())
            return
        # Resumable upload in 8 MiB chunks: a dropped connection costs one chunk, not the file.
        url = f"{self.base}/upload/storage/v1/b/{self.bucket}/o?uploadType=resumable&name={self._q(key)}"
        _, _, headers = self.http.request("POST", url, b"{}", {"Content-Type": "application/json",
                                                             "X-Upload-Content-Length": str(size)})
        session = headers.get("Location") or headers.get("location")
        if not session:
            raise RuntimeError(f"resumable upload of {key}: no session URL")
        chunk = 8 << 20
        with open(path, "rb") as f:
            start = 0
            while start < size:
                data = f.read(chunk)
                end = start + len(data) - 1
                try:
                    self.http.request("PUT", session, data, {"Content-Range": f"bytes {start}-{end}/{size}"})
                except RuntimeError as exc:
                    if "HTTP 308" not in str(exc):
                        raise
                start = end + 1

    def list(self, prefix: str) -> list[dict]:
        out, token = [], ""
        while True:
            url = f"{self.base}/storage/v1/b/{self.bucket}/o?prefix={self._q(prefix)}" + (f"&pageToken={token}" if token else "")
            _, data, _ = self.http.request("GET", url)
            page = json.loads(data or b"{}")
            out.extend(page.get("items", []))
            token = page.get("nextPageToken") or ""
            if not token:
                return out

    def delete(self, key: str) -> None:
        self.http.request("DELETE", f"{self.base}/storage/v1/b/{self.bucket}/o/{self._q(key)}", ok404=True)


def _files(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return out


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=300)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class DockerRuntime:
    """The stage as a container, through the Docker Engine API on the VM's socket."""

    def __init__(self, root: str, instance: str):
        self.root, self.instance = root, instance
        self.sock = os.environ.get("GOLDFISH_VM_DOCKER_SOCKET", "/var/run/docker.sock")
        # The VM's own networking decides how a container reaches GCS; "bridge" on a normal VM.
        self.network = os.environ.get("GOLDFISH_VM_CONTAINER_NETWORK", "bridge")
        self.container: str | None = None

    def _call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        conn = UnixHTTPConnection(self.sock)
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        out = resp.read()
        conn.close()
        return resp.status, out

    def prepare(self, image: str, token: str) -> None:
        repo, _, tag = image.rpartition(":")
        auth = base64.urlsafe_b64encode(json.dumps(
            {"username": "oauth2accesstoken", "password": token, "serveraddress": image.split("/")[0]}).encode()).decode()
        status, out = self._call("POST", f"/images/create?fromImage={urllib.parse.quote(repo)}&tag={tag}",
                                 headers={"X-Registry-Auth": auth})
        if status != 200 or b'"error"' in out:
            raise RuntimeError(f"docker pull {image} failed: {out[-500:]!r}")

    def start(self, spec: dict, env: dict, log_path: str) -> None:
        binds = [f"{self.root}/app:/app:ro", f"{self.root}/mnt/inputs:/mnt/inputs:ro",
                 f"{self.root}/mnt/outputs:/mnt/outputs", f"{self.root}/preserve:/mnt/preserve"]
        host = {"Binds": binds, "NetworkMode": self.network, "ShmSize": 16 << 30}
        if spec.get("gpus"):
            host["DeviceRequests"] = [{"Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]}]
        body = {"Image": spec["image"], "Cmd": spec["argv"], "WorkingDir": "/app", "Entrypoint": [],
                "Env": [f"{k}={v}" for k, v in env.items()],
                "Labels": {**spec.get("labels", {}), "goldfish-instance": self.instance}, "HostConfig": host}
        status, out = self._call("POST", "/containers/create", body)
        if status != 201:
            raise RuntimeError(f"docker create failed: {out[-500:]!r}")
        self.container = json.loads(out)["Id"]
        status, out = self._call("POST", f"/containers/{self.container}/start")
        if status not in (204, 304):
            raise RuntimeError(f"docker start failed: {out[-500:]!r}")
        self._follow = threading.Thread(target=self._logs, args=(log_path,), daemon=True)
        self._follow.start()

    def _logs(self, log_path: str) -> None:
        conn = UnixHTTPConnection(self.sock)
        conn.request("GET", f"/containers/{self.container}/logs?follow=1&stdout=1&stderr=1")
        resp = conn.getresponse()
        with open(log_path, "ab", buffering=0) as log:
            while True:
                header = resp.read(8)  # multiplexed stream: 1 byte stream id, 3 pad, 4 size
                if len(header) < 8:
                    return
                log.write(resp.read(int.from_bytes(header[4:], "big")))

    def poll(self) -> int | None:
        status, out = self._call("GET", f"/containers/{self.container}/json")
        state = json.loads(out).get("State", {}) if status == 200 else {}
        if state.get("Running"):
            return None
        self._follow.join(timeout=10)
        code = int(state.get("ExitCode", SETUP_FAILED))
        self._call("DELETE", f"/containers/{self.container}?force=1")
        return code

    def signal(self, sig: int) -> None:
        name = "SIGKILL" if sig == signal.SIGKILL else "SIGTERM"
        self._call("POST", f"/containers/{self.container}/kill?signal={name}")


class ProcessRuntime:
    """The stage as a process group (a machine without Docker): the container paths /app and /mnt/...
    are mapped under the agent's root, ``python`` is GOLDFISH_VM_PYTHON."""

    def __init__(self, root: str):
        self.root = root
        self.proc: subprocess.Popen | None = None

    def _map(self, value: str) -> str:
        for path, local in (("/app", "/app"), ("/mnt/inputs", "/mnt/inputs"), ("/mnt/outputs", "/mnt/outputs"),
                            ("/mnt/preserve", "/preserve")):  # the same host dirs the container binds
            value = value.replace(path, self.root + local)
        return value

    def prepare(self, image: str, token: str) -> None:
        pass  # the registry check below stands for the pull

    def start(self, spec: dict, env: dict, log_path: str) -> None:
        env = {k: self._map(v) for k, v in env.items()}
        env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        extra = os.environ.get("GOLDFISH_VM_PYTHONPATH")
        if extra:
            env["PYTHONPATH"] = env.get("PYTHONPATH", "") + os.pathsep + extra
        argv = [self._map(a) for a in spec["argv"]]
        if argv and argv[0] in ("python", "python3"):
            argv[0] = os.environ.get("GOLDFISH_VM_PYTHON", sys.executable)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.root + "/app", env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def poll(self) -> int | None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def signal(self, sig: int) -> None:
        # Only while the child is unreaped: until then its pid (and so its group id) cannot be
        # reused; once reaped, the number may belong to a stranger.
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)


def registry_check(http: Http, image: str) -> None:
    """The image must exist in the registry (Docker Registry HTTP API v2, as Artifact Registry serves)."""
    ref, _, tag = image.rpartition(":")
    host, _, path = ref.partition("/")
    scheme = "http" if host.split(":")[0] in ("127.0.0.1", "localhost") else "https"
    status, _, _ = http.request("HEAD", f"{scheme}://{host}/v2/{path}/manifests/{tag}", ok404=True,
                                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    if status != 200:
        raise RuntimeError(f"image {image} is not in the registry")
