"""Plain-text formatting shared by the screens and the ``--text`` rendering (no Textual)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from goldfish.timefmt import ago

SPARK = "▁▂▃▄▅▆▇█"

STATE_STYLE: dict[str, str] = {
    "pending": "dim",
    "preparing": "cyan",
    "launching": "cyan",
    "running": "bold green",
    "post_run": "green",
    "completed": "green",
    "failed": "bold red",
    "terminated": "red",
    "canceled": "yellow",
    "skipped": "dim",
}
SEVERITY_STYLE: dict[str, str] = {"error": "bold red", "warning": "yellow", "info": "dim"}
OUTCOME_STYLE: dict[str, str] = {"success": "green", "partial": "yellow", "miss": "red", "unknown": "dim"}


def parse_ts(value: object) -> float | None:
    """Unix seconds of a stored ISO timestamp (``...Z``) or a number; None when unreadable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def duration(seconds: float | None) -> str:
    """'42s', '3m05s', '2h04m', '3d02h'; '' for None."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


age = ago  # '5s ago' style: the same wording as the MCP tools and STATE.md


def clock(ts: float | None) -> str:
    """'YYYY-MM-DD HH:MM:SS' UTC."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def number(value: float | None, digits: int = 4) -> str:
    """A metric value, compact: 0.8312, 1.23e-05, 12345.7; '' for None, 'nan'/'inf' kept."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.{max(1, digits - 2)}e}"
    text = f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}"
    return text


def delta(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    sign = "+" if value > 0 else ""
    return sign + number(value, digits)


def spark(values: Sequence[float | None], width: int = 12) -> str:
    """A unicode sparkline of the last ``width`` finite values (flat series → a flat line)."""
    finite = [v for v in values if v is not None and math.isfinite(v)][-width:]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    if hi == lo:
        return SPARK[3] * len(finite)
    scale = (len(SPARK) - 1) / (hi - lo)
    return "".join(SPARK[round((v - lo) * scale)] for v in finite)


def shorten(text: object, limit: int) -> str:
    """One line, at most ``limit`` characters (an ellipsis marks the cut)."""
    if text is None:
        return ""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: max(0, limit - 1)] + "…"
