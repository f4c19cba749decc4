"""The runner lease of a pipeline run: ``.goldfish/runs/<prun>/lease.json``.

``{pid, proc_start, host, runner_id, renewed_at}``, written atomically under a per-run file lock
(``lease.lock``; independent of the project lock, so a busy store never lets a lease lapse). The
runner renews it every lease/3 seconds from a thread. A lease is *live* while its runner process
exists (same host: pid and process start time) — or, for a runner that has not started yet or
runs on another host, until ``renewed_at + runner_lease_seconds``. Only a dead lease may be taken
over; a runner that finds its lease taken stops at once.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from goldfish.procs import pid_alive, proc_start_time
from goldfish.fsutil import atomic_write

LEASE_FILE = "lease.json"


def new_runner_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Lease:
    runner_id: str
    pid: int | None
    proc_start: int | None
    host: str
    renewed_at: float

    def live(self, lease_seconds: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if self.pid is not None and self.host == socket.gethostname():
            return pid_alive(self.pid, self.proc_start)
        return now < self.renewed_at + lease_seconds


class LeaseFile:
    def __init__(self, prun_dir: Path):
        self.dir = prun_dir
        self.path = prun_dir / LEASE_FILE
        prun_dir.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(prun_dir / "lease.lock"), timeout=30)

    def read(self) -> Lease | None:
        try:
            raw: dict[str, Any] = json.loads(self.path.read_text())
            return Lease(
                runner_id=str(raw["runner_id"]),
                pid=raw.get("pid"),
                proc_start=raw.get("proc_start"),
                host=str(raw.get("host") or ""),
                renewed_at=float(raw["renewed_at"]),
            )
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def _write(self, lease: Lease) -> None:
        atomic_write(self.path, json.dumps(lease.__dict__), durable=False)

    def reserve(self, lease_seconds: float) -> str | None:
        """Claim a dead (or missing) lease for a runner about to be spawned; its id, or None."""
        with self.lock:
            current = self.read()
            if current is not None and current.live(lease_seconds):
                return None
            runner_id = new_runner_id()
            self._write(Lease(runner_id, None, None, socket.gethostname(), time.time()))
            return runner_id

    def acquire(self, runner_id: str, lease_seconds: float) -> bool:
        """Called by the runner itself: take the lease reserved for it, or a dead one."""
        with self.lock:
            current = self.read()
            if current is not None and current.runner_id != runner_id and current.live(lease_seconds):
                return False
            pid = os.getpid()
            self._write(Lease(runner_id, pid, proc_start_time(pid), socket.gethostname(), time.time()))
            return True

    def renew(self, runner_id: str) -> bool:
        """Refresh our lease; False when another runner holds it now."""
        with self.lock:
            current = self.read()
            if current is None or current.runner_id != runner_id:
                return False
            self._write(
                Lease(runner_id, current.pid, current.proc_start, current.host, time.time())
            )
            return True

    def release(self, runner_id: str) -> None:
        with self.lock:
            current = self.read()
            if current is not None and current.runner_id == runner_id:
                self.path.unlink(missing_ok=True)


class LeaseKeeper(threading.Thread):
    """Renews the lease every ``lease_seconds / 3``; sets ``lost`` when it was taken over."""

    def __init__(self, lease: LeaseFile, runner_id: str, lease_seconds: float):
        super().__init__(name="goldfish-lease", daemon=True)
        self.lease = lease
        self.runner_id = runner_id
        self.interval = max(0.5, lease_seconds / 3)
        self.lost = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                if not self.lease.renew(self.runner_id):
                    self.lost.set()
                    return
            except OSError:
                continue  # a transient file error: try again next interval
