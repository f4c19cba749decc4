"""``logs(run_id, tail, since, follow, cursor)``: a stage run's stdout+stderr log.

The log file only grows (the launcher and the runner append to it), so a byte offset is a cursor
that never drifts: each answer returns ``cursor`` = the offset after the last whole line it
contains, and passing it back returns exactly what was appended since. Lines are never split, and
the text returned is bounded (MAX_CHARS); ``has_more`` says there is more to fetch right away.

``follow=True`` with a cursor streams: the call blocks until whole new lines arrive after the
cursor (returned as soon as the poll sees them, every ``FOLLOW_POLL`` s), the run ends, or
``wait_seconds`` pass (``timed_out``), so a follower makes one call per batch instead of polling
blind. The TUI's log view reads through the same function.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from goldfish import names
from goldfish.errors import InvalidInput
from goldfish.runs.state import TERMINAL, parse_iso

if TYPE_CHECKING:
    from goldfish.project import Project

MAX_TAIL = 10_000
MAX_CHARS = 60_000
FOLLOW_WAIT = 30
MAX_FOLLOW_WAIT = 60
FOLLOW_POLL = 0.05
STATE_POLL = 0.5
_STAMP = re.compile(rb"^\[(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})")


class LogsResult(BaseModel):
    run_id: str
    state: str = Field(description="The stage run's state")
    logs: str = Field(description="Log text (whole lines)")
    cursor: int = Field(description="Byte offset after the returned text; pass it back to get only newer lines")
    has_more: bool = Field(description="More text is already available after cursor (call again)")
    truncated: bool = Field(default=False, description="Older lines were left out to stay within the size bound")
    log_path: str | None = Field(default=None, description="Absolute path of the log file")
    done: bool = Field(description="The run is terminal: the log will not grow any more")
    error: str | None = Field(default=None, description="The run's error, when it failed")
    timed_out: bool = Field(default=False, description=(
        "follow: nothing new arrived within wait_seconds (call again with the same cursor)"))


def _line_time(line: bytes) -> float | None:
    match = _STAMP.match(line)
    if not match:
        return None
    return parse_iso(match.group(1).decode().replace(" ", "T") + "Z")


def _read_window(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


def _tail(path: Path, size: int, lines: int) -> tuple[bytes, int]:
    """The last ``lines`` whole lines before ``size`` (bytes, start offset), within MAX_CHARS*4 bytes."""
    budget = MAX_CHARS * 4
    start = max(0, size - budget)
    data = _read_window(path, start, size)
    if start > 0:
        cut = data.find(b"\n")
        data, start = (data[cut + 1 :], start + cut + 1) if cut >= 0 else (b"", size)
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    kept = parts[-lines:] if lines else []
    text = b"\n".join(kept) + (b"\n" if kept else b"")
    return text, size - len(text)


def read_logs(
    project: Project,
    run_id: str,
    tail: int = 200,
    since: str | None = None,
    follow: bool = False,
    cursor: int | None = None,
    wait_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LogsResult:
    """The last ``tail`` lines, or with ``cursor`` everything appended after it. With ``follow`` and
    a cursor, waits up to ``wait_seconds`` (default FOLLOW_WAIT) for new whole lines first."""
    if isinstance(run_id, str) and names.PIPELINE_RUN_RE.fullmatch(run_id):
        prun = project.runs.get(run_id)
        ids = ", ".join(f"{s}: {rid}" for s, rid in prun["stage_runs"].items())
        raise InvalidInput(f"{run_id} is a pipeline run; logs are kept per stage run.",
                           fix=f"Call logs() with one of its stage runs ({ids}).")
    names.stage_run_id(run_id)
    if isinstance(tail, bool) or not isinstance(tail, int) or not 1 <= tail <= MAX_TAIL:
        raise InvalidInput(f"tail must be between 1 and {MAX_TAIL}, got {tail!r}.", fix="Use e.g. tail=200.")
    since_ts = None
    if since is not None:
        since_ts = parse_iso(since if since.endswith("Z") or "+" in since else since + "Z")
        if since_ts is None:
            raise InvalidInput(f"since {since!r} is not an ISO timestamp.", fix="Use e.g. since='2026-01-01T12:00:00Z'.")
    wait = FOLLOW_WAIT if wait_seconds is None else wait_seconds
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_FOLLOW_WAIT:
        raise InvalidInput(f"wait_seconds must be between 0 and {MAX_FOLLOW_WAIT}, got {wait_seconds!r}.",
                           fix="Use e.g. wait_seconds=30.")
    from goldfish.runs.reconciler import fresh_run

    run = fresh_run(project, project.runs.get(run_id))  # a dead run's log is reported done
    remote = bool(run.get("backend_handle") and run.get("backend") == "gce" and project.config.jobs.backend == "gce")
    if remote:
        _mirror(project, run_id, run)
    path = project.runs_dir / run_id / "logs" / "stdout.log"
    size = _size(path)
    if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int) or not 0 <= cursor <= size):
        raise InvalidInput(
            f"cursor {cursor!r} is outside the log (0..{size} bytes).",
            fix="Pass back the cursor a previous logs() call returned, or leave it out to start from the tail.",
        )
    timed_out = False
    if follow and cursor is not None and wait > 0 and run["state"] not in TERMINAL:
        run, timed_out = _wait_for_lines(project, run_id, path, cursor, clock() + wait, clock, remote)
        size = _size(path)
    truncated = has_more = False
    if size == 0:
        data, start, end = b"", 0, 0
    elif cursor is None:
        data, start = _tail(path, size, tail)
        end = size
        whole = data.rfind(b"\n") + 1
        data, end = data[:whole], start + whole
        truncated = start > 0 and len(data.split(b"\n")) - 1 < tail
    else:
        window = _read_window(path, cursor, min(size, cursor + MAX_CHARS * 4))
        whole = window.rfind(b"\n") + 1
        data, start, end = window[:whole], cursor, cursor + whole
        has_more = cursor + len(window) < size
    text_lines = data.decode(errors="replace").splitlines()
    if since_ts is not None:
        text_lines = [ln for ln in text_lines if (_line_time(ln.encode()) or since_ts) >= since_ts]
    text = "\n".join(text_lines)
    if len(text) > MAX_CHARS:
        text = text[-MAX_CHARS:]
        text = text[text.find("\n") + 1 :]
        truncated = True
    state = run["state"]
    return LogsResult(
        run_id=run_id, state=state, logs=text, cursor=end, has_more=has_more,
        truncated=truncated, log_path=str(path) if path.exists() else None, done=state in TERMINAL,
        error=run.get("error") if state in ("failed", "terminated", "canceled", "skipped") else None,
        timed_out=timed_out and not text,
    )


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _mirror(project: Project, run_id: str, run: dict[str, Any]) -> None:
    """A gce stage's lines live in Cloud Logging: bring the local copy up to date."""
    from goldfish.runs.cloud import gce_backend
    from goldfish.runs.remote_driver import mirror_logs

    mirror_logs(gce_backend(project), run["backend_handle"], project.runs_dir / run_id)


def _has_line(path: Path, cursor: int) -> bool:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return False
    if size <= cursor:
        return False
    return b"\n" in _read_window(path, cursor, min(size, cursor + MAX_CHARS * 4))


def _wait_for_lines(project: Project, run_id: str, path: Path, cursor: int, deadline: float,
                    clock: Callable[[], float], remote: bool) -> tuple[dict[str, Any], bool]:
    """Block until a whole line follows ``cursor``, the run is terminal, or ``deadline``:
    (the run's document as last read, timed out)."""
    run = project.runs.get(run_id)
    next_state = clock() + STATE_POLL
    while True:
        if _has_line(path, cursor):
            return run, False
        now = clock()
        if now >= deadline:
            return run, True
        if now >= next_state:
            run = project.runs.get(run_id)
            if remote:
                _mirror(project, run_id, run)
            if run["state"] in TERMINAL:
                if remote:
                    _mirror(project, run_id, run)
                return run, False
            next_state = now + (1.0 if remote else STATE_POLL)
        time.sleep(min(FOLLOW_POLL, max(0.0, deadline - now)))
