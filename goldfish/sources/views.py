"""How registry rows are shown: summaries, display-sized metadata, integrity messages, filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from goldfish import names
from goldfish.errors import InvalidInput
from goldfish.sources.models import SourceInfo

DISPLAY_LIST_ITEMS = 50


def created_by_filter(created_by: str | None) -> Callable[[str], bool]:
    if created_by is None:
        return lambda value: True
    if created_by == "external":
        return lambda value: value == "external"
    if created_by == "run":
        return lambda value: value.startswith("run:")
    if created_by.startswith("run:") and names.STAGE_RUN_RE.fullmatch(created_by[4:]):
        return lambda value: value == created_by
    raise InvalidInput(f"Unknown created_by filter {created_by!r}.",
                       fix="Use 'external', 'run' (any run) or 'run:stage-1a2b3c4d'.")


def summary_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"], "description": str(row.get("description") or ""), "location": row["location"],
        "uri_kind": row.get("uri_kind", "local"), "format": str(row.get("format") or ""),
        "size_bytes": row.get("size_bytes"), "sha256": row.get("sha256"), "status": row.get("status", "available"),
        "metadata_status": row.get("metadata_status", "ok"), "created_at": row.get("created_at") or "",
        "updated_at": row.get("updated_at"), "created_by": row.get("created_by") or "external",
    }


def display_metadata(metadata: Any) -> tuple[Any, bool]:
    """The metadata with lists longer than DISPLAY_LIST_ITEMS shortened (a million feature names
    would not fit a tool result); True when something was shortened."""
    truncated = False

    def walk(value: Any) -> Any:
        nonlocal truncated
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            if len(value) > DISPLAY_LIST_ITEMS:
                truncated = True
                return [walk(v) for v in value[:DISPLAY_LIST_ITEMS]]
            return [walk(v) for v in value]
        return value

    shown = walk(metadata)
    return shown, truncated


def integrity_message(info: SourceInfo) -> str:
    base = f"{info.name}: {info.format}, {info.size_bytes} bytes at {info.location}."
    if info.integrity == "ok":
        return f"{base} Content is as registered."
    if info.integrity == "changed":
        return (f"{base} CHANGED since registration ({info.integrity_detail}); runs reading it are blocked. "
                "Register the new data under a new name or manage_sources(action='update').")
    if info.integrity == "missing":
        return f"{base} MISSING: {info.integrity_detail}."
    return f"{base} {info.integrity_detail or ''}".strip()
