"""Sources: the data registry — register, update, verify sources; artifacts; strict metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.sources.service import Sources
    from goldfish.sources.models import SourceInfo, SourceSummary, SourceLineage, RegisterSourceResult, PromoteResult, ManageSourcesResult

__all__ = [
    "ManageSourcesResult",
    "PromoteResult",
    "RegisterSourceResult",
    "SourceInfo",
    "SourceLineage",
    "SourceSummary",
    "Sources",
]

__getattr__ = lazy_face(__name__, {
    "Sources": "service",
    "SourceInfo": "models",
    "SourceSummary": "models",
    "SourceLineage": "models",
    "RegisterSourceResult": "models",
    "PromoteResult": "models",
    "ManageSourcesResult": "models",
})
