"""A standby runner: a ``goldfish runner`` process started ahead of time, waiting for its run.

Starting a runner costs an interpreter, the imports of the run engine and ``Project.open``
(≈0.3 s, more on a loaded machine); a stage cannot start before that. So ``Runs`` keeps one
runner warmed up per project and process: ``python -m goldfish.runs.standby`` imports what the
runner and its stage drivers use, opens the project, then blocks on a pipe. ``run()`` records the
pipeline run, reserves its lease as always, and writes ``<prun-id> <runner-id>`` into the pipe;
the standby redirects its output to that run's ``runner.log`` and drives it like a spawned runner.
From a process's second run on, ``run()`` then starts the next standby. A fresh process is started
before ``run()`` does its own work when no standby is waiting, so the two overlap.

Lifetime: the pipe is the standby's lifeline. It exits when the pipe closes: its ``Runs`` was
garbage-collected or closed, or its process died (the kernel closes the write end). It also exits
after ``jobs.standby_idle_seconds`` without a run; ``run()`` never hands a run to a standby that
close to its deadline. Each standby is reaped by a thread of the process that started it, like a
spawned runner. A hand-off that fails (the standby died) falls back to spawning a runner; a
standby that dies after taking a run leaves a reserved lease that expires, and the reconciler
starts a new runner, as for any runner that dies.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from goldfish.project import Project

# run() hands a run only to a standby this far from its idle deadline (no race with its exit).
DEADLINE_MARGIN_SECONDS = 10.0
# A standby started after a hand-off waits this long before warming up (the stage is starting);
# 0.4 s left it still warming up when the next run() came a second later on a loaded machine.
SETTLE_SECONDS = 0.1
LOG_NAME = "standby.log"


@dataclass
class _Spare:
    proc: subprocess.Popen[bytes]
    fd: int | None  # write end of the lifeline pipe (None once closed)
    started: float
    env: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _close_all(spares: list[_Spare]) -> None:
    for spare in spares:
        spare.close()
    spares.clear()


def _config_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class Standby:
    """The standby runner of one ``Runs`` (at most one waiting at a time)."""

    def __init__(self, project: Project):
        self.project = project
        self._lock = threading.Lock()
        self._spares: list[_Spare] = []
        self._started = 0  # runs started through this Standby
        # Closing the pipe when the owner goes away is what ends an idle standby.
        self._finalizer = weakref.finalize(self, _close_all, self._spares)

    @property
    def idle_seconds(self) -> float:
        return float(self.project.config.jobs.standby_idle_seconds)

    def enabled(self) -> bool:
        return self.idle_seconds > 0

    def ensure(self, settle: float = 0.0) -> None:
        """Start a standby unless one is waiting (or standbys are off); never raises. ``settle``:
        seconds it waits before warming up, unless a run arrives sooner."""
        if not self.enabled():
            return
        with self._lock:
            self._drop_stale()
            if self._spares:
                return
            try:
                self._spares.append(self._spawn(settle))
            except OSError as exc:
                print(f"goldfish: standby runner not started ({exc})", file=sys.stderr)

    def ensure_next(self) -> None:
        """After a run started: a standby for the next run(), once this process has started two runs
        (a process that starts one run, like a script or the CLI, would only waste one)."""
        with self._lock:
            self._started += 1
            if self._started < 2:
                return
        self.ensure(settle=SETTLE_SECONDS)

    def hand_off(self, prun_id: str, runner_id: str) -> bool:
        """Give the reserved run to the waiting standby; False when none can take it (spawn instead)."""
        with self._lock:
            self._drop_stale()
            spare = self._spares.pop() if self._spares else None
        if spare is None or spare.fd is None:
            return False
        try:
            os.write(spare.fd, f"{prun_id} {runner_id}\n".encode())
        except OSError:  # it died between the check and the write
            return False
        finally:
            spare.close()
        return True

    def start_runner(self, prun_id: str) -> str:
        """Reserve the run's lease and hand the run to the waiting standby, else spawn a runner;
        returns a note for run()'s message when no runner could start (the reconciler retries)."""
        from goldfish.runs.lease import LeaseFile
        from goldfish.runs.reconciler import spawn_runner

        project = self.project
        runner_id = LeaseFile(project.runs_dir / prun_id).reserve(project.config.jobs.runner_lease_seconds)
        try:
            if runner_id is not None and not self.hand_off(prun_id, runner_id):
                spawn_runner(project, prun_id, runner_id)
        except OSError as exc:
            return f" The runner did not start ({exc}); it is retried when the project is next opened."
        return ""

    def close(self) -> None:
        """Let every waiting standby exit (they see the pipe close)."""
        with self._lock:
            _close_all(self._spares)

    def pids(self) -> list[int]:
        with self._lock:
            return [s.proc.pid for s in self._spares if s.fd is not None]

    # ------------------------------------------------------------------ internals
    def _drop_stale(self) -> None:
        keep = []
        now = time.monotonic()
        for spare in self._spares:
            expired = now - spare.started > self.idle_seconds - DEADLINE_MARGIN_SECONDS
            if spare.fd is None or spare.proc.poll() is not None or expired or spare.env != os.environ:
                spare.close()
            else:
                keep.append(spare)
        self._spares[:] = keep

    def _spawn(self, settle: float) -> _Spare:
        from goldfish.runs.stage_env import PACKAGE_ROOT

        project = self.project
        project.gf_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        child_env = dict(env)
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
        read_fd, write_fd = os.pipe()  # both non-inheritable; pass_fds hands over the read end only
        try:
            cmd = [sys.executable, "-m", "goldfish.runs.standby", "--project", str(project.root),
                   "--fd", str(read_fd), "--idle", str(self.idle_seconds), "--settle", str(settle)]
            with open(project.gf_dir / LOG_NAME, "ab") as log:
                proc = subprocess.Popen(cmd, cwd=project.root, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                        pass_fds=(read_fd,), env=child_env)
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        threading.Thread(target=proc.wait, name=f"reap-standby-{proc.pid}", daemon=True).start()
        return _Spare(proc=proc, fd=write_fd, started=time.monotonic(), env=env)


