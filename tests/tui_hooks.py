"""A run hook for the dashboard tests: the during-run monitor reports one warning finding for a
stage whose config has ``monitor_warn`` (loaded by runners through a test-only entry point)."""

from __future__ import annotations

from typing import Any


def monitor(ctx: Any) -> dict[str, Any] | None:
    if not (ctx.run.get("config") or {}).get("monitor_warn") or ctx.state.get("warned"):
        return None
    ctx.state["warned"] = True
    return {"findings": [{"source": "monitor", "check": "loss_plateau", "severity": "warning", "signal": "acc",
                          "message": "acc has barely moved for 3 steps", "value": None, "threshold": None}]}
