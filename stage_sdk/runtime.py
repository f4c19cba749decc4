"""Runtime signals between a stage and its supervisor: log lines, heartbeat, stop requests.

All of these live in ``$GOLDFISH_OUTPUTS_DIR/.goldfish/``. None of them ever raises into user
code: a full disk must not kill a training loop because of a log line.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from datetime import datetime, UTC
from pathlib import Path
from typing import Any, TextIO

from stage_sdk import _env, _fs
import contextlib

LOG_MAX_BYTES = 10_000_000
HEARTBEAT_MIN_INTERVAL = 1.0
_LEVEL_RE = re.compile(r"[A-Z]{1,16}")

_log_lock = threading.Lock()
_hb_lock = threading.Lock()
_hb_last = float("-inf")


def _reset_locks_in_child() -> None:
    global _log_lock, _hb_lock
    _log_lock, _hb_lock = threading.Lock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_in_child)


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_log_line(message: object, level: str = "INFO") -> str:
    """``[YYYY-MM-DD HH:MM:SS] LEVEL: message`` (UTC), continuation lines indented.

    Indenting continuation lines keeps a multi-line message (a traceback) from forging entries
    that a reader would parse as separate log lines.
    """
    lvl = str(level).strip().upper() if level is not None else "INFO"
    if lvl == "WARN":
        lvl = "WARNING"
    if not _LEVEL_RE.fullmatch(lvl):
        lvl = "INFO"
    text = str(message).replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    text = text.replace("\n", "\n    ")
    return f"[{_utc_stamp()}] {lvl}: {text}"


def _rotate(path: Path) -> None:
    """Keep the newer half of the log, cut at a line boundary."""
    data = path.read_bytes()
    cut = len(data) - LOG_MAX_BYTES // 2
    nl = data.find(b"\n", max(cut, 0))
    kept = data[nl + 1 :] if nl >= 0 else b""
    _fs.atomic_write(path, kept)


def append_log(line: str, stream: TextIO | None) -> None:
    """Write a formatted line to ``stream`` and ``logs.txt``; swallow every error."""
    if stream is not None:
        with contextlib.suppress(Exception):
            print(line, file=stream, flush=True)
    try:
        path = _env.runtime_dir() / "logs.txt"
        with _log_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8", errors="replace") as f:
                f.write(line + "\n")
                size = f.tell()
            if size > LOG_MAX_BYTES:
                _rotate(path)
    except Exception:  # a full disk must not break the stage over a log line
        pass


def runtime_log(message: str, level: str = "INFO") -> None:
    """Print a timestamped line to stdout and append it to ``.goldfish/logs.txt``; never raises.

    ``level`` is upper-cased (``WARN`` becomes ``WARNING``); anything that is not 1-16 letters
    becomes ``INFO``. The file keeps its newest half once it passes 10,000,000 bytes.
    """
    try:
        line = format_log_line(message, level)
    except Exception:  # str() of a hostile object
        line = format_log_line("<unprintable message>", level)
    append_log(line, sys.stdout)


def sdk_warning(message: str) -> None:
    """An SDK problem report: stderr (not the user's stdout) and logs.txt."""
    append_log(format_log_line(message, "WARNING"), sys.stderr)


def heartbeat(message: str | None = None, force: bool = False) -> bool:
    """Write ``.goldfish/heartbeat`` atomically; at most once a second unless ``force``.

    Returns True when the file was written. Never raises.
    """
    global _hb_last
    now_mono = time.monotonic()
    with _hb_lock:
        if not force and now_mono - _hb_last < HEARTBEAT_MIN_INTERVAL:
            return False
        _hb_last = now_mono
    now = time.time()
    doc = {
        "timestamp": now,
        "iso_time": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "message": None if message is None else str(message)[:4096],
        "pid": os.getpid(),
    }
    try:
        _fs.atomic_write(_env.runtime_dir() / "heartbeat", json.dumps(doc))
    except Exception:
        return False
    return True


def read_heartbeat() -> dict[str, Any] | None:
    """The last heartbeat document plus ``age_seconds``, or None when there is none (or unreadable)."""
    try:
        doc = json.loads((_env.runtime_dir() / "heartbeat").read_text(encoding="utf-8"))
        ts = float(doc["timestamp"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(doc, dict):
        return None
    doc["age_seconds"] = max(0.0, time.time() - ts)
    return doc


def get_heartbeat_age() -> float | None:
    """Seconds since the last heartbeat, or None when no heartbeat was written."""
    doc = read_heartbeat()
    return None if doc is None else float(doc["age_seconds"])


def _stop_file() -> Path:
    return _env.runtime_dir() / "stop_requested"


def should_stop() -> bool:
    """True iff ``.goldfish/stop_requested`` exists (the supervisor asks the stage to wind down)."""
    try:
        return os.path.exists(_stop_file())
    except Exception:
        return False


def get_stop_reason() -> str | None:
    """The text of ``stop_requested`` (empty reason becomes ""), or None when no stop was requested."""
    try:
        return _stop_file().read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
