"""The same query for the stage lines of gce runs that live in Cloud Logging.

``cloud_filter(node, now)`` translates a query tree into a Cloud Logging filter over the entries the
worker agent writes (log ``goldfish-stage``: labels ``goldfish_run``, ``goldfish_prun``,
``goldfish_stage``, ``goldfish_workspace``; ``jsonPayload {offset, text}``). It always carries a
timestamp bound (the query's own ``_time``, else the last ``DEFAULT_DAYS`` days): without one Cloud
Logging searches one day only. Terms Cloud Logging cannot hold (another source than ``stage``, a
level other than ``info``: stage lines there have none) are folded to true/false first; a query
that is false for every cloud line sends no request at all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from goldfish.logsearch.query import And, Field, Node, Not, Or, Text, TimeRange

DEFAULT_DAYS = 30
TRUE, FALSE = "TRUE", "FALSE"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _label(value: str) -> str:
    from goldfish.runs.backends.gce.instance import label_value

    return label_value(value)


def _s(value: str) -> str:
    return json.dumps(value)


def translate(node: Node) -> str:
    """A Cloud Logging filter for ``node`` (or TRUE / FALSE)."""
    if isinstance(node, Text):
        return f"jsonPayload.text:{_s(node.raw.rstrip('*') if not node.phrase or node.prefix else node.raw)}"
    if isinstance(node, Field):
        name, value = node.name, node.value
        if name == "run":
            key = "goldfish_prun" if value.startswith("prun-") else "goldfish_run"
            return f"labels.{key}={_s(value)}"
        if name in ("stage", "workspace"):
            return f"labels.goldfish_{name}={_s(_label(value))}"
        if name == "level":
            return TRUE if value == "info" else FALSE
        return TRUE if value == "stage" else FALSE
    if isinstance(node, TimeRange):
        parts = []
        if node.start is not None:
            parts.append(f'timestamp>="{_iso(node.start)}"')
        if node.end is not None:
            parts.append(f'timestamp<="{_iso(node.end)}"')
        return " AND ".join(parts) or TRUE
    if isinstance(node, Not):
        inner = translate(node.item)
        return FALSE if inner == TRUE else TRUE if inner == FALSE else f"NOT ({inner})"
    if isinstance(node, And):
        items = [translate(n) for n in node.items]
        if FALSE in items:
            return FALSE
        kept = [i for i in items if i != TRUE]
        return " AND ".join(f"({i})" for i in kept) if kept else TRUE
    if isinstance(node, Or):
        items = [translate(n) for n in node.items]
        if TRUE in items:
            return TRUE
        kept = [i for i in items if i != FALSE]
        return " OR ".join(f"({i})" for i in kept) if kept else FALSE
    raise TypeError(f"unknown query node {node!r}")


def _lower_bound(node: Node | None) -> float | None:
    """The query's own top-level start time, if it has one."""
    if isinstance(node, TimeRange):
        return node.start
    if isinstance(node, And):
        starts = [n.start for n in node.items if isinstance(n, TimeRange) and n.start is not None]
        return max(starts) if starts else None
    return None


def cloud_filter(node: Node | None, now: float) -> str | None:
    """The filter to send (None: the query cannot match a cloud line). Always time-bounded."""
    text = translate(node) if node is not None else TRUE
    if text == FALSE:
        return None
    start = _lower_bound(node)
    bound = f'timestamp>="{_iso(start if start is not None else now - DEFAULT_DAYS * 86400)}"'
    return bound if text == TRUE else f"({text}) AND {bound}"


def mirrored(runs_dir: Path, entry: dict[str, Any], cache: dict[str, dict[str, Any]]) -> bool:
    """The entry is already in the run's local ``stdout.log`` (the runner mirrors gce logs), so the
    local index has it: the local hit stands for it."""
    run_id = entry.get("run_id") or ""
    if run_id not in cache:
        try:
            cache[run_id] = json.loads((runs_dir / run_id / "logs" / "remote_log.json").read_text())
        except (OSError, ValueError):
            cache[run_id] = {}
    state = cache[run_id]
    if not state:
        return False
    attempt = int(entry.get("attempt") or 1)
    if attempt < int(state.get("attempt") or 1):
        return True
    return attempt == int(state.get("attempt") or 1) and int(entry.get("offset") or 0) < int(state.get("offset") or 0)
