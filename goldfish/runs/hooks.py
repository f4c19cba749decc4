"""Hook points of the runner, for SVS reviews, the during-run monitor and post-run checks.

The runner calls, for every stage run:

* ``review(ReviewContext) -> ReviewResult`` during ``preparing``, after preflight and input
  resolution (skipped when the run has ``skip_review``; the skip is recorded). ``blocked`` fails the
  stage with cause ``review_blocked``. The default approves, and the approval is recorded.
* ``monitor(MonitorContext) -> MonitorResult | None`` on every poll tick while ``running``. Findings
  are stored on the run (``svs.during``); ``request_stop`` writes ``stop_requested`` (the stage sees
  ``should_stop()``); a stage still running a grace period later is stopped (cause ``ai_stopped``).
* ``post_run(PostRunContext) -> PostRunResult | None`` in ``post_run`` after outputs, stats and
  findings are collected; its result is stored under ``svs.post``. A ``"failed"`` decision (from any
  provider) fails the stage with cause ``contract`` and ``details["error"]`` as the message.
* ``failed(FailedContext) -> dict | None`` after a stage run ended ``failed`` (exit_nonzero) or
  ``terminated`` (not canceled or preempted), e.g. to learn a failure pattern from its log; the
  results are stored under ``svs.failure_patterns``.

Providers: the built-in module ``goldfish.svs.run_hooks`` when it exists, then every entry point of
group ``goldfish.run_hooks`` (an object or module with any of ``review``/``monitor``/``post_run``),
then anything passed to ``register``. Reviews combine to the most severe decision; monitor findings
and stop requests add up. A hook that raises never fails a run (it is recorded as a warning
finding): hooks are advisory, the runner's own checks are the ones that fail closed.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from goldfish.project import Project

BUILTIN_PROVIDERS = ("goldfish.svs.run_hooks",)
ENTRY_POINT_GROUP = "goldfish.run_hooks"
_SEVERITY = {"approved": 0, "warned": 1, "blocked": 2}


@dataclass
class ReviewContext:
    project: Project
    run: dict[str, Any]
    app_dir: Path
    pipeline: Any
    stage: str
    config: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    preflight: dict[str, list[dict[str, Any]]]
    config_override: dict[str, Any]
    inputs_override: dict[str, Any]


class ReviewResult(BaseModel):
    decision: Literal["approved", "warned", "blocked"] = Field(description="approved, warned or blocked")
    summary: str = Field(default="", description="One line for the run's error / the agent")
    findings: list[dict[str, Any]] = Field(default_factory=list, description="Issues the review found")
    provider: str = Field(default="default", description="Who reviewed")


@dataclass
class MonitorContext:
    project: Project
    run: dict[str, Any]
    run_dir: Path
    elapsed_seconds: float
    metrics_summary: dict[str, dict[str, Any]]
    state: dict[str, Any] = field(default_factory=dict)  # kept across ticks for one stage run


class MonitorResult(BaseModel):
    findings: list[dict[str, Any]] = Field(default_factory=list)
    request_stop: bool = False
    stop_reason: str | None = None


@dataclass
class PostRunContext:
    project: Project
    run: dict[str, Any]
    run_dir: Path
    outputs: dict[str, dict[str, Any]]
    metrics_summary: dict[str, dict[str, Any]]
    stats: dict[str, Any] | None
    findings: list[dict[str, Any]]
    results_auto: dict[str, Any] | None


class PostRunResult(BaseModel):
    decision: str | None = None
    findings: list[dict[str, Any]] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


@dataclass
class FailedContext:
    project: Project
    run: dict[str, Any]
    run_dir: Path


def _warning(provider: str, phase: str, exc: BaseException) -> dict[str, Any]:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return {"source": "hook", "check": f"{phase}_hook_error", "severity": "warning", "signal": None,
            "message": f"{provider} {phase} hook failed: {last}", "value": None, "threshold": None}


class RunHooks:
    """The hook providers of one runner process."""

    def __init__(self, providers: list[tuple[str, Any]] | None = None):
        self.providers: list[tuple[str, Any]] = list(providers or [])
        self.failures: dict[str, int] = {}

    def register(self, name: str, provider: Any) -> None:
        self.providers.append((name, provider))

    def _each(self, phase: str) -> list[tuple[str, Callable[[Any], Any]]]:
        out = []
        for name, provider in self.providers:
            fn = getattr(provider, phase, None)
            if callable(fn):
                out.append((name, fn))
        return out

    def review(self, ctx: ReviewContext) -> ReviewResult:
        result = ReviewResult(decision="approved", summary="approved (no reviewer objected)", provider="default")
        for name, fn in self._each("review"):
            try:
                got = fn(ctx)
            except Exception as exc:  # fail open: a broken reviewer must not block work
                result.findings.append(_warning(name, "review", exc))
                continue
            if got is None:
                continue
            got = got if isinstance(got, ReviewResult) else ReviewResult.model_validate(got)
            result.findings.extend(got.findings)
            if _SEVERITY[got.decision] >= _SEVERITY[result.decision] and got.decision != "approved":
                result.decision, result.summary, result.provider = got.decision, got.summary, got.provider or name
            elif result.provider == "default":
                result.provider = got.provider or name
                result.summary = got.summary or result.summary
        return result

    def monitor(self, ctx: MonitorContext) -> MonitorResult:
        result = MonitorResult()
        for name, fn in self._each("monitor"):
            if self.failures.get(name, 0) >= 3:
                continue  # a monitor that keeps failing is switched off for this runner
            try:
                got = fn(ctx)
            except Exception as exc:
                self.failures[name] = self.failures.get(name, 0) + 1
                result.findings.append(_warning(name, "monitor", exc))
                continue
            if got is None:
                continue
            got = got if isinstance(got, MonitorResult) else MonitorResult.model_validate(got)
            result.findings.extend(got.findings)
            if got.request_stop:
                result.request_stop = True
                result.stop_reason = result.stop_reason or got.stop_reason or f"stop requested by {name}"
        return result

    def post_run(self, ctx: PostRunContext) -> PostRunResult:
        result = PostRunResult()
        for name, fn in self._each("post_run"):
            try:
                got = fn(ctx)
            except Exception as exc:
                result.findings.append(_warning(name, "post_run", exc))
                continue
            if got is None:
                continue
            got = got if isinstance(got, PostRunResult) else PostRunResult.model_validate(got)
            result.findings.extend(got.findings)
            result.details.update(got.details)
            if result.decision != "failed":  # a failure from one provider is not undone by another
                result.decision = got.decision or result.decision
        return result

    def failed(self, ctx: FailedContext) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, fn in self._each("failed"):
            try:
                got = fn(ctx)
            except Exception as exc:
                out.append(_warning(name, "failed", exc))
                continue
            if got:
                out.append({"provider": name, **dict(got)})
        return out


def load_hooks() -> RunHooks:
    """Built-in providers that are installed, then entry points of group ``goldfish.run_hooks``."""
    hooks = RunHooks()
    for module in BUILTIN_PROVIDERS:
        try:
            hooks.register(module, importlib.import_module(module))
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        hooks.register(ep.name, ep.load())
    return hooks
