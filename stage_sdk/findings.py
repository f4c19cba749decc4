"""SVS findings and stats documents in ``.goldfish/`` (``svs_findings.json``, ``svs_stats.json``).

Both are merged under a lock and replaced atomically, so several writers (the stage's threads, an
SDK in another language in the same run) append instead of overwriting each other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from stage_sdk import _env, _fs, runtime

Severity = Literal["info", "warning", "error"]
MAX_FINDINGS = 10_000


@dataclass(frozen=True)
class Finding:
    """One SVS observation. ``signal`` is the output (or metric) it is about."""

    source: str
    check: str
    severity: Severity
    signal: str | None
    message: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for key in ("value", "threshold"):
            v = doc[key]
            if v is not None:
                v = float(v)
                doc[key] = v if math.isfinite(v) else None
        return doc


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def record_findings(findings: list[Finding]) -> bool:
    """Append findings to ``svs_findings.json``; returns False (after a stderr note) on failure."""
    if not findings:
        return True
    new = [f.to_dict() for f in findings]

    def merge(doc: dict[str, Any]) -> dict[str, Any]:
        existing = doc.get("findings")
        items = existing if isinstance(existing, list) else []
        items = (items + new)[-MAX_FINDINGS:]
        out = dict(doc)
        out["version"] = 1
        out["findings"] = items
        return out

    try:
        _fs.update_json(_env.runtime_dir() / "svs_findings.json", merge)
    except Exception as exc:  # findings are advisory: never break the stage
        runtime.sdk_warning(f"goldfish: could not record SVS findings: {exc}")
        return False
    return True


def record_stats(entries: dict[str, dict[str, Any]]) -> bool:
    """Merge per-signal stats into ``svs_stats.json`` (a later save of a signal replaces its entry)."""
    if not entries:
        return True

    def merge(doc: dict[str, Any]) -> dict[str, Any]:
        stats = doc.get("stats")
        merged = dict(stats) if isinstance(stats, dict) else {}
        merged.update(_clean(entries))
        out = dict(doc)
        out["version"] = 1
        out["stats"] = merged
        return out

    try:
        _fs.update_json(_env.runtime_dir() / "svs_stats.json", merge)
    except Exception as exc:
        runtime.sdk_warning(f"goldfish: could not record SVS stats: {exc}")
        return False
    return True
