"""Preflight: the deterministic checks a stage must pass before it is reviewed and launched.

Pipeline and config validation for the one stage (``validate_pipeline(..., stages=[stage])``, with
dataset contracts compared against the registered sources' metadata), plus the input-resolution
problems the runner found. Errors fail the stage run with cause ``preflight`` (the runner does
that); warnings are stored on the run and shown by ``inspect_run(include=["svs"])``.

It runs whatever ``svs.enabled`` says: a pipeline or config that does not validate cannot run, so
switching SVS off must not turn these errors into later, vaguer ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from goldfish.issues import Issue
from goldfish.pipelines.validate import validate_pipeline
from goldfish.pipelines.model import Pipeline
from goldfish.svs.findings import Finding

if TYPE_CHECKING:
    from goldfish.project import Project


class PreflightResult(BaseModel):
    """Errors block the stage (cause preflight); warnings are recorded."""

    errors: list[Issue] = Field(default_factory=list, description="Problems that stop the stage")
    warnings: list[Issue] = Field(default_factory=list, description="Problems worth knowing")

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_message(self, limit: int = 10) -> str:
        lines = [f"- {issue.render()}" for issue in self.errors[:limit]]
        more = f"\n- ... and {len(self.errors) - limit} more" if len(self.errors) > limit else ""
        return f"Preflight found {len(self.errors)} error(s):\n" + "\n".join(lines) + more

    def findings(self, stage: str) -> list[Finding]:
        """The issues as findings (for the SVS views)."""
        out = []
        for severity, issues in (("error", self.errors), ("warning", self.warnings)):
            for issue in issues:
                out.append(Finding.model_validate({
                    "source": "preflight", "check": "preflight", "severity": severity, "stage": stage,
                    "file": issue.location, "message": issue.message, "fix": issue.fix,
                }))
        return out


def _issues(items: Iterable[Issue | Mapping[str, Any] | str] | None, where: str) -> list[Issue]:
    out = []
    for item in items or ():
        if isinstance(item, Issue):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Issue(location=str(item.get("location") or where), message=str(item.get("message")),
                             fix=item.get("fix")))
        else:
            out.append(Issue(location=where, message=str(item)))
    return out


def preflight(
    project: Project,
    *,
    app_dir: Path,
    pipeline: Pipeline,
    stage: str,
    config_override: Mapping[str, Any] | None = None,
    inputs_override: Mapping[str, Any] | None = None,
    input_errors: Iterable[Issue | Mapping[str, Any] | str] | None = None,
    input_warnings: Iterable[Issue | Mapping[str, Any] | str] | None = None,
) -> PreflightResult:
    """Validate ``stage`` as archived in ``app_dir``. ``config_override`` / ``inputs_override``:
    this stage's overrides (flat). Registered sources the stage reads must be as registered
    (``project.sources.preflight``: a changed or missing file is an error)."""
    config = project.config
    overrides = dict(inputs_override or {})
    report = validate_pipeline(
        pipeline,
        Path(app_dir),
        stages=[stage],
        config_override={stage: dict(config_override)} if config_override else None,
        overridden_inputs={stage: set(overrides)},
        backend=config.jobs.backend,
        profile_overrides=config.gce.profile_overrides if config.gce is not None else None,
        zones=config.gce.zones if config.gce is not None else None,
        source_schemas=project.sources.source_schemas,
    )
    sources = project.sources.preflight(pipeline.stage(stage), overrides, location=f"stages[{pipeline.index(stage)}]")
    return PreflightResult(
        errors=[*report.errors, *sources, *_issues(input_errors, f"stages[{stage}].inputs")],
        warnings=[*report.warnings, *_issues(input_warnings, f"stages[{stage}].inputs")],
    )