# ---------------------------------------------------------------------- the standby process


def _warm(project: Project) -> Any:
    """Import and build what the runner and a stage driver need before the first stage starts."""
    import goldfish.runs.runner  # the runner, its stage driver and their imports
    from goldfish.runs import stage_setup  # noqa: F401
    from goldfish.runs.availability import backend_options
    from goldfish.runs.backends import get_backend
    from goldfish.runs.hooks import load_hooks

    import goldfish.storage.select  # noqa: F401 - inputs staging
    project.store  # noqa: B018 - opening the store is part of the warm-up
    project.workspaces  # noqa: B018
    project.sources  # noqa: B018 - source consumption is recorded at launch
    try:
        backend = get_backend(project.config.jobs.backend, backend_options(project.config))
    except Exception:
        backend = None  # the runner reports why, on the run
    warm = getattr(backend, "warm", None)
    if callable(warm):
        warm()
    return load_hooks()


class _Lifeline:
    """The read end of the pipe: a job line, or EOF when the owner closed it or died."""

    def __init__(self, fd: int):
        self.fd = fd
        self.data = b""
        self.eof = False

    def pump(self, seconds: float) -> None:
        """Read for up to ``seconds``, until a whole line or EOF arrived."""
        deadline = time.monotonic() + seconds
        while b"\n" not in self.data and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 4096)
                self.data += chunk
                self.eof = not chunk

    @property
    def done(self) -> bool:
        return self.eof or b"\n" in self.data

    def job(self) -> tuple[str, str] | None:
        """``(prun_id, runner_id)`` once a whole line arrived, else None."""
        if b"\n" not in self.data:
            return None
        parts = self.data.split(b"\n", 1)[0].decode(errors="replace").split()
        return (parts[0], parts[1]) if len(parts) == 2 else None


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"


def _redirect(path: Path) -> None:
    """Point stdout and stderr at the run's ``runner.log`` (as a spawned runner's are)."""
    sys.stdout.flush()
    sys.stderr.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="goldfish-standby-runner")
    parser.add_argument("--project", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--idle", type=float, required=True)
    parser.add_argument("--settle", type=float, default=0.0)
    args = parser.parse_args(argv)
    from goldfish.errors import GoldfishError
    from goldfish.project import Project

    pipe = _Lifeline(args.fd)
    # Started right after a hand-off, the warm-up would compete for the CPU with that run's stage
    # start: wait a moment first (a run or the pipe closing ends the wait).
    pipe.pump(args.settle)
    if pipe.eof and pipe.job() is None:
        return 0
    try:
        project = Project.open(args.project, source="runner")
        stamp = _config_stamp(project.config_path)
        hooks = None if pipe.done else _warm(project)
        pipe.pump(args.idle)
        os.close(args.fd)
        job = pipe.job()
        if job is None:
            return 0
        prun_id, runner_id = job
        _redirect(project.runs_dir / prun_id / "runner.log")
        print(f"[{_stamp()}Z] standby runner {os.getpid()} took {prun_id}", flush=True)
        from goldfish.runs.runner import Runner

        if _config_stamp(project.config_path) != stamp:  # goldfish.yaml changed while waiting
            project, hooks = Project.open(args.project, source="runner"), None
        from goldfish.logsearch.jsonlog import configure_project

        # As a spawned runner: runner.log holds stdout and stderr, the records go to runner.jsonl.
        configure_project(project, "runner", stderr_level=None)
        return Runner(project, prun_id, runner_id, hooks=hooks).main()
    except GoldfishError as exc:
        print(f"goldfish runner: {exc}", file=sys.stderr, flush=True)
        return 2

if __name__ == "__main__":
    sys.exit(main())
