"""Rules of the during-run monitor over metric values and log lines (pure functions)."""

from __future__ import annotations

import math
import re
from collections import deque
from typing import Any

LOSS_NAME = re.compile(r"(?:^|[/_.\-])loss(?:$|[/_.\-])", re.IGNORECASE)
SPIKE_RATIO = 10.0
SPIKE_WINDOW = 100
SPIKE_MIN_HISTORY = 10
DIVERGED_RUN = 5
PLATEAU_POINTS = 50
PLATEAU_MIN_HISTORY = 10
PLATEAU_REL_TOL = 1e-3
RECENT_KEEP = 200

LOG_RULES: tuple[tuple[str, str, re.Pattern[str], str], ...] = (
    ("oom", "error", re.compile(r"CUDA out of memory|OutOfMemoryError|\bMemoryError\b|^Killed\b|oom-kill", re.I),
     "Lower the batch size or model size, or use a compute profile with more memory."),
    ("cuda_error", "error", re.compile(r"CUDA error|cuDNN error|CUBLAS_STATUS|NCCL error|device-side assert", re.I),
     "Read the CUDA error in the logs; a device-side assert usually means an index out of range (labels vs"
     " classes)."),
    ("non_finite_log", "error",
     re.compile(r"\b(?:loss|grad(?:ient)?[ _]?norm)\w*\b[^\n]{0,40}?[:=]\s*[-+]?(?:nan|inf(?:inity)?)\b", re.I),
     "Lower the learning rate, clip gradients, and check the inputs for NaN/Inf."),
)
TRACEBACK = "Traceback (most recent call last):"


def is_loss(name: str) -> bool:
    return bool(LOSS_NAME.search(name)) or name.lower() == "loss"


def first_spike(recent: list[float], new: list[float]) -> tuple[float, float] | None:
    """The first of ``new`` that spikes against the SPIKE_WINDOW values before it (sliding minimum, O(n))."""
    values = recent[-SPIKE_WINDOW:] + new
    start = len(values) - len(new)
    window: deque[int] = deque()  # indices of increasing values: the front is the window minimum
    for i, value in enumerate(values):
        if i >= start and i >= SPIKE_MIN_HISTORY:
            while window and window[0] < i - SPIKE_WINDOW:
                window.popleft()
            low = values[window[0]] if window else None
            if low is not None and low > 0 and value > SPIKE_RATIO * low:
                return value, SPIKE_RATIO * low
        while window and values[window[-1]] >= value:
            window.pop()
        window.append(i)
    return None


def diverged(recent: list[float]) -> tuple[float, float] | None:
    """The last DIVERGED_RUN values all above SPIKE_RATIO × the minimum before them: no recovery."""
    if len(recent) < SPIKE_MIN_HISTORY + DIVERGED_RUN:
        return None
    before = [v for v in recent[:-DIVERGED_RUN][-SPIKE_WINDOW:] if math.isfinite(v)]
    if not before or min(before) <= 0:
        return None
    limit = SPIKE_RATIO * min(before)
    tail = recent[-DIVERGED_RUN:]
    return (tail[-1], limit) if all(v > limit for v in tail) else None


def plateau(recent: list[float], *, minimize: bool, points: int = PLATEAU_POINTS) -> tuple[float, float] | None:
    """(best of the last ``points``, best before them) when the last ``points`` did not improve."""
    if len(recent) < points + PLATEAU_MIN_HISTORY:
        return None
    before, last = recent[:-points], recent[-points:]
    pick = min if minimize else max
    best_before, best_last = pick(before), pick(last)
    scale = max(abs(best_before), 1e-12)
    improvement = (best_before - best_last) if minimize else (best_last - best_before)
    return (best_last, best_before) if improvement <= PLATEAU_REL_TOL * scale else None


def trend(recent: list[float]) -> str:
    if len(recent) < 4:
        return "flat"
    half = len(recent) // 2
    a = sum(recent[:half]) / half
    b = sum(recent[half:]) / (len(recent) - half)
    scale = max(abs(a), abs(b), 1e-12)
    if abs(b - a) <= 1e-3 * scale:
        return "flat"
    return "up" if b > a else "down"


def log_hits(lines: list[str]) -> list[tuple[str, str, str, str]]:
    """(check, severity, line, fix) for every rule hit; tracebacks report their exception line."""
    out: list[tuple[str, str, str, str]] = []
    for index, line in enumerate(lines):
        text = line.rstrip()
        if text.strip() == TRACEBACK or text.endswith(TRACEBACK):
            exc = next((x.strip() for x in lines[index + 1:index + 200] if x and not x[0].isspace()
                        and not x.strip().startswith(("File ", "Traceback"))), "")
            out.append(("traceback", "warning", exc or text.strip(),
                        "Read the traceback in logs(run_id); the exception may have been caught, or may end the run."))
            continue
        for check, severity, regex, fix in LOG_RULES:
            if regex.search(text):
                out.append((check, severity, text.strip(), fix))
                break
    return out


def summary_entry(series: dict[str, Any]) -> dict[str, Any]:
    recent = series.get("recent", [])
    return {
        "count": series.get("count", 0), "last": series.get("last"), "min": series.get("min"),
        "max": series.get("max"), "last_step": series.get("last_step"), "trend": trend(recent[-20:]),
    }
