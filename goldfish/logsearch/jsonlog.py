"""Goldfish's own logs: JSON lines under ``.goldfish/logs/``, written through the standard ``logging``.

Any module logs with ``logging.getLogger(__name__)`` (``goldfish.*``, ``mcp_server.*``, ``tui.*``);
the process that owns a project (``goldfish serve``, a runner, an image build, a CLI command) calls
``configure(gf_dir, role)`` once, and every record lands in ``.goldfish/logs/<role>.jsonl`` as

``{"ts", "level", "source", "workspace", "run_ids", "message", "logger", "pid", "extra"}``.

Several processes append to the same file: each record is one ``write`` on an ``O_APPEND``
descriptor opened for that record, so lines never interleave and a writer never keeps appending to
a file that was rotated away. Past ``MAX_BYTES`` the file is renamed to ``<role>.<N>.jsonl`` under a
file lock (N grows, so a rotated file's name and content never change again) and at most ``KEEP``
rotated files are kept per role.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_BYTES = 8 * 1024 * 1024
KEEP = 20
LOGGERS = ("goldfish", "mcp_server", "tui")
RUN_ID = re.compile(r"\b(?:stage|prun)-[0-9a-f]{6,}\b")
ROTATED = re.compile(r"^(?P<role>[a-z0-9_-]+)\.(?P<n>\d+)\.jsonl$")
# Attributes every LogRecord has; anything else came from ``extra=`` and is kept.
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "taskName"}
# The source of a record, from its logger's name (first match wins); else the process's role.
_SOURCES = (("goldfish.runs.reconciler", "reconciler"), ("goldfish.runs.runner", "runner"),
            ("goldfish.runs.stage_driver", "runner"), ("goldfish.images", "images"),
            ("goldfish.backup", "backup"), ("goldfish.backups", "backup"), ("goldfish.mcp", "mcp"),
            ("mcp_server", "mcp"), ("tui", "tui"))


def logs_dir(gf_dir: Path) -> Path:
    return Path(gf_dir) / "logs"


def source_of(logger_name: str, role: str) -> str:
    for prefix, source in _SOURCES:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return source
    return role


def to_line(record: logging.LogRecord, role: str) -> str:
    """One record as one JSON line (with its traceback in ``message``, so a phrase of it is found)."""
    message = record.getMessage()
    if record.exc_info:
        message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
    elif record.exc_text:
        message += "\n" + record.exc_text
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    ids: list[str] = []
    for key in ("run_id", "pipeline_run_id", "stage_run_id"):
        value = extra.pop(key, None)
        if isinstance(value, str) and value:
            ids.append(value)
    listed = extra.pop("run_ids", None)
    if isinstance(listed, (list, tuple)):
        ids += [str(v) for v in listed]
    ids += RUN_ID.findall(message)
    workspace = extra.pop("workspace", None)
    stage = extra.pop("stage", None)
    source = extra.pop("source", None) or source_of(record.name, role)
    doc = {
        "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "level": record.levelname.lower(), "source": str(source),
        "workspace": str(workspace) if workspace else None, "stage": str(stage) if stage else None,
        "run_ids": list(dict.fromkeys(ids)), "message": message, "logger": record.name, "pid": record.process,
        "extra": {k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v) for k, v in extra.items()},
    }
    return json.dumps(doc, ensure_ascii=False, default=str) + "\n"


def rotated_files(directory: Path, role: str) -> list[tuple[int, Path]]:
    out = []
    for path in directory.glob(f"{role}.*.jsonl"):
        m = ROTATED.match(path.name)
        if m and m["role"] == role:
            out.append((int(m["n"]), path))
    return sorted(out)


def rotate(directory: Path, role: str, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> Path | None:
    """Rename ``<role>.jsonl`` to the next ``<role>.<N>.jsonl`` if it is (still) past ``max_bytes``."""
    live = directory / f"{role}.jsonl"
    with open(directory / f".{role}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if live.stat().st_size <= max_bytes:
                return None  # another writer rotated it first
        except FileNotFoundError:
            return None
        existing = rotated_files(directory, role)
        target = directory / f"{role}.{(existing[-1][0] + 1) if existing else 1:06d}.jsonl"
        os.rename(live, target)
        for _n, old in existing[: max(0, len(existing) + 1 - keep)]:
            old.unlink(missing_ok=True)
        return target


class JsonLinesHandler(logging.Handler):
    def __init__(self, directory: Path, role: str, max_bytes: int = MAX_BYTES, keep: int = KEEP):
        super().__init__()
        self.directory = Path(directory)
        self.role = role
        self.max_bytes = max_bytes
        self.keep = keep
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        return self.directory / f"{self.role}.jsonl"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = to_line(record, self.role).encode()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > self.max_bytes:
                rotate(self.directory, self.role, self.max_bytes, self.keep)
        except Exception:  # logging must never take the process down
            self.handleError(record)


_installed: JsonLinesHandler | None = None


def configure(gf_dir: Path | str, role: str, level: int | str | None = None,
              stderr_level: int | None = logging.WARNING) -> JsonLinesHandler:
    """Send this process's ``goldfish.*``, ``mcp_server.*`` and ``tui.*`` records to
    ``<gf_dir>/logs/<role>.jsonl`` (replacing an earlier configuration). ``stderr_level`` keeps
    warnings visible on stderr as before (None: not at all)."""
    global _installed
    level = level or os.environ.get("GOLDFISH_LOG_LEVEL", "INFO").upper()
    if isinstance(level, str) and level not in logging.getLevelNamesMapping():
        level = "INFO"  # a typo in GOLDFISH_LOG_LEVEL must not stop the process
    handler = JsonLinesHandler(logs_dir(Path(gf_dir)), role)
    stream: logging.StreamHandler[Any] | None = None
    if stderr_level is not None:
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(stderr_level)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            if isinstance(old, JsonLinesHandler) or getattr(old, "_goldfish_stderr", False):
                logger.removeHandler(old)
        logger.setLevel(level)
        logger.addHandler(handler)
        if stream is not None:
            stream._goldfish_stderr = True  # type: ignore[attr-defined]
            logger.addHandler(stream)
        # Records stop here: an interface's root handler (e.g. the MCP client's stderr) keeps its level.
        logger.propagate = False
    _installed = handler
    return handler


def installed() -> JsonLinesHandler | None:
    return _installed


def configure_project(project: object, role: str, stderr_level: int | None = logging.WARNING) -> JsonLinesHandler | None:
    """``configure`` for an open project; never fails the caller (logging is not worth a crash)."""
    try:
        return configure(Path(project.gf_dir), role, stderr_level=stderr_level)  # type: ignore[attr-defined]
    except OSError:
        return None


def reset() -> None:
    """Undo ``configure`` (tests that configure in-process)."""
    global _installed
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            if isinstance(old, JsonLinesHandler) or getattr(old, "_goldfish_stderr", False):
                logger.removeHandler(old)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    _installed = None
