"""Sources (the data registry, read from the project partition) and failure patterns (``project.patterns``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui.format import parse_ts
from tui.viewmodels import PatternView, SourceView

if TYPE_CHECKING:
    from goldfish.project import Project

PATTERNS_SHOWN = 500  # the most manage_patterns lists in one page
_SOURCE_DETAIL = ("uri_kind", "status", "metadata_status", "sha256", "reason", "updated_at")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def load_sources(project: Project) -> tuple[SourceView, ...]:
    out = []
    for doc in sorted(project.store.table("sources").iter_raw(), key=lambda d: str(d["id"])):
        if doc.get("deleted_at"):
            continue
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        fmt = doc.get("format") or ((meta.get("source") or {}).get("format") if isinstance(meta, dict) else None)
        out.append(SourceView(
            key=str(doc["id"]), name=str(doc["id"]), format=fmt,
            location=doc.get("location") or doc.get("gcs_path") or doc.get("uri"),
            size_bytes=_int(doc.get("size_bytes")), created=parse_ts(doc.get("created_at")),
            created_by=doc.get("created_by"), description=doc.get("description"),
            extra={**{k: doc[k] for k in _SOURCE_DETAIL if doc.get(k) is not None},
                   **({"lineage": _lineage_text(doc["lineage"])} if isinstance(doc.get("lineage"), dict) else {})},
        ))
    return tuple(out)


def load_patterns(project: Project, status: str | None = None,
                  limit: int = PATTERNS_SHOWN) -> tuple[tuple[PatternView, ...], int]:
    """A page of failure patterns from ``project.patterns.list`` (newest sighting first, the order
    ``manage_patterns(action="list")`` gives the agent) and how many match."""
    page, total = project.patterns.list(status=status, limit=limit)
    return tuple(
        PatternView(
            key=p.id, pattern_id=p.id, status=p.status, severity=p.severity, stage=p.stage, symptom=p.symptom,
            root_cause=p.root_cause, prevention=p.prevention, occurrences=p.occurrence_count,
            last_seen=parse_ts(p.last_seen_at), source_run_id=p.source_run_id,
        )
        for p in page
    ), total


def _lineage_text(lineage: dict[str, Any]) -> str:
    parts = []
    if lineage.get("run_id"):
        parts.append(f"from run {lineage['run_id']} output {lineage.get('output_name')}")
    if lineage.get("parent_sources"):
        parts.append("parents " + ", ".join(map(str, lineage["parent_sources"])))
    return "; ".join(parts) or "external"
