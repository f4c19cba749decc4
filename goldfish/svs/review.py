"""Pre-run review: the door the runner calls while a stage run is ``preparing``.

Provider choice (``svs.agent_provider``): ``rules`` runs the offline checks; ``anthropic`` runs
the rules first and then Claude with the rules' findings (if ``svs.ai_pre_run_enabled``); when
Claude fails, its failure is a warning finding and the rules' errors still count; ``null``
approves. ``pre_run_review.enabled`` and ``svs.enabled`` gate the whole review; ``skip_review``
bypasses it for one run and the result records that.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.pipelines.model import Pipeline
from goldfish.pipelines.stage_config import StageConfig
from goldfish.svs.ai import ProviderFailure, failure_message
from goldfish.svs.anthropic_review import ReviewMaterial, anthropic_review
from goldfish.svs.code import collect_stage_code
from goldfish.svs.findings import Finding, ReviewResult, dedupe, verdict_for
from goldfish.svs.rules_review import rules_review

if TYPE_CHECKING:
    from goldfish.project import Project


def _config_values(stage_config: StageConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    if stage_config is None:
        return {}
    if isinstance(stage_config, StageConfig):
        return dict(stage_config.values)
    return dict(stage_config)


def _approved_patterns(project: Project) -> list[dict[str, Any]]:
    return project.patterns.approved()


def pre_run_review(
    project: Project,
    *,
    app_dir: Path,
    pipeline: Pipeline,
    stage: str,
    stage_config: StageConfig | Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    reason: Any = None,
    diff: str | None = None,
    skip_review: bool = False,
    workspace: str | None = None,
) -> ReviewResult:
    """Review ``stage`` as archived in ``app_dir`` before it runs.

    ``inputs``: input name → resolution (``kind``, ``run_id``, ``latest_run_id``, ``latest_state``,
    ``location``, ...); ``overrides``: ``{"config_override": ..., "inputs_override": ...}`` for this
    stage; ``diff``: the diff since the last successful run (text). Never raises for a provider
    problem: the AI fails open with a warning finding.
    """
    svs = project.config.svs
    provider = svs.agent_provider
    if skip_review:
        return ReviewResult(verdict="approved", provider=provider, skipped=True,
                            skip_reason="skip_review=True was passed to run(); the review was bypassed.",
                            text="Review bypassed by skip_review=True.")
    if not svs.enabled:
        return ReviewResult(verdict="approved", provider=provider, skipped=True,
                            skip_reason="svs.enabled is false in goldfish.yaml.")
    if not project.config.pre_run_review.enabled:
        return ReviewResult(verdict="approved", provider=provider, skipped=True,
                            skip_reason="pre_run_review.enabled is false in goldfish.yaml.")
    started = time.monotonic()
    if provider == "null":
        return ReviewResult(verdict="approved", provider="null", text="No review (svs.agent_provider is \"null\").",
                            findings=_test_mode_note(project, [], stage))
    config = _config_values(stage_config)
    patterns = _approved_patterns(project)
    code = collect_stage_code(Path(app_dir), pipeline.stage(stage))
    findings = rules_review(Path(app_dir), pipeline, stage, config, patterns=patterns, inputs=inputs, code=code)
    text = _summary(findings)
    model = None
    used: Any = "rules"
    if provider == "anthropic" and svs.ai_pre_run_enabled:
        used = "anthropic"
        overrides = overrides or {}
        material = ReviewMaterial(
            stage=stage,
            code=code,
            app_dir=Path(app_dir),
            pipeline_text=_pipeline_text(Path(app_dir), pipeline),
            stage_config=config,
            workspace=workspace,
            config_override=overrides.get("config_override"),
            inputs_override=overrides.get("inputs_override"),
            reason=reason,
            diff=diff,
            inputs=inputs,
            rules_findings=findings,
            patterns=patterns,
        )
        try:
            ai_findings, text, answer = anthropic_review(
                svs, material, timeout=float(project.config.pre_run_review.timeout_seconds)
            )
            model = answer.model
            findings = findings + ai_findings
        except ProviderFailure as failure:
            model = failure.model or svs.agent_model
            findings = [*findings, Finding(
                source="anthropic", check=f"provider_{failure.kind}", severity="warning", confidence="high",
                stage=stage, message=failure_message("review", failure)
                + " The run was checked by the offline rules only (fail-open).",
                fix="Check ANTHROPIC_API_KEY / svs.anthropic_base_url and the network; or set"
                    " svs.agent_provider: rules.",
            )]
            text = f"AI review failed open ({failure.kind}); rules: {_summary(findings)}"
    findings = _test_mode_note(project, dedupe(findings), stage)
    return ReviewResult(
        verdict=verdict_for(findings), provider=used, model=model, findings=findings, text=text,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _pipeline_text(app_dir: Path, pipeline: Pipeline) -> str:
    try:
        return (app_dir / pipeline.source).read_text(errors="replace")
    except (OSError, ValueError):
        return pipeline.model_dump_json(indent=1, by_alias=True)


def _summary(findings: list[Finding]) -> str:
    if not findings:
        return "No issues found."
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = sum(1 for f in findings if f.severity == "warning")
    return f"{errors} error(s), {warnings} warning(s), {len(findings) - errors - warnings} note(s)."


def _test_mode_note(project: Project, findings: list[Finding], stage: str) -> list[Finding]:
    """svs.test_mode: a review always reports something, so tests can see it ran."""
    if findings or not project.config.svs.test_mode:
        return findings
    return [Finding(source="review", check="test_mode", severity="info", confidence="high", stage=stage,
                    message="svs.test_mode: the review ran and found nothing.")]
