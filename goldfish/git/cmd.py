"""Thin wrapper over the git CLI (faster than GitPython's index for bulk work)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from goldfish.errors import GoldfishError
from goldfish.fsutil import disk_error_from_text

GIT_TIMEOUT_SECONDS = 60

# A stable, minimal environment: no pager, no prompts, no user hooks or templates.
_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
}


class GitError(GoldfishError):
    kind = "git"


class _Watchdog:
    """Kills git processes that outlive their deadline. One shared thread that wakes twice a
    second: subprocess.run(timeout=...) instead polls for every exit with sleeps (about a
    millisecond per git call), and a timer thread per call costs a thread start each time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, subprocess.Popen[bytes]]] = {}
        self._expired: set[int] = set()
        self._thread: threading.Thread | None = None

    def watch(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        with self._lock:
            self._watched[id(proc)] = (time.monotonic() + timeout, proc)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="goldfish-git-watchdog", daemon=True)
                self._thread.start()

    def release(self, proc: subprocess.Popen[bytes]) -> bool:
        """Stop watching; True when the process was killed for running too long."""
        with self._lock:
            self._watched.pop(id(proc), None)
            if id(proc) in self._expired:
                self._expired.discard(id(proc))
                return True
            return False

    def _loop(self) -> None:
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            with self._lock:
                for key, (deadline, proc) in list(self._watched.items()):
                    if now >= deadline and proc.poll() is None:
                        proc.kill()
                        self._expired.add(key)


_WATCHDOG = _Watchdog()


def _run(cmd: Sequence[str], input: bytes | None, env: Mapping[str, str], timeout: float) -> tuple[int, bytes, bytes]:
    """Run a command to completion; the shared watchdog kills it after ``timeout`` seconds."""
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    _WATCHDOG.watch(proc, timeout)
    try:
        out, err = proc.communicate(input)
    finally:
        expired = _WATCHDOG.release(proc)
    if expired:
        raise subprocess.TimeoutExpired(list(cmd), timeout)
    return proc.returncode, out, err


def git(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = GIT_TIMEOUT_SECONDS,
) -> bytes:
    """Run ``git -C repo args...`` and return stdout bytes; raise GitError naming the command on failure."""
    full_env = {**os.environ, **_BASE_ENV, **(env or {})}
    cmd: Sequence[str] = ["git", "-C", str(repo), *args]
    try:
        returncode, out, err_bytes = _run(cmd, input, full_env, timeout)
    except FileNotFoundError as exc:
        raise GitError("git is not installed.", fix="Install git (apt-get install git) and retry.") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`git {' '.join(args[:3])}` timed out after {timeout:.0f}s.", fix="Retry; check disk health.") from exc
    if check and returncode != 0:
        err = err_bytes.decode(errors="replace").strip()
        _raise_if_disk(err, repo, args)
        raise GitError(
            f"`git {' '.join(args[:4])}` failed in {repo}: {err[:500]}",
            fix="This is Goldfish's hidden dev repo; do not edit it by hand. Run `goldfish doctor` to check it.",
        )
    return out


def _raise_if_disk(err: str, repo: Path, args: Sequence[str]) -> None:
    """A full, read-only or forbidden disk is named as such: the dev repo is fine, `goldfish doctor` can't help."""
    disk = disk_error_from_text(err, repo, doing=f"run `git {' '.join(args[:2])}` on Goldfish's dev repo")
    if disk is not None:
        raise GitError(f"{disk.message} git said: {err[:300]}", fix=disk.fix, details=disk.details)


def git_ok(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> bool:
    """True when ``git -C repo args...`` exits 0 (for yes/no questions like merge-base --is-ancestor)."""
    full_env = {**os.environ, **_BASE_ENV, **(env or {})}
    try:
        returncode, _out, _err = _run(["git", "-C", str(repo), *args], None, full_env, GIT_TIMEOUT_SECONDS)
    except FileNotFoundError as exc:
        raise GitError("git is not installed.", fix="Install git (apt-get install git) and retry.") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`git {' '.join(args[:3])}` timed out.", fix="Retry; check disk health.") from exc
    return returncode == 0


def git_text(repo: Path, *args: str, **kw: object) -> str:
    return git(repo, *args, **kw).decode().strip()  # type: ignore[arg-type]


@contextlib.contextmanager
def git_stream(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[IO[bytes]]:
    """Run ``git -C repo args...`` and yield its stdout as a stream (for archives and long diffs).

    Leaving the block early terminates git; a non-zero exit after a full read raises GitError.
    """
    full_env = {**os.environ, **_BASE_ENV, **(env or {})}
    try:
        proc = subprocess.Popen(
            ["git", "-C", str(repo), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=full_env,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed.", fix="Install git (apt-get install git) and retry.") from exc
    assert proc.stdout is not None and proc.stderr is not None
    ok = False
    try:
        yield proc.stdout
        ok = True
    finally:
        # Closing stdout first: a git still writing (the caller stopped early) dies of SIGPIPE.
        proc.stdout.close()
        try:
            rc = proc.wait(timeout=GIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        err = proc.stderr.read()
        proc.stderr.close()
    if ok and rc not in (0, -signal.SIGPIPE, 128 + signal.SIGPIPE):
        _raise_if_disk(err.decode(errors="replace"), repo, args)
        raise GitError(
            f"`git {' '.join(args[:4])}` failed in {repo}: {err.decode(errors='replace').strip()[:500]}",
            fix="This is Goldfish's hidden dev repo; do not edit it by hand. Run `goldfish doctor` to check it.",
        )
