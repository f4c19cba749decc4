"""The ``anthropic`` review provider: Claude reads what will run and answers with a structured review.

It sees the stage code (capped per file and in total), the pipeline, the merged config, the run
command with its overrides, the diff since the last successful run, how inputs were resolved, the
rules' findings and the approved failure patterns, and must answer by calling ``submit_review``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from goldfish.config.svs import SvsConfig
from goldfish.svs.ai import AiAnswer, call_tool
from goldfish.svs.code import StageCode
from goldfish.svs.findings import Finding

MAX_FILE_CHARS = 100_000
MAX_PROMPT_CHARS = 500_000
MAX_DIFF_CHARS = 50_000

SYSTEM = (
    "You review machine-learning stage code right before it runs, for an experiment tracker called "
    "Goldfish. Report only real problems that would make the run crash, produce wrong results or waste "
    "compute. Mark an issue as severity 'error' with confidence 'high' only when you are sure it breaks "
    "the run: such findings block it. Everything else is a warning or info. Runtime overrides in the run "
    "command take precedence over the static config. Answer by calling submit_review exactly once."
)

CHECKLIST = """Check, for the stage being run:
1. Syntax errors, undefined names, wrong imports.
2. Logic bugs (shapes, off-by-one, data leakage between splits, wrong loss or metric direction).
3. Config: keys the code reads must exist in the merged config (after overrides); numbers given as strings.
4. Pipeline wiring: load_input/save_output names must be the stage's declared signals; file/directory
   outputs are written at get_output_path(name) and passed to save_output as a Path.
5. Key/column names read from inputs must match what the upstream stage writes.
6. Stale inputs: the selected upstream run should be the intended one.
7. Training stages must call log_metric/log_metrics (the results_spec metric especially); long loops
   should call heartbeat() and check should_stop().
