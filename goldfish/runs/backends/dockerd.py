"""Reaching the Docker daemon: which address, a client, and whether it answers.

Shared by the docker backend and the image builder (``goldfish/images``). The address is, in
order: ``docker.host`` in goldfish.yaml, ``$DOCKER_HOST``, the daemon ``scripts/setup-docker.sh``
starts (``unix:///run/goldfish-docker/docker.sock``) when its socket exists, then Docker's default
``unix:///var/run/docker.sock``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.runs.backends.base import Availability
import contextlib

if TYPE_CHECKING:
    import docker

SETUP_SOCKET = Path("/run/goldfish-docker/docker.sock")
DEFAULT_SOCKET = Path("/var/run/docker.sock")
API_TIMEOUT = 60
SETUP_FIX = ("Start the daemon: run scripts/setup-docker.sh (installs docker.io and starts dockerd on"
             f" unix://{SETUP_SOCKET}), or set docker.host in goldfish.yaml to a running daemon, or use"
             " jobs.backend: local.")

_clients: dict[str, docker.DockerClient] = {}
_lock = threading.Lock()


def resolve_host(configured: str | None = None) -> str:
    if configured:
        return configured
    env = os.environ.get("DOCKER_HOST")
    if env:
        return env
    if SETUP_SOCKET.exists():
        return f"unix://{SETUP_SOCKET}"
    return f"unix://{DEFAULT_SOCKET}"


def client(host: str | None = None) -> docker.DockerClient:
    """A cached client for ``host`` (resolved as above). Raises ImportError without docker-py."""
    import docker

    address = resolve_host(host)
    with _lock:
        found = _clients.get(address)
        if found is None:
            found = docker.DockerClient(base_url=address, timeout=API_TIMEOUT, version="auto")
            _clients[address] = found
        return found


def is_daemon_error(exc: BaseException) -> bool:
    """True when ``exc`` means the daemon cannot be reached (not that a request was refused)."""
    import requests

    try:
        from docker.errors import DockerException
    except ImportError:  # pragma: no cover - docker-py is a dependency
        return False
    if isinstance(exc, requests.exceptions.ConnectionError | ConnectionError | FileNotFoundError):
        return True
    return isinstance(exc, DockerException) and "Error while fetching server API version" in str(exc)


def daemon_availability(host: str | None = None, *, gpus: int = 0) -> Availability:
    """Whether the daemon answers (and has an NVIDIA runtime when ``gpus``); never raises."""
    address = resolve_host(host)
    if address.startswith("unix://") and not Path(address[len("unix://"):]).exists():
        return Availability.refused(f"no Docker daemon socket at {address}.", SETUP_FIX)
    try:
        # ping is cheap; the runtimes (GPU question) need the full info call.
        info: dict[str, Any] = client(address).info() if gpus else {"ping": client(address).ping()}
    except ImportError as exc:
        return Availability.refused(f"the docker Python package is missing ({exc}).",
                                    "pip install 'docker>=7.1,<8' into Goldfish's environment.")
    except Exception as exc:
        _forget(address)
        return Availability.refused(f"the Docker daemon at {address} does not answer ({type(exc).__name__}:"
                                    f" {str(exc)[:200]}).", SETUP_FIX)
    runtimes = info.get("Runtimes") or {}
    has_gpus = "nvidia" in runtimes if gpus else False
    if gpus and not has_gpus:
        return Availability.refused(
            f"the stage's compute profile asks for {gpus} GPU(s), but the Docker daemon at {address} has no"
            f" NVIDIA runtime (runtimes: {', '.join(sorted(runtimes)) or 'none'}).",
            "Install the NVIDIA Container Toolkit and restart the daemon, use a CPU compute profile, or run"
            " GPU stages with jobs.backend: gce.")
    return Availability(ok=True, gpus=has_gpus)


def _forget(address: str) -> None:
    with _lock:
        stale = _clients.pop(address, None)
    if stale is not None:
        with contextlib.suppress(Exception):
            stale.close()
