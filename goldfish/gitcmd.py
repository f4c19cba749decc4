"""Thin wrapper over the git CLI (faster than GitPython's index for bulk work)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def git_text(repo: Path, *args: str, **kw: object) -> str:
    return git(repo, *args, **kw).decode().strip()  # type: ignore[arg-type]
