"""The gce backend's test bed: a project on ``jobs.backend: gce`` pointed at the loopback fake
Compute Engine / metadata / registry / Cloud Logging server (tests/fakes/gce.py) and at
gcp-storage-emulator, with short timings (boot delay, polls, syncs) so runs finish in seconds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.gce import FakeCloud
from tests.run_helpers import Env, make_env

BUCKET = "test-bucket"
ZONES = ["us-central1-a", "us-central1-b", "us-central1-c"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def storage_emulator() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port",
                             str(port), "--in-memory"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the GCS emulator did not start") from None
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# Against a real project instead of the fakes (see docs/cloud.md, "Testing against a real project"):
# GF_REAL_GCE_PROJECT, GF_REAL_GCS_BUCKET, GF_REAL_ZONES (comma-separated), GF_REAL_REGISTRY.
REAL = {k: os.environ.get(f"GF_REAL_{k}") for k in ("GCE_PROJECT", "GCS_BUCKET", "ZONES", "REGISTRY")}


def real_project() -> bool:
    return all(REAL.values())


def needs_fake() -> None:
    """Skip a test that scripts the fake (stockouts, preemptions, ...) when running against a real project."""
    if real_project():
        pytest.skip("scripts the fake Compute Engine; not possible against a real project")


class CloudEnv:
    """A gce project (``env``), the fake cloud (``cloud``) and a storage client on the emulator."""

    def __init__(self, env: Env, cloud: FakeCloud, storage: Any, bucket: str = "test-bucket"):
        self.env = env
        self.cloud = cloud
        self.storage = storage
        self.bucket = bucket
        self.real = real_project()

    @property
    def project(self) -> Any:
        return self.env.project

    def image(self, kind: str = "cpu") -> str:
        return f"127.0.0.1:{self.cloud.port}/fake-project/goldfish/proj-{kind}:latest"

    def blobs(self, prefix: str) -> list[str]:
        return sorted(b.name for b in self.storage.list_blobs(BUCKET, prefix=prefix))


def make_cloud_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage_emulator: str,
                   fake: dict[str, Any] | None = None, **gce: Any) -> Iterator[CloudEnv]:
    if real_project():
        yield from _real_env(tmp_path, monkeypatch)
        return
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_emulator)
    from google.cloud import storage

    client = storage.Client()
    if client.lookup_bucket(BUCKET) is None:
        client.create_bucket(BUCKET)
    cloud = FakeCloud(tmp_path / "cloud", project="fake-project", **(fake or {}))
    try:
        env = make_env(tmp_path, monkeypatch)
        settings = {
            "project_id": "fake-project", "zones": list(ZONES),
            "artifact_registry": f"127.0.0.1:{cloud.port}/fake-project/goldfish",
            "endpoints": {"compute": cloud.url, "logging": cloud.url, "anonymous": True},
            "initial_backoff_sec": 0.1, "backoff_multiplier": 1.0, "poll_seconds": 0.3, "search_timeout_sec": 60,
            **gce,
        }
        env.configure(jobs={"backend": "gce"}, gcs={"bucket": BUCKET}, gce=settings,
                      defaults={"log_sync_interval": 1})
        ce = CloudEnv(env, cloud, client, BUCKET)
        cloud.add_image(ce.image("cpu"))
        cloud.add_image(ce.image("gpu"))
        yield ce
    finally:
        cloud.close()


@pytest.fixture
def cloud_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage_emulator: str) -> Iterator[CloudEnv]:
    yield from make_cloud_env(tmp_path, monkeypatch, storage_emulator)


def _real_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudEnv]:
    """A project on a real Google Cloud project (Application Default Credentials)."""
    from google.cloud import storage

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    env = make_env(tmp_path, monkeypatch)
    env.configure(jobs={"backend": "gce"}, gcs={"bucket": REAL["GCS_BUCKET"]},
                  gce={"project_id": REAL["GCE_PROJECT"], "zones": str(REAL["ZONES"]).split(","),
                       "artifact_registry": REAL["REGISTRY"]})
    cloud = FakeCloud(tmp_path / "unused")  # nothing talks to it; tests that need it skip
    try:
        yield CloudEnv(env, cloud, storage.Client(project=REAL["GCE_PROJECT"]), str(REAL["GCS_BUCKET"]))
    finally:
        cloud.close()

