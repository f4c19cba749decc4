"""The ``rules`` review provider: offline, deterministic checks of what a stage run will execute.

Input: the archived app dir (the committed version), the pipeline, the stage's merged config and
the approved failure patterns. Output: findings with file:line and the fix. See docs/svs.md for
the list of rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from goldfish.pipelines.model import Pipeline
from goldfish.svs import code_rules
from goldfish.svs.code import StageCode, collect_stage_code
from goldfish.svs.findings import Finding
from goldfish.svs.pattern_rules import Detection, find_matches

# A requirement line: name, optional extras, then the version part.
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
_PINNED = re.compile(r"===?\s*[^\s,*;]+")
_ACTIVE_STATES = ("pending", "preparing", "launching", "running", "post_run")
_PATTERN_SEVERITY = {"critical": "error", "high": "error", "medium": "warning", "low": "info"}


def requirement_findings(app_dir: Path, stage: str) -> list[Finding]:
    """Unpinned lines of requirements.txt: a floating version changes what runs between runs."""
    path = Path(app_dir) / "requirements.txt"
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-") or "://" in line or line.startswith((".", "/")):
            continue
        match = _REQ.match(line)
        if match is None:
            continue
        name, spec = match.group(1), match.group(3).split(";", 1)[0].strip()
        if spec.startswith("@") or _PINNED.fullmatch(spec):
            continue  # pinned (== / === one exact version) or a direct reference
        shown = f"{name}{spec}" if spec else name
        out.append(Finding(
            source="rules", check="unpinned_requirement", severity="warning", confidence="high", stage=stage,
            file="requirements.txt", line=number,
            message=f"requirement {shown!r} is not pinned: a new release can change what this stage runs.",
            fix=f"Pin it, e.g. {name}==<version> (`pip show {name}` gives the installed one).",
        ))
    return out


def pattern_findings(code: StageCode, patterns: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Every approved failure pattern whose detection rule matches the stage's code."""
    out = []
    for pattern in patterns:
        raw = pattern.get("detection")
        if pattern.get("status") != "approved" or not raw:
            continue
        try:
            rule = Detection.model_validate(raw)
        except ValueError:
            continue  # stored rules are validated on write; an unreadable one is skipped, not fatal
        severity = _PATTERN_SEVERITY.get(str(pattern.get("severity", "medium")).lower(), "warning")
        for match in find_matches(rule, code.files):
            symptom = str(pattern.get("symptom") or pattern.get("signature") or "a known failure")
            out.append(Finding.model_validate({
                "source": "pattern", "check": f"failure_pattern:{pattern.get('id')}", "severity": severity,
                "confidence": "high", "stage": code.stage, "file": match.file, "line": match.line,
                "message": f"matches approved failure pattern {pattern.get('id')} ({rule.describe()}):"
                           f" {symptom[:300]} — line: {match.text[:160]}",
                "fix": str(pattern.get("prevention") or "Change this code so the known failure cannot recur.")
                       + f" (manage_patterns(action='get', pattern_id='{pattern.get('id')}') explains it.)",
            }))
    return out


def input_findings(stage: str, inputs: Mapping[str, Any] | None) -> list[Finding]:
    """Inputs resolved to an upstream run while a newer run of that stage is still in progress.

    A newer run that failed, was canceled or was finalized as a miss was skipped on purpose."""
    out = []
    for name, info in (inputs or {}).items():
        if not isinstance(info, Mapping):
            continue
        chosen, latest = info.get("run_id"), info.get("latest_run_id")
        state = info.get("latest_state")
        if not chosen or not latest or chosen == latest or state not in _ACTIVE_STATES:
            continue
        out.append(Finding(
            source="rules", check="stale_input", severity="warning", confidence="medium", stage=stage,
            signal=str(name),
            message=f"input {name} uses {chosen}, but a newer run {latest} of that stage is still {state}:"
                    " this run reads the older output.",
            fix=f"If the newer run is what you meant, wait for it to complete, then run again (or pass"
                f" inputs_override={{'{name}': '{latest}'}} once it has).",
        ))
    return out


def rules_review(
    app_dir: Path,
    pipeline: Pipeline,
    stage: str,
    stage_config: Mapping[str, Any],
    *,
    patterns: Iterable[Mapping[str, Any]] = (),
    inputs: Mapping[str, Any] | None = None,
    code: StageCode | None = None,
) -> list[Finding]:
    """All findings of the offline rules for one stage (see docs/svs.md for each rule)."""
    spec = pipeline.stage(stage)
    code = code or collect_stage_code(Path(app_dir), spec)
    findings: list[Finding] = []
    if code.missing_module:
        findings.append(Finding(
            source="rules", check="missing_module", severity="error", confidence="high", stage=stage,
            file=code.module, message=f"stage {stage} has no module {code.module} in this version.",
            fix=f"Create {code.module} in the workspace, then run again.",
        ))
        return findings
    findings += code_rules.syntax_findings(code)
    findings += code_rules.undefined_name_findings(code)
    findings += code_rules.signal_findings(code, spec)
    findings += code_rules.save_output_findings(code, spec)
    findings += code_rules.config_key_findings(code, stage_config)
    findings += code_rules.training_findings(code)
    findings += code_rules.long_loop_findings(code)
    findings += requirement_findings(Path(app_dir), stage)
    findings += input_findings(stage, inputs)
    findings += pattern_findings(code, patterns)
    return findings
