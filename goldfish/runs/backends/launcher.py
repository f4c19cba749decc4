"""Stage launcher: the one process that sees a local stage start and end. Standalone (no goldfish
imports) so it starts fast and keeps working whatever happens to the runner.

    python launcher.py <spec.json>

It is started in a new session, so it leads the stage's process group. It

1. ignores SIGTERM/SIGINT/SIGHUP (a group stop reaches the stage; the launcher must live to record
   how the stage ended);
2. waits until ``launch.json`` names its pid — a launcher whose runner died before recording the
   launch exits without running anything, so a re-launch can never run a stage twice;
3. runs the stage with stdout and stderr appended to the run's log, the memory limit applied as
   RLIMIT_AS, default signal handling restored;
4. writes the exit code atomically (temp file, fsync, rename, directory fsync): the status, or
   128+N when the stage died of signal N. No exit-code file means no evidence of success.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

LAUNCH_WAIT_SECONDS = 30.0


def _atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _recorded(launch_file: str) -> bool:
    """True once launch.json names this process (the runner recorded the launch)."""
    deadline = time.monotonic() + LAUNCH_WAIT_SECONDS
    me = os.getpid()
    delay = 0.001
    while time.monotonic() < deadline:
        try:
            with open(launch_file) as f:
                return bool(json.load(f).get("pid") == me)  # another pid: a newer launch owns the run
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return False


def _child_setup(memory_limit_bytes: int | None) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    if memory_limit_bytes:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit_bytes, memory_limit_bytes))


def main(argv: list[str]) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    with open(argv[1]) as f:
        spec = json.load(f)
    if not _recorded(spec["launch_file"]):
        print(f"[goldfish launcher] pid {os.getpid()} was not recorded in {spec['launch_file']}; not starting.",
              flush=True)
        return 0
    limit_mb = spec.get("memory_limit_mb")
    limit = int(limit_mb) * 1024 * 1024 if limit_mb else None
    log = open(spec["log_file"], "ab", buffering=0)  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            spec["argv"],
            cwd=spec["cwd"],
            env=spec["env"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _child_setup(limit),
            close_fds=True,
        )
    except OSError as exc:
        log.write(f"[goldfish launcher] could not start {spec['argv'][0]}: {exc}\n".encode())
        code = 127
    else:
        code = proc.wait()
        if code < 0:
            code = 128 + (-code)
    log.close()
    _atomic_write(spec["exit_file"], f"{code}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
