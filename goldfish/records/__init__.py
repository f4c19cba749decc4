"""Records: experiment memory — records, results_spec, finalization, history, comparison, lineage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.records.service import Records
    from goldfish.records.models import FinalizeResult, UnfinalizedResult, HistoryRecord, HistoryResult, RecordDetail, TagResult, ExperimentContext, DebugInfo, SavedSpecResult, LineageResult

__all__ = [
    "DebugInfo",
    "ExperimentContext",
    "FinalizeResult",
    "HistoryRecord",
    "HistoryResult",
    "LineageResult",
    "RecordDetail",
    "Records",
    "SavedSpecResult",
    "TagResult",
    "UnfinalizedResult",
]

__getattr__ = lazy_face(__name__, {
    "Records": "service",
    "FinalizeResult": "models",
    "UnfinalizedResult": "models",
    "HistoryRecord": "models",
    "HistoryResult": "models",
    "RecordDetail": "models",
    "TagResult": "models",
    "ExperimentContext": "models",
    "DebugInfo": "models",
    "SavedSpecResult": "models",
    "LineageResult": "models",
})
