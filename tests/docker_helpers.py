"""The real Docker daemon for the docker backend tests (started by scripts/setup-docker.sh) and a
demo project on either backend."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from goldfish.demo.tour import SOURCE, DemoTour, _copy_fixture
from goldfish.demo.data import export_digits
from goldfish.init import init_project
from goldfish.project import Project
from goldfish.runs.backends import dockerd

REPO = Path(__file__).resolve().parent.parent
# Project images are named after the project: a name of this test session's own means an image left
# on the daemon by an earlier, interrupted session never stands in for one a test must build.
SESSION = uuid.uuid4().hex[:8]


def session_name(base: str) -> str:
    return f"{base}-{SESSION}"


def name_project(root: Path, base: str) -> None:
    """Give an existing test project this session's own name (its image repository follows it)."""
    path = root / "goldfish.yaml"
    data = yaml.safe_load(path.read_text())
    data["project_name"] = session_name(base)
    path.write_text(yaml.safe_dump(data))
SETUP = "scripts/setup-docker.sh"


def daemon() -> Any:
    """A client of the test daemon; fails (never skips) with the fix when it is not running."""
    found = dockerd.daemon_availability()
    if not found.ok:
        pytest.fail(f"The docker tests need the daemon that {SETUP} starts: {found.render()}")
    return dockerd.client()


def require_base_image() -> str:
    from goldfish.images.recipes import base_tag

    tag = base_tag("cpu")
    try:
        daemon().images.get(tag)
    except Exception:
        pytest.fail(f"The CPU base image {tag} is missing: run {SETUP} (it builds it once per machine).")
    return tag


def configure(root: Path, **sections: dict[str, Any]) -> None:
    path = root / "goldfish.yaml"
    data = yaml.safe_load(path.read_text())
    for key, values in sections.items():
        data.setdefault(key, {}).update(values)
    path.write_text(yaml.safe_dump(data))


def demo_project(root: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The demo's project (digits source registered, workspace digits_mlp mounted in w1)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    init_project(root, session_name(root.name))
    configure(root, jobs={"backend": backend, "runner_lease_seconds": 5}, pre_run_review={"enabled": False})
    project = Project.open(root, source="test")
    path = project.root / "data" / "digits.npz"
    metadata = export_digits(path)
    project.sources.register_source(
        SOURCE, str(path), metadata["description"], "digits for the docker tests", metadata,
        format="npz", size_bytes=metadata["source"]["size_bytes"])
    project.workspaces.create("digits_mlp", "digits on docker", "docker backend test workspace")
    mounted = project.workspaces.mount("digits_mlp", "w1", "docker backend test: mount the demo")
    _copy_fixture(DemoTour(root).fixture, Path(mounted.path))
    return project


def stage_config(slot: Path, stage: str, **values: Any) -> None:
    path = slot / "configs" / f"{stage}.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    data.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def containers_of(run_id: str) -> list[Any]:
    from goldfish.runs.backends.container import LABEL_RUN

    return daemon().containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})


@contextlib.contextmanager
def fresh_images() -> Iterator[None]:
    """Images built inside are removed after, so every test run builds what it asserts is built
    (and the daemon does not grow from run to run). Project images are named after the test
    projects, never after the base."""
    client = daemon()
    before = {image.id for image in client.images.list()}
    try:
        yield
    finally:
        for image in client.images.list():
            if image.id not in before:
                with contextlib.suppress(Exception):
                    client.images.remove(image.id, force=True)
            else:  # an identical build under this session's name: drop only the new tag
                for tag in image.tags:
                    if SESSION in tag:
                        with contextlib.suppress(Exception):
                            client.images.remove(tag)


class VanishingDaemon:
    """A unix socket relaying to the real daemon that disappears (its path unlinked) as soon as a
    client asks ``/_ping``: ``run()``'s availability check gets through, and anything after it —
    the runner preparing the stage — finds no daemon. Deterministic, unlike racing the runner."""

    def __init__(self, path: Path):
        import socket
        import threading

        self.path = path
        self.target = dockerd.resolve_host().removeprefix("unix://")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.gone = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self.gone.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            threading.Thread(target=self._pipe, args=(conn, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, conn, False), daemon=True).start()

    def _pipe(self, src: Any, dst: Any, watch: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if watch and b"/_ping" in data and not self.gone.is_set():
                    self.gone.set()
                    self.path.unlink(missing_ok=True)  # no new connection can reach the daemon
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(2)

    def close(self) -> None:
        self.gone.set()
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.server.close()


# ------------------------------------------------------------------ a registry on 127.0.0.1
REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(REGISTRY_BIN).exists():
        pytest.fail(f"{REGISTRY_BIN} is missing: run scripts/setup-docker.sh (it installs docker-registry).")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"docker-registry did not start: {(root / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