8. Whether the change (diff) is coherent with the run's hypothesis.
9. Approved failure patterns: code that matches one is likely to fail the same way again."""


class AiFinding(BaseModel):
    model_config = ConfigDict(extra="ignore")

    severity: Literal["error", "warning", "info"] = Field(description="error only when the run will break")
    confidence: Literal["high", "medium", "low"] = Field(description="how sure you are")
    file: str | None = Field(default=None, description="path relative to the workspace, e.g. modules/train.py")
    line: int | None = Field(default=None, description="1-based line number")
    message: str = Field(min_length=1, description="what is wrong")
    fix: str | None = Field(default=None, description="what to change")
    check: str | None = Field(default=None, description="short snake_case name of the check")


class ReviewAnswer(BaseModel):
    """Arguments of submit_review."""

    model_config = ConfigDict(extra="ignore")

    verdict: Literal["approved", "warned", "blocked"] = Field(description="your overall decision")
    findings: list[AiFinding] = Field(default_factory=list, description="every issue found")
    summary: str = Field(default="", description="two or three sentences for the researcher")


@dataclass
class ReviewMaterial:
    """Everything the AI reviewer is shown."""

    stage: str
    code: StageCode
    app_dir: Path
    pipeline_text: str
    stage_config: Mapping[str, Any]
    workspace: str | None = None
    config_override: Any = None
    inputs_override: Any = None
    reason: Any = None
    diff: str | None = None
    inputs: Mapping[str, Any] | None = None
    rules_findings: list[Finding] = field(default_factory=list)
    patterns: Sequence[Mapping[str, Any]] = field(default_factory=list)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [truncated: {len(text) - limit} more characters]"


def run_command(m: ReviewMaterial) -> str:
    args = [f"workspace={m.workspace!r}" if m.workspace else None, f"stages=[{m.stage!r}]"]
    if m.config_override:
        args.append(f"config_override={_json(m.config_override)}")
    if m.inputs_override:
        args.append(f"inputs_override={_json(m.inputs_override)}")
    return "run(" + ", ".join(a for a in args if a) + ")"


def _pattern_lines(patterns: Iterable[Mapping[str, Any]]) -> str:
    lines = []
    for p in patterns:
        lines.append(
            f"- {p.get('id')} [{p.get('severity')}] {p.get('symptom') or p.get('signature')}"
            f" | root cause: {p.get('root_cause') or '?'} | prevention: {p.get('prevention') or '?'}"
            f" | detection: {_json(p.get('detection'))}"
        )
    return "\n".join(lines) or "(none)"


def build_prompt(m: ReviewMaterial) -> str:
    """The review prompt: XML-tagged sections, content escaped, files capped, total capped."""
    head = [
        f"<task>Review stage {_esc(m.stage)} before it runs.\n{_esc(CHECKLIST)}</task>",
        f"<run_command>{_esc(run_command(m))}</run_command>",
        f"<reason>{_esc(_json(m.reason) if not isinstance(m.reason, str) else m.reason)}</reason>",
        f'<file path="pipeline.yaml">{_esc(_cap(m.pipeline_text, MAX_FILE_CHARS))}</file>',
        f"<merged_stage_config note=\"defaults, configs/{_esc(m.stage)}.yaml and config_override merged;"
        f" the override wins\">{_esc(_json(dict(m.stage_config)))}</merged_stage_config>",
        f"<input_resolution>{_esc(_json(m.inputs or {}))}</input_resolution>",
        f"<diff_since_last_successful_run>{_esc(_cap(m.diff or '(no diff available)', MAX_DIFF_CHARS))}"
        "</diff_since_last_successful_run>",
        "<rules_findings>" + _esc("\n".join(f"- {f.render()}" for f in m.rules_findings) or "(none)")
        + "</rules_findings>",
        f"<approved_failure_patterns>{_esc(_pattern_lines(m.patterns))}</approved_failure_patterns>",
    ]
    requirements = m.app_dir / "requirements.txt"
    files = [(f.path, f.text) for f in m.code.files]
    if requirements.is_file():
        files.append(("requirements.txt", requirements.read_text(errors="replace")))
    budget = MAX_PROMPT_CHARS - sum(len(h) for h in head)
    body = []
    for path, text in files:
        chunk = f'<file path="{_esc(path)}">{_esc(_cap(text, MAX_FILE_CHARS))}</file>'
        if len(chunk) > budget:
            body.append(f'<file path="{_esc(path)}" truncated="true">{_esc(text[: max(budget - 200, 0)])}</file>')
            body.append("<note>prompt limit reached; later files omitted</note>")
            break
        body.append(chunk)
        budget -= len(chunk)
    return "\n\n".join(head + body)


def to_findings(answer: ReviewAnswer, stage: str) -> list[Finding]:
    out = []
    for item in answer.findings:
        out.append(Finding.model_validate({
            "source": "anthropic", "check": (item.check or "ai_review")[:64], "severity": item.severity,
            "confidence": item.confidence, "stage": stage, "file": item.file,
            "line": item.line if item.line and item.line > 0 else None, "message": item.message[:2000],
            "fix": item.fix[:2000] if item.fix else None,
        }))
    return out


def anthropic_review(svs: SvsConfig, material: ReviewMaterial, *, timeout: float) -> tuple[list[Finding], str, AiAnswer]:
    """Run the AI review; raises ProviderFailure when there is no usable answer."""
    parsed, answer = call_tool(
        svs,
        system=SYSTEM,
        prompt=build_prompt(material),
        tool_name="submit_review",
        tool_description="Submit the pre-run review: overall verdict, every finding, and a short summary.",
        answer=ReviewAnswer,
        timeout=timeout,
    )
    assert isinstance(parsed, ReviewAnswer)
    summary = parsed.summary or f"AI verdict: {parsed.verdict}"
    return to_findings(parsed, material.stage), f"[AI verdict: {parsed.verdict}] {summary}", answer
