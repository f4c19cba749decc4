"""Runs: the run service, the detached runner and what it drives (stages, backends, post-run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.runs.cancel import CancelResult
    from goldfish.runs.service import Runs, RunResult, DryRunResult, StageRunInfo, GateInfo
    from goldfish.runs.inspect import InspectRunResult, MetricHistoryResult
    from goldfish.runs.logs import LogsResult
    from goldfish.runs.dashboard import DashboardResult

__all__ = [
    "CancelResult",
    "DashboardResult",
    "DryRunResult",
    "GateInfo",
    "InspectRunResult",
    "LogsResult",
    "MetricHistoryResult",
    "RunResult",
    "Runs",
    "StageRunInfo",
]

__getattr__ = lazy_face(__name__, {
    "Runs": "service",
    "RunResult": "service",
    "DryRunResult": "service",
    "CancelResult": "cancel",
    "StageRunInfo": "service",
    "GateInfo": "service",
    "InspectRunResult": "inspect",
    "MetricHistoryResult": "inspect",
    "LogsResult": "logs",
    "DashboardResult": "dashboard",
})
