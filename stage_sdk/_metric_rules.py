"""Validation rules for metric records. Pure functions: each returns the cleaned value or raises
``Rejected`` with a reason code (the key used in ``lost`` records) and a message naming the fix."""

from __future__ import annotations

import math
import os
import re
import time
import unicodedata
import urllib.parse
from datetime import datetime, UTC
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/:]{0,255}", re.ASCII)
MAX_FUTURE_SECONDS = 86_400.0
MAX_PAST_SECONDS = 10 * 365.25 * 86_400.0
# Characters a shell, a URL or a log reader would treat specially; never valid in an artifact path.
_BAD_PATH_CHARS = set('\\"`$<>|;&*?\x7f')


class Rejected(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _show(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def check_name(name: object, what: str = "metric name") -> str:
    if not isinstance(name, str):
        raise Rejected("invalid_name", f"{what} must be a string, got {type(name).__name__}; "
                       "use names like 'train/loss'.")
    if not NAME_RE.fullmatch(name) or ".." in name or "//" in name:
        raise Rejected("invalid_name", f"invalid {what} {_show(name)}: use a letter then up to 255 of "
                       "[A-Za-z0-9_.-/:], without '..' or '//' (e.g. 'train/loss').")
    return name


def coerce_value(value: object) -> float:
    """A finite-or-not float from an int, float or numpy scalar; bools and everything else refused.

    Non-finite values come back as floats; the caller rejects them (they get their own finding).
    """
    t = type(value)
    if t is float:
        return value  # type: ignore[return-value]
    if t is int:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            raise Rejected("invalid_value", f"metric value {_show(value)} is too large for a float.") from None
    if isinstance(value, bool | np.bool_):
        raise Rejected("invalid_value", f"metric value {value!r} is a bool; log 0 or 1 instead.")
    if isinstance(value, int | float):  # int/float subclasses (np.float64 is a float subclass)
        return float(value)
    if isinstance(value, np.generic) and value.dtype.kind in "iuf":
        return float(value.item())
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return float(value.item())
    raise Rejected("invalid_value", f"metric value {_show(value)} ({type(value).__name__}) is not a number; "
                   "log an int, float or numpy scalar (call .item() on a tensor).")


def check_step(step: object) -> int | None:
    if step is None:
        return None
    if type(step) is int:
        if step >= 0:
            return step
    elif not isinstance(step, bool | np.bool_) and isinstance(step, int | np.integer) and int(step) >= 0:
        return int(step)
    raise Rejected("invalid_step", f"step {_show(step)} must be None or an int >= 0.")


def format_time(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_timestamp(ts: object, now: float | None = None) -> str:
    """ISO 8601 string (naive = UTC) or unix seconds -> ISO UTC string with microseconds and Z."""
    now = time.time() if now is None else now
    if isinstance(ts, bool) or ts is None:
        raise Rejected("invalid_timestamp", f"timestamp {_show(ts)} must be an ISO 8601 string or unix seconds.")
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts.strip())
        except ValueError:
            raise Rejected("invalid_timestamp", f"timestamp {_show(ts)} is not ISO 8601 "
                           "(e.g. '2026-01-01T12:00:00Z').") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        unix = dt.timestamp()
    elif isinstance(ts, int | float | np.integer | np.floating):
        unix = float(ts)
        if not math.isfinite(unix):
            raise Rejected("invalid_timestamp", f"timestamp {_show(ts)} is not finite.")
    else:
        raise Rejected("invalid_timestamp", f"timestamp {_show(ts)} ({type(ts).__name__}) must be an ISO 8601 "
                       "string or unix seconds.")
    if unix > now + MAX_FUTURE_SECONDS:
        raise Rejected("invalid_timestamp", f"timestamp {_show(ts)} is more than 1 day in the future.")
    if unix < now - MAX_PAST_SECONDS:
        raise Rejected("invalid_timestamp", f"timestamp {_show(ts)} is more than 10 years in the past.")
    return format_time(unix)


def _decode(path: str) -> str:
    """%-decode until stable (so %252e%252e cannot hide '..'), then NFKC-normalise."""
    for _ in range(4):
        decoded = urllib.parse.unquote(path)
        if decoded == path:
            break
        path = decoded
    return unicodedata.normalize("NFKC", path)


def check_artifact_path(path: object, outputs_dir: Path) -> str:
    """A path relative to the outputs dir, inside it, not a symlink nor under one -> its posix form."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise Rejected("invalid_artifact", f"artifact path must be a string, got {type(path).__name__}.")
    raw = path
    if "\\" in raw or "%5c" in raw.lower():
        raise Rejected("invalid_artifact", f"artifact path {_show(raw)} contains a backslash; use '/'.")
    text = _decode(raw)
    if not text or text != text.strip():
        raise Rejected("invalid_artifact", f"artifact path {_show(raw)} is empty or has surrounding whitespace.")
    if any(ord(c) < 32 for c in text) or any(c in _BAD_PATH_CHARS for c in text):
        raise Rejected("invalid_artifact", f"artifact path {_show(raw)} contains control or shell characters.")
    posix = PurePosixPath(text)
    if posix.is_absolute() or text.startswith("~") or re.match(r"[A-Za-z]:", text):
        raise Rejected("invalid_artifact", f"artifact path {_show(raw)} is absolute; give it relative to the "
                       "outputs dir (e.g. 'model/model.pt').")
    if any(part == ".." for part in posix.parts):
        raise Rejected("invalid_artifact", f"artifact path {_show(raw)} contains '..'; it must stay inside the "
                       "outputs dir.")
    parts = [p for p in posix.parts if p != "."]
    if not parts:
        raise Rejected("invalid_artifact", f"artifact path {_show(raw)} names the outputs dir itself.")
    current = outputs_dir
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise Rejected("invalid_artifact", f"artifact path {_show(raw)} is or passes through a symlink "
                           f"({current}); log the real file instead.")
    root = outputs_dir.resolve()
    resolved = (outputs_dir / Path(*parts)).resolve()
    if resolved != root and root not in resolved.parents:
        raise Rejected("invalid_artifact", f"artifact path {_show(raw)} resolves outside the outputs dir.")
    return "/".join(parts)


def is_loss_name(name: str) -> bool:
    return name == "loss" or name.endswith("/loss")


def describe(value: Any) -> str:
    return _show(value)
