"""Thin wrapper over the git CLI (faster than GitPython's index for bulk work)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from goldfish.errors import GoldfishError

GIT_TIMEOUT_SECONDS = 60

# A stable, minimal environment: no pager, no prompts, no user hooks or templates.
_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
}


class GitError(GoldfishError):
    kind = "git"


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
        proc = subprocess.run(cmd, input=input, capture_output=True, env=full_env, timeout=timeout)
    except FileNotFoundError as exc:
        raise GitError("git is not installed.", fix="Install git (apt-get install git) and retry.") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`git {' '.join(args[:3])}` timed out after {timeout:.0f}s.", fix="Retry; check disk health.") from exc
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise GitError(
            f"`git {' '.join(args[:4])}` failed in {repo}: {err[:500]}",
            fix="This is Goldfish's hidden dev repo; do not edit it by hand. Run `goldfish doctor` to check it.",
        )
    return proc.stdout


def git_ok(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> bool:
    """True when ``git -C repo args...`` exits 0 (for yes/no questions like merge-base --is-ancestor)."""
    full_env = {**os.environ, **_BASE_ENV, **(env or {})}
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, env=full_env, timeout=GIT_TIMEOUT_SECONDS
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed.", fix="Install git (apt-get install git) and retry.") from exc
    return proc.returncode == 0


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
            ["git", "-C", str(repo), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env
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
        raise GitError(
            f"`git {' '.join(args[:4])}` failed in {repo}: {err.decode(errors='replace').strip()[:500]}",
            fix="This is Goldfish's hidden dev repo; do not edit it by hand. Run `goldfish doctor` to check it.",
        )
