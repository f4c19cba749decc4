"""Helpers for data-registry tests: real data files, their metadata, store snapshots, run rows,
and a GCS emulator process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from goldfish.init import init_project
from goldfish.project import Project

Doc = dict[str, Any]
CREATED = "2025-12-24T12:00:00Z"


def new_project(tmp_path: Path, *, gcs: bool = False) -> Project:
    init_project(tmp_path / "proj", "proj")
    if gcs:
        with open(tmp_path / "proj" / "goldfish.yaml", "a") as f:
            f.write("gcs:\n  bucket: test-bucket\n")
    project = Project.open(tmp_path / "proj", source="test")
    project.store  # noqa: B018 - create the store before snapshots
    return project


def write_npy(path: Path, rows: int = 10, cols: int = 3) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.save(f, np.arange(rows * cols, dtype=np.float32).reshape(rows, cols))
    return path.stat().st_size


def npy_meta(size: int | None, *, rows: int = 10, cols: int = 3, description: str | None = None) -> Doc:
    return {
        "schema_version": 1,
        "description": description or "Synthetic float32 features for registry tests",
        "source": {"format": "npy", "size_bytes": size, "created_at": CREATED},
        "schema": {
            "kind": "tensor",
            "arrays": {
                "features": {
                    "role": "features",
                    "shape": [rows, cols],
                    "dtype": "float32",
                    "feature_names": {"kind": "list", "values": [f"f{i}" for i in range(cols)]},
                }
            },
            "primary_array": "features",
        },
    }


def write_csv(path: Path, rows: int = 5) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,label\n" + "".join(f"{i},{i % 2}\n" for i in range(rows)))
    return path.stat().st_size


def csv_meta(size: int | None, rows: int = 5) -> Doc:
    return {
        "schema_version": 1,
        "description": "Tiny labelled table for registry tests",
        "source": {"format": "csv", "size_bytes": size, "created_at": CREATED, "format_params": {"delimiter": ","}},
        "schema": {"kind": "tabular", "row_count": rows, "columns": ["id", "label"],
                   "dtypes": {"id": "int64", "label": "int64"}},
    }


REASON = "registering data for the registry tests"


def snapshot(project: Project) -> dict[str, bytes]:
    """Every file of the store (tables and event logs), to prove a refused call wrote nothing."""
    out = {}
    for root, _dirs, files in os.walk(project.store_dir):
        for name in files:
            if name == ".lock":
                continue
            path = Path(root) / name
            out[str(path.relative_to(project.store_dir))] = path.read_bytes()
    return out


def put_run(
    project: Project,
    run_id: str,
    *,
    workspace: str = "ws1",
    stage: str = "train",
    state: str = "completed",
    outputs: dict[str, Doc] | None = None,
    inputs: dict[str, Doc] | None = None,
    **extra: Any,
) -> Doc:
    """A stage run row as the run engine stores it (DESIGN run rows), for registry-only tests."""
    doc = {
        "workspace": workspace, "stage": stage, "state": state, "pipeline_run_id": "prun-00000001",
        "created_at": "2030-01-01T00:00:00.000000Z", "inputs": inputs or {}, "outputs": outputs or {},
        "inputs_override": {}, **extra,
    }
    with project.store.transaction() as tx:
        tx.table("run_index").put(run_id, {"workspace": workspace, "kind": "stage"})
        tx.table("runs", f"ws/{workspace}").put(run_id, doc)
    return {**doc, "id": run_id}


def output_row(path: Path, fmt: str, *, exists: bool = True) -> Doc:
    return {"location": str(path), "type": fmt, "format": fmt, "exists": exists,
            "size_bytes": path.stat().st_size if exists and path.is_file() else None, "artifact": False}


# --------------------------------------------------------------------------- GCS emulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def gcs_emulator() -> Iterator[str]:
    """A gcp-storage-emulator process on a free loopback port; yields its URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port),
         "--in-memory"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
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


@pytest.fixture
def gcs(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A storage client on the emulator with bucket test-bucket (created once)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    from google.cloud import storage

    client = storage.Client()
    if client.lookup_bucket("test-bucket") is None:
        client.create_bucket("test-bucket")
    return client
