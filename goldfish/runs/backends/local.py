"""The local backend: each stage is a process group on this machine, led by ``launcher.py``.

Files under the stage's run dir: ``launch_spec.json`` (what to run), ``launch.json`` (pid, pgid,
process start time, cmd, started_at; written before ``launch`` returns), ``exit_code`` (written by
the launcher), ``logs/stdout.log``. Liveness compares the process start time recorded at launch,
so a recycled pid is never mistaken for the stage.

No signal reaches a process group unless it is proven to be the stage's (``owns``): its leader
runs with the start time recorded at launch, or a live member carries the run's id
(``GOLDFISH_RUN_ID``, set for the launcher and the stage) in its environment. After a crash or a
reboot the recorded pgid may name a stranger's group; then nothing is signalled and the run is
settled from its exit file, or as ``orphaned``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from goldfish.runs.backends.base import Availability, Capabilities, Handle, LaunchSpec, Status
from goldfish.fsutil import atomic_write
from goldfish.procs import group_carries, pid_alive, proc_start_time
from goldfish.timefmt import now_iso

LAUNCHER = Path(__file__).with_name("launcher.py")
EXIT_FILE = "exit_code"
LAUNCH_FILE = "launch.json"
SPEC_FILE = "launch_spec.json"
RUN_ENV = "GOLDFISH_RUN_ID"


def read_exit_code(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return int(text)
    except ValueError:
        return None  # never happens with the atomic writer; a torn file is no evidence


class LocalBackend:
    """Subprocess backend (the embedded default)."""

    name = "local"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def capabilities(self) -> Capabilities:
        return Capabilities(reattach=True, signals=True, live_logs=True, memory_limit=True, gpus=False)

    def availability(self, *, gpus: int = 0) -> Availability:
        if gpus:
            return Availability.refused(
                f"the local backend cannot give a stage GPUs ({gpus} asked for).",
                "Use a CPU compute profile, or jobs.backend: docker (with an NVIDIA runtime) or gce.")
        return Availability(ok=True)

    # ------------------------------------------------------------------ launch
    def launch(self, spec: LaunchSpec) -> Handle:
        run_dir = spec.run_dir
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        exit_file = run_dir / EXIT_FILE
        launch_file = run_dir / LAUNCH_FILE
        exit_file.unlink(missing_ok=True)
        spec_file = run_dir / SPEC_FILE
        atomic_write(
            spec_file,
            json.dumps(
                {
                    "argv": spec.argv,
                    "env": spec.env,
                    "cwd": str(spec.cwd),
                    "log_file": str(spec.log_path),
                    "exit_file": str(exit_file),
                    "launch_file": str(launch_file),
                    "memory_limit_mb": spec.memory_limit_mb,
                }
            ),
            durable=False,
        )
        with open(spec.log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-S", "-u", str(LAUNCHER), str(spec_file)],
                cwd=run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env={**os.environ, RUN_ENV: spec.run_id},  # how a later runner proves the group is ours
            )
        with self._lock:
            self._children[proc.pid] = proc
        handle: Handle = {
            "pid": proc.pid,
            "pgid": proc.pid,
            "proc_start": proc_start_time(proc.pid),
            "run_id": spec.run_id,
            "cmd": spec.argv,
            "started_at": now_iso(),
            "run_dir": str(run_dir),
        }
        # The launcher runs the stage only once this names it (see launcher.py).
        atomic_write(launch_file, json.dumps(handle))
        return handle

    def find_launch(self, run_dir: Path) -> Handle | None:
        try:
            handle = json.loads((run_dir / LAUNCH_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return handle if isinstance(handle, dict) and handle.get("pid") else None

    # ------------------------------------------------------------------ watch
    def _reap(self, pid: int) -> None:
        with self._lock:
            proc = self._children.get(pid)
        if proc is not None and proc.poll() is not None:
            with self._lock:
                self._children.pop(pid, None)

    def status(self, handle: Handle) -> Status:
        exit_file = Path(handle["run_dir"]) / EXIT_FILE
        code = read_exit_code(exit_file)
        if code is not None:
            self._reap(int(handle["pid"]))
            return Status(alive=False, exit_code=code)
        self._reap(int(handle["pid"]))
        if pid_alive(int(handle["pid"]), handle.get("proc_start")):
            return Status(alive=True)
        # The launcher writes the file before it exits: read again to close the race.
        return Status(alive=False, exit_code=read_exit_code(exit_file))

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
    def owns(self, handle: Handle) -> bool:
        """Proof that the recorded process group is still the stage's (see the module docstring)."""
        pid = int(handle["pid"])
        start = handle.get("proc_start")
        if start is not None and pid_alive(pid, start):
            return True
        run_id = str(handle.get("run_id") or Path(handle["run_dir"]).name)
        return group_carries(int(handle.get("pgid") or pid), RUN_ENV, run_id)

    def _signal_group(self, handle: Handle, sig: int) -> bool:
        """Signal the stage's group only when it is proven ours; whether a signal was sent."""
        if not self.owns(handle):
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(handle.get("pgid") or handle["pid"]), sig)
        return True

    def cancel(self, handle: Handle, grace_seconds: float) -> Status:
        status = self.status(handle)
        if not status.alive:  # already ended (or the pid is someone else's now): nothing to signal
            self.cleanup(handle)
            return status
        self._signal_group(handle, signal.SIGTERM)
        deadline = time.monotonic() + max(0.0, grace_seconds)
        status = self.status(handle)
        while status.alive and time.monotonic() < deadline:
            time.sleep(0.05)
            status = self.status(handle)
        if status.alive:
            self._signal_group(handle, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while status.alive and time.monotonic() < deadline:
                time.sleep(0.02)
                status = self.status(handle)
        self.cleanup(handle)
        return status

    def cleanup(self, handle: Handle) -> None:
        """Kill what is left of the stage's process group (e.g. workers the stage forked), when a
        member still carries the run's id; a group that is not provably ours is left alone."""
        if self.status(handle).alive:
            return
        self._signal_group(handle, signal.SIGKILL)
