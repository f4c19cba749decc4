"""Read a failed run's log and extract what failed: exception type, message, failing source line.

Used to learn failure patterns. The signature is the exception type, the message with numbers,
paths, hex ids and quoted strings replaced by placeholders, and the failing source line (spacing
removed), so the same failure at the same line is recognised again whatever the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LOG_TAIL_BYTES = 50_000
_TRACEBACK = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>\S+))?')
_EXC = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Iteration|Fault)?)(?::\s?(?P<msg>.*))?$")
_PANIC = re.compile(r"panicked at (?:'(?P<msg>.*)', )?(?P<file>[^\s:]+\.rs):(?P<line>\d+)(?::\d+)?:?(?P<rest>.*)$")
_FATAL = (
    (re.compile(r"CUDA out of memory|OutOfMemoryError", re.I), "OutOfMemoryError", "CUDA out of memory"),
    (re.compile(r"^Killed\b|oom-kill|Out of memory: Killed", re.I), "Killed", "the process was killed (likely out of memory)"),
    (re.compile(r"Segmentation fault|SIGSEGV", re.I), "SegmentationFault", "segmentation fault"),
    (re.compile(r"CUDA error|cuDNN error|NCCL error", re.I), "CudaError", "CUDA/cuDNN/NCCL error"),
)
_LIB = re.compile(r"(site-packages|dist-packages|/lib/python\d|<frozen |/stage_sdk/|/goldfish/)")


@dataclass
class FailureInfo:
    exc_type: str
    message: str
    file: str | None = None
    line: int | None = None
    source_line: str | None = None

    @property
    def signature(self) -> str:
        sig = f"{self.exc_type}: {normalize_message(self.message)}".rstrip(": ")
        if self.source_line:
            sig += " @ " + re.sub(r"\s+", "", self.source_line)[:200]
        return sig


def normalize_message(message: str) -> str:
    """The message with what varies between occurrences replaced by placeholders."""
    text = message.strip().splitlines()[0] if message.strip() else ""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "<str>", text)
    text = re.sub(r"(?:[A-Za-z]:)?(?:[/\\][\w.\-]+){2,}[/\\]?", "<path>", text)
    text = re.sub(r"\b(?:stage|prun|fp)-[0-9a-f]{8}\b", "<id>", text)
    text = re.sub(r"\b0x[0-9a-fA-F]+\b", "<hex>", text)
    text = re.sub(r"\b[0-9a-f]{8,}\b", "<hex>", text)
    text = re.sub(r"(?<![\w<])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b", "<n>", text)
    return re.sub(r"\s+", " ", text)[:300]


def _relative(path: str, app_dir: Path | None) -> str | None:
    """The app-relative path of a traceback file, or None for library code."""
    if _LIB.search(path):
        return None
    if app_dir is not None:
        try:
            return Path(path).resolve().relative_to(Path(app_dir).resolve()).as_posix()
        except (ValueError, OSError):
            pass
    for marker in ("/app/", "/modules/"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail if marker == "/app/" else f"modules/{tail}"
    return None if Path(path).is_absolute() else path


def _source_from_file(app_dir: Path | None, rel: str | None, line: int | None) -> str | None:
    if app_dir is None or rel is None or not line:
        return None
    try:
        lines = (Path(app_dir) / rel).read_text(errors="replace").splitlines()
    except OSError:
        return None
    return lines[line - 1].strip() if 0 < line <= len(lines) else None


def _python_failure(lines: list[str], app_dir: Path | None) -> FailureInfo | None:
    start = max((i for i, line in enumerate(lines) if line.strip() == _TRACEBACK), default=None)
    if start is None:
        return None
    frame: tuple[str, int, str | None] | None = None
    exc: FailureInfo | None = None
    i = start + 1
    while i < len(lines):
        line = lines[i]
        match = _FRAME.match(line)
        if match:
            rel = _relative(match.group("file"), app_dir)
            source = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith("    ") else None
            if source is not None and set(source) <= set("^~ "):
                source = None
            if rel is not None:
                frame = (rel, int(match.group("line")), source)
            i += 1
            continue
        if line and not line[0].isspace():
            found = _EXC.match(line.strip())
            if found:
                exc = FailureInfo(exc_type=found.group("type"), message=found.group("msg") or "")
            break
        i += 1
    if exc is None:
        return None
    if frame is not None:
        exc.file, exc.line = frame[0], frame[1]
        exc.source_line = frame[2] or _source_from_file(app_dir, frame[0], frame[1])
    return exc


def _panic_failure(lines: list[str], app_dir: Path | None) -> FailureInfo | None:
    for index in range(len(lines) - 1, -1, -1):
        match = _PANIC.search(lines[index])
        if not match:
            continue
        message = match.group("msg") or match.group("rest").strip()
        if not message and index + 1 < len(lines):
            message = lines[index + 1].strip()
        rel, number = match.group("file"), int(match.group("line"))
        source = None
        for candidate in (rel, f"modules/{rel}", f"src/{rel}"):
            source = source or _source_from_file(app_dir, candidate, number)
        return FailureInfo(exc_type="panic", message=message, file=rel, line=number, source_line=source)
    return None


def parse_failure(log_text: str, app_dir: Path | None = None) -> FailureInfo | None:
    """What failed, from the tail of a run's log (Python traceback, Rust panic, or a fatal marker)."""
    lines = log_text.splitlines()
    found = _python_failure(lines, app_dir) or _panic_failure(lines, app_dir)
    if found is not None:
        return found
    for line in reversed(lines[-300:]):
        for regex, exc_type, message in _FATAL:
            if regex.search(line):
                return FailureInfo(exc_type=exc_type, message=message)
    return None


def read_log_tail(run_dir: Path, limit: int = LOG_TAIL_BYTES) -> str:
    """The end of the stage's stdout/stderr log (tracebacks go there), else of logs.txt."""
    for rel in ("logs/stdout.log", "outputs/.goldfish/logs.txt"):
        path = Path(run_dir) / rel
        try:
            with open(path, "rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - limit))
                data = f.read()
        except OSError:
            continue
        if data.strip():
            return data.decode("utf-8", errors="replace")
    return ""
