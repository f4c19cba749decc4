"""Run hooks used by the engine tests (loaded by runners through a test-only entry point).

A stage config key ``hold`` makes a hook wait in that phase until the run is asked to cancel (or
20 s pass), so a test can act while the run sits in ``preparing`` or ``post_run``. ``monitor_stop``
makes the monitor request a stop once the stage has run that many seconds."""

from __future__ import annotations

import time
from typing import Any

from goldfish.runs.state import ws_partition


def _hold(ctx: Any, phase: str) -> None:
    config = ctx.run.get("config") or getattr(ctx, "config", {}) or {}
    if config.get("hold") != phase:
        return
    table = ("runs", ws_partition(ctx.run["workspace"]))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        doc = ctx.project.store.table(*table).get_doc(ctx.run["id"]) or {}
        if doc.get("cancel_requested"):
            return
        time.sleep(0.05)


def review(ctx: Any) -> dict[str, Any]:
    if ctx.config.get("hold") == "preparing":
        ctx.run = {**ctx.run, "config": ctx.config}
        _hold(ctx, "preparing")
    if ctx.config.get("block_review"):
        return {"decision": "blocked", "summary": "test reviewer blocks this", "provider": "test"}
    return {"decision": "approved", "summary": "test reviewer approves", "provider": "test"}


def monitor(ctx: Any) -> dict[str, Any] | None:
    after = (ctx.run.get("config") or {}).get("monitor_stop")
    if after is not None and ctx.elapsed_seconds > after:
        return {"findings": [{"source": "monitor", "check": "test", "severity": "warning", "signal": None,
                              "message": "test monitor wants a stop", "value": None, "threshold": None}],
                "request_stop": True, "stop_reason": "test monitor: loss diverged"}
    return None


def post_run(ctx: Any) -> dict[str, Any]:
    _hold(ctx, "post_run")
    return {"decision": "ok", "details": {"checked_by": "test"}}
