"""SVS findings and review verdicts: one shape for every check, from preflight to failure patterns.

A finding records who saw it (``source``), which check, how bad (``severity``) and how sure
(``confidence``), where (stage, file:line or signal), and the fix. The verdict of a review is
derived from its findings by one rule: only a high-confidence error blocks; otherwise any warning
or low-confidence error warns.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FindingSource = Literal[
    "preflight",
    "review",
    "rules",
    "anthropic",
    "monitor",
    "contract",
    "stats",
    "metric_health",
    "post_run",
    "pattern",
]
Severity = Literal["info", "warning", "error"]
Confidence = Literal["high", "medium", "low"]
Verdict = Literal["approved", "warned", "blocked"]
Provider = Literal["rules", "anthropic", "null"]

SOURCES: tuple[str, ...] = FindingSource.__args__  # type: ignore[attr-defined]
SEVERITIES: tuple[str, ...] = ("info", "warning", "error")
_RANK = {"info": 0, "warning": 1, "error": 2}


class Finding(BaseModel):
    """One SVS observation about a stage: its code, its config, its run or its outputs."""

    model_config = ConfigDict(extra="forbid")

    source: FindingSource = Field(description="Who found it: preflight, rules, anthropic, monitor, stats, ...")
    check: str = Field(description="Which check, e.g. undefined_name, non_finite_metric, constant_output")
    severity: Severity = Field(description="info, warning or error")
    confidence: Confidence = Field(default="high", description="How sure the check is: high, medium or low")
    stage: str | None = Field(default=None, description="Stage the finding is about")
    file: str | None = Field(default=None, description="File relative to the workspace, e.g. modules/train.py")
    line: int | None = Field(default=None, description="1-based line in file")
    message: str = Field(description="What is wrong")
    fix: str | None = Field(default=None, description="What to change")
    signal: str | None = Field(default=None, description="Signal or metric the finding is about")
    value: float | None = Field(default=None, description="Observed value, when the check measures one")
    threshold: float | None = Field(default=None, description="The limit the value was compared with")

    @property
    def blocks(self) -> bool:
        """Only a high-confidence error stops a run."""
        return self.severity == "error" and self.confidence == "high"

    @property
    def key(self) -> str:
        """Stable identity (for de-duplication and 'shown once' bookkeeping)."""
        text = "|".join(
            str(x) for x in (self.source, self.check, self.stage, self.file, self.line, self.signal, self.message)
        )
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def where(self) -> str:
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        if self.signal:
            return self.signal
        return self.stage or ""

    def render(self) -> str:
        where = self.where()
        text = f"[{self.severity}/{self.confidence}] {self.check}"
        text += f" at {where}: {self.message}" if where else f": {self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def finding_from_sdk(doc: Mapping[str, Any], *, stage: str | None = None) -> Finding | None:
    """A finding from ``svs_findings.json`` (written by a stage SDK); None when unreadable.

    SDK documents have no confidence, file or fix; their checks are deterministic (high). An
    unknown source (a newer SDK) is kept under ``post_run`` with the original source in the check.
    """
    if not isinstance(doc, Mapping):
        return None
    message, check = doc.get("message"), doc.get("check")
    if not isinstance(message, str) or not isinstance(check, str):
        return None
    severity = doc.get("severity") if doc.get("severity") in SEVERITIES else "warning"
    source = doc.get("source")
    if source not in SOURCES:
        check = f"{source}:{check}" if isinstance(source, str) else check
        source = "post_run"
    signal = doc.get("signal")
    return Finding.model_validate({
        "source": source,
        "check": check,
        "severity": severity,
        "confidence": "high",
        "stage": stage,
        "signal": signal if isinstance(signal, str) else None,
        "message": message,
        "value": _number(doc.get("value")),
        "threshold": _number(doc.get("threshold")),
    })


def verdict_for(findings: Iterable[Finding]) -> Verdict:
    """blocked: a high-confidence error; warned: any warning or other error; else approved."""
    verdict: Verdict = "approved"
    for finding in findings:
        if finding.blocks:
            return "blocked"
        if finding.severity in ("warning", "error"):
            verdict = "warned"
    return verdict


def worst(findings: Iterable[Finding]) -> Severity | None:
    best: Severity | None = None
    for finding in findings:
        if best is None or _RANK[finding.severity] > _RANK[best]:
            best = finding.severity
    return best


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """Drop repeats (same key), keeping the first."""
    seen: set[str] = set()
    out: list[Finding] = []
    for finding in findings:
        if finding.key not in seen:
            seen.add(finding.key)
            out.append(finding)
    return out


class ReviewResult(BaseModel):
    """Outcome of a pre-run review."""

    verdict: Verdict = Field(description="approved, warned (go ahead, read the findings) or blocked")
    provider: Provider = Field(description="Provider that decided: rules, anthropic or null")
    model: str | None = Field(default=None, description="AI model used, if any")
    findings: list[Finding] = Field(default_factory=list, description="Everything the review found")
    text: str = Field(default="", description="Summary (the AI's summary when an AI reviewed)")
    duration_ms: int = Field(default=0, description="Time the review took")
    skipped: bool = Field(default=False, description="True when no review ran (skip_review or switched off)")
    skip_reason: str | None = Field(default=None, description="Why the review was skipped")

    @property
    def blocked(self) -> bool:
        return self.verdict == "blocked"

    def blocking_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.blocks]

    def block_message(self, limit: int = 5) -> str:
        """One paragraph naming the blocking findings (for the run's error field)."""
        blocking = self.blocking_findings()
        lines = [f"- {f.render()}" for f in blocking[:limit]]
        more = f"\n- ... and {len(blocking) - limit} more" if len(blocking) > limit else ""
        return (
            f"Pre-run review ({self.provider}) blocked the run with {len(blocking)} error(s):\n"
            + "\n".join(lines)
            + more
            + "\nFix the code or config in the workspace and run again; use skip_review=True only if"
            " the review is wrong about safe code."
        )
