"""Timestamps as stored (ISO 8601 UTC with a Z) and as shown to people ("5m ago")."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """Current UTC time, e.g. ``2026-01-01T12:00:00.123456Z`` (sortable as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def age(text: str | None, *, now: datetime | None = None) -> str:
    """'45s ago', '5m ago', '3h ago', '2d ago'; '' when the timestamp is unreadable."""
    if not text:
        return ""
    then = parse_iso(text)
    if then is None:
        return ""
    return ago(((now or datetime.now(UTC)) - then).total_seconds())


def ago(seconds: float | None) -> str:
    """'45s ago', '5m ago', '3h ago', '2d ago' (one coarse unit); '' for None or NaN."""
    if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    if s < 86400:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


def utc(text: str | None) -> str:
    """'2026-01-01 12:00 UTC' of a stored timestamp; '?' when unreadable."""
    then = parse_iso(text or "")
    return then.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if then else "?"


def stamped(text: str | None, *, now: datetime | None = None) -> str:
    """'2026-01-01 12:00 UTC, 5m ago': the absolute time first, so the line stays true when read
    later than it was written (STATE.md)."""
    rel = age(text, now=now)
    return f"{utc(text)}, {rel}" if rel else utc(text)


def clock(text: str | None) -> str:
    """'HH:MM' (UTC) of a stored timestamp, for STATE.md action lines."""
    then = parse_iso(text or "")
    return then.strftime("%H:%M") if then else "--:--"
