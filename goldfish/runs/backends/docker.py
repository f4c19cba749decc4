"""The docker backend: one container per stage run on the local daemon (docker-py, never the CLI).

The container is described by ``container.ContainerSpec`` (written by the runner while preparing,
in ``launch_request.json``). Files under the stage's run dir: ``launch.json`` (container id, name,
launch id, image; written between create and start, so a launch is always discoverable),
``exit_code`` (copied from the container's recorded state when it is first seen ended, so the
evidence survives the container's removal) and ``logs/stdout.log`` (the stage's output, written by
the container itself through the ``/mnt/logs`` mount, so nothing is lost while no runner watches).

Every stop and removal first proves the container is ours: the id recorded at launch *and* the
``run_id``/``launch_id`` labels must match. A restarted runner finds a launch it never recorded by
label (``find_launch``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.fsutil import atomic_write
from goldfish.runs.backends import dockerd
from goldfish.runs.backends.base import (
    Availability,
    BackendUnavailable,
    Capabilities,
    Handle,
    LaunchSpec,
    Status,
)
from goldfish.runs.backends.container import LABEL_LAUNCH, LABEL_RUN, ContainerSpec, Mount
from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from docker.models.containers import Container

LAUNCH_FILE = "launch.json"
EXIT_FILE = "exit_code"
LOGS_DIR = "/mnt/logs"
ALIVE_STATES = ("created", "running", "restarting", "paused")
# Output goes to the run's log file from inside the container; the stage's argv is passed as
# positional parameters, never interpolated into the script.
LOG_WRAPPER = ["/bin/sh", "-c", f'exec "$@" >>{LOGS_DIR}/stdout.log 2>&1', "goldfish-stage"]


def _read_exit(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


class DockerBackend:
    """Containers on a Docker daemon (``docker.host``, see ``dockerd.resolve_host``)."""

    name = "docker"

    def __init__(self, host: str | None = None):
        self.host = dockerd.resolve_host(host)

    def capabilities(self) -> Capabilities:
        return Capabilities(reattach=True, signals=True, live_logs=True, memory_limit=True, gpus=True)

    def availability(self, *, gpus: int = 0) -> Availability:
        return dockerd.daemon_availability(self.host, gpus=gpus)

    def warm(self) -> None:
        """Import docker-py and connect (≈0.2 s) while the runner prepares the stage."""
        try:
            import docker.types  # noqa: F401 - the import is the point

            dockerd.client(self.host).ping()
        except Exception:
            pass  # availability() reports it properly

    # ---------------------------------------------------------------- helpers
    def _client(self) -> Any:
        try:
            return dockerd.client(self.host)
        except ImportError as exc:
            raise BackendUnavailable(Availability.refused(f"docker-py is missing ({exc}).",
                                                          "pip install 'docker>=7.1,<8'.")) from None

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        found = dockerd.daemon_availability(self.host)
        if found.ok:
            found = Availability.refused(f"the Docker daemon at {self.host} failed: {exc}", dockerd.SETUP_FIX)
        return BackendUnavailable(found)

    def _container(self, handle: Handle) -> Container | None:
        """The container of ``handle`` if it still exists *and* carries this launch's labels."""
        from docker.errors import NotFound

        try:
            container = self._client().containers.get(handle["container_id"])
        except NotFound:
            return None
        except Exception as exc:
            if dockerd.is_daemon_error(exc):
                raise self._unavailable(exc) from None
            raise
        labels = container.labels or {}
        if labels.get(LABEL_RUN) != handle.get("run_id") or labels.get(LABEL_LAUNCH) != handle.get("launch_id"):
            return None  # not ours: never touched
        return container

    # ------------------------------------------------------------------ launch
    def launch(self, spec: LaunchSpec) -> Handle:
        from docker.errors import APIError, ImageNotFound
        from docker.types import DeviceRequest
        from docker.types import Mount as DockerMount

        raw = spec.extra.get("container")
        if not isinstance(raw, dict):
            raise OSError("the launch request has no container spec (prepare the stage again)")
        cspec = ContainerSpec.from_dict(raw)
        run_dir = spec.run_dir
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        spec.log_path.touch(exist_ok=True)
        (run_dir / EXIT_FILE).unlink(missing_ok=True)
        mounts = [*cspec.mounts, Mount(str(run_dir / "logs"), LOGS_DIR, read_only=False)]
        kwargs: dict[str, Any] = {
            "image": cspec.image,
            "command": [*LOG_WRAPPER, *cspec.command],
            "entrypoint": [],
            "name": cspec.name,
            "environment": cspec.env,
            "labels": cspec.labels,
            "working_dir": cspec.working_dir,
            "mounts": [DockerMount(m.target, m.source, type="bind", read_only=m.read_only) for m in mounts],
            "network_mode": "bridge" if cspec.network == "bridge" else "none",
            "init": True,  # tini as PID 1: SIGTERM reaches the stage with its default disposition
            "detach": True,
            "stdin_open": False,
            "log_config": {"type": "json-file", "config": {"max-size": "1m", "max-file": "1"}},
        }
        if cspec.user:
            kwargs["user"] = cspec.user
        if cspec.memory_mb:
            kwargs["mem_limit"] = f"{int(cspec.memory_mb)}m"
            kwargs["memswap_limit"] = f"{int(cspec.memory_mb)}m"
        if cspec.cpus:
            kwargs["nano_cpus"] = int(cspec.cpus * 1e9)
        if cspec.pids_limit:
            kwargs["pids_limit"] = int(cspec.pids_limit)
        if cspec.gpus:
            kwargs["device_requests"] = [DeviceRequest(count=cspec.gpus, capabilities=[["gpu"]])]
        client = self._client()
        try:
            container = client.containers.create(**kwargs)
        except ImageNotFound:
            raise OSError(f"image {cspec.image} is not on the Docker daemon at {self.host}; it is built while"
                          " the stage prepares: run the stage again") from None
        except APIError as exc:
            raise OSError(f"the Docker daemon refused the container: {exc.explanation or exc}") from None
        except Exception as exc:
            if dockerd.is_daemon_error(exc):
                raise self._unavailable(exc) from None
            raise
        handle: Handle = {
            "container_id": container.id,
            "name": cspec.name,
            "run_id": cspec.labels.get(LABEL_RUN, spec.run_id),
            "launch_id": cspec.labels.get(LABEL_LAUNCH, ""),
            "image": cspec.image,
            "image_id": container.attrs.get("Image"),
            "host": self.host,
            "started_at": now_iso(),
            "run_dir": str(run_dir),
            "cmd": cspec.command,
        }
        atomic_write(run_dir / LAUNCH_FILE, json.dumps(handle))
        try:
            container.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            (run_dir / LAUNCH_FILE).unlink(missing_ok=True)
            if dockerd.is_daemon_error(exc):
                raise self._unavailable(exc) from None
            explanation = getattr(exc, "explanation", None) or str(exc)
            raise OSError(f"the container did not start: {explanation}") from None
        return handle

    def find_launch(self, run_dir: Path) -> Handle | None:
        try:
            handle = json.loads((run_dir / LAUNCH_FILE).read_text())
        except (FileNotFoundError, ValueError):
            handle = None
        if isinstance(handle, dict) and handle.get("container_id"):
            return handle
        return self._adopt(run_dir)

    def _adopt(self, run_dir: Path) -> Handle | None:
        """A container created for this run whose launch.json was never written (the runner died in
        between): one never started is removed (the launch is redone); a started one is adopted."""
        run_id = run_dir.name
        try:
            found = self._client().containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
        except Exception as exc:
            if dockerd.is_daemon_error(exc):
                raise self._unavailable(exc) from None
            raise
        adopted: Handle | None = None
        for container in found:
            labels = container.labels or {}
            if container.status == "created" or adopted is not None:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                continue
            adopted = {
                "container_id": container.id, "name": container.name, "run_id": run_id,
                "launch_id": labels.get(LABEL_LAUNCH, ""), "image": (container.attrs.get("Config") or {}).get("Image"),
                "image_id": container.attrs.get("Image"), "host": self.host, "started_at": now_iso(),
                "run_dir": str(run_dir), "adopted": True,
            }
            atomic_write(run_dir / LAUNCH_FILE, json.dumps(adopted))
        return adopted

    # ------------------------------------------------------------------ watch
    def status(self, handle: Handle) -> Status:
        exit_file = Path(handle["run_dir"]) / EXIT_FILE
        recorded = _read_exit(exit_file)
        if recorded is not None:
            return Status(alive=False, exit_code=recorded)
        container = self._container(handle)
        if container is None:
            return Status(alive=False, exit_code=_read_exit(exit_file))
        state = container.attrs.get("State") or {}
        if state.get("Status") == "created":  # launch recorded, start not done (the runner died)
            with contextlib.suppress(Exception):
                container.start()
            return Status(alive=True)
        if state.get("Status") in ALIVE_STATES:
            return Status(alive=True)
        code = state.get("ExitCode")
        if not isinstance(code, int):
            return Status(alive=False, exit_code=None)
        if state.get("OOMKilled") and code == 0:
            code = 137
        atomic_write(exit_file, f"{code}\n")  # evidence that outlives the container
        return Status(alive=False, exit_code=code)

    def logs(self, handle: Handle, offset: int = 0, limit: int = 1 << 20) -> tuple[bytes, int]:
        path = Path(handle["run_dir"]) / "logs" / "stdout.log"
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(limit)
        except FileNotFoundError:
            return b"", offset
        return data, offset + len(data)

    # ------------------------------------------------------------------- stop
    def cancel(self, handle: Handle, grace_seconds: float) -> Status:
        container = self._container(handle)
        if container is not None and container.status in ALIVE_STATES:
            with contextlib.suppress(Exception):
                container.kill(signal="SIGTERM")
            deadline = time.monotonic() + max(0.0, grace_seconds)
            status = self.status(handle)
            while status.alive and time.monotonic() < deadline:
                time.sleep(0.1)
                status = self.status(handle)
            if status.alive:
                with contextlib.suppress(Exception):
                    container.kill(signal="SIGKILL")
                deadline = time.monotonic() + 10.0
                while status.alive and time.monotonic() < deadline:
                    time.sleep(0.05)
                    status = self.status(handle)
        status = self.status(handle)
        self.cleanup(handle)
        return status

    def cleanup(self, handle: Handle) -> None:
        """Remove the container once it has ended and its exit code is on disk."""
        container = self._container(handle)
        if container is None:
            return
        if container.status in ALIVE_STATES and container.status != "created":
            return
        self.status(handle)  # records the exit code first
        with contextlib.suppress(Exception):
            container.remove(force=True)


def new_launch_id() -> str:
    return secrets.token_hex(4)
