"""Post-run review: judge a finished stage by its outputs' contracts and stats and its results_spec.

Deterministic parts decide: a contract error in ``blocking`` enforcement (or a stats finding under
``svs.default_policy: fail``) fails the stage with cause ``contract``. The results_spec gives
warnings (primary metric never logged, value past ``failure_threshold``) and an ``ml_outcome``
*hint*; the outcome itself is only ever set by finalize_run. The AI (provider ``anthropic``,
``svs.ai_post_run_enabled``, at most ``svs.rate_limit_per_hour`` per project) may add notes;
it never fails a run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from goldfish.errors import GoldfishError
from goldfish.names import did_you_mean
from goldfish.records.results_spec import MlOutcome, ResultsSpec, ml_outcome_hint, validate_results_spec
from goldfish.svs.ai import ProviderFailure, call_tool, failure_message
from goldfish.svs.findings import Finding, finding_from_sdk

if TYPE_CHECKING:
    from goldfish.project import Project

MAX_METRICS_SCAN_BYTES = 200_000_000
_RATE_DOC = "svs_ai_post_run"


class PostRunResult(BaseModel):
    """What the post-run review decided."""

    fail: bool = Field(description="True: the stage fails (cause below)")
    cause: Literal["contract"] | None = Field(default=None, description="Failure cause for the run")
    error: str | None = Field(default=None, description="Message for the run's error field")
    findings: list[Finding] = Field(default_factory=list, description="Contract, stats, results and AI findings")
    ml_outcome_hint: MlOutcome | None = Field(default=None, description="Suggested ml_outcome (finalize_run decides)")
    primary_metric: str | None = Field(default=None, description="results_spec primary metric")
    primary_value: float | None = Field(default=None, description="Its last logged value")
    stats: dict[str, Any] = Field(default_factory=dict, description="svs_stats.json entries")
    ai_summary: str | None = Field(default=None, description="AI notes, when an AI reviewed")
    ai_ml_outcome_hint: MlOutcome | None = Field(default=None, description="The AI's own outcome hint")


class _AiNote(BaseModel):
    model_config = ConfigDict(extra="ignore")
    check: str = Field(min_length=1, description="short snake_case name")
    severity: Literal["info", "warning"] = Field(description="warning for something worth checking")
    message: str = Field(min_length=1, description="what you noticed, with numbers")


class _AiPostRun(BaseModel):
    model_config = ConfigDict(extra="ignore")
    findings: list[_AiNote] = Field(default_factory=list, description="notes on the outputs and metrics")
    ml_outcome_hint: Literal["success", "partial", "miss", "unknown"] = Field(
        default="unknown", description="judged against the results_spec goal/min/tolerance")
    summary: str = Field(default="", description="two sentences for the researcher")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _stats_findings(stats: Mapping[str, Any], domain: str, stage: str) -> list[Finding]:
    """Re-apply the stats thresholds on the host (an SDK may record stats without findings)."""
    from stage_sdk import stats as sdk_stats

    out = []
    for key, entry in stats.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("total_elements"), int):
            continue  # not a complete stats entry: nothing to judge
        signal = key.split(".", 1)[0]
        for f in sdk_stats.evaluate(entry, signal=signal, key=key, domain=domain, domain_checks=key == signal):
            found = finding_from_sdk(f.to_dict(), stage=stage)
            if found is not None:
                out.append(found)
    return out


def _last_values(outputs: Path, wanted: set[str]) -> tuple[dict[str, float], set[str]]:
    """Last value of each wanted metric, and every metric name seen, from metrics.jsonl."""
    last: dict[str, float] = {}
    names: set[str] = set()
    path = outputs / ".goldfish" / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            scanned = 0
            for raw in f:
                scanned += len(raw)
                if scanned > MAX_METRICS_SCAN_BYTES:
                    break
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(rec, dict) or rec.get("type") != "metric" or not isinstance(rec.get("name"), str):
                    continue
                names.add(rec["name"])
                value = rec.get("value")
                if rec["name"] in wanted and isinstance(value, int | float) and not isinstance(value, bool):
                    last[rec["name"]] = float(value)
    except OSError:
        pass
    return last, names


def _fails_run(finding: Finding, enforcement: str, policy: str) -> bool:
    """Blocking enforcement fails on contract (and stats) errors; policy 'fail' on any stats problem."""
    if finding.source == "contract":
        return finding.severity == "error" and enforcement == "blocking"
    if finding.source == "stats":
        if policy == "fail":
            return finding.severity in ("warning", "error")
        return finding.severity == "error" and enforcement == "blocking"
    return False


def _spec(results_spec: ResultsSpec | Mapping[str, Any] | None, stage: str) -> tuple[ResultsSpec | None, list[Finding]]:
    if results_spec is None or isinstance(results_spec, ResultsSpec):
        return results_spec, []
    try:
        return validate_results_spec(dict(results_spec)), []
    except GoldfishError as exc:
        return None, [Finding(source="post_run", check="results_spec_unreadable", severity="warning", stage=stage,
                              message=f"the run's results_spec could not be read: {exc.message}", fix=exc.fix)]


def _results_findings(spec: ResultsSpec, value: float | None, names: set[str], stage: str) -> list[Finding]:
    out = []
    if value is None:
        hint = did_you_mean(spec.primary_metric, sorted(names))
        out.append(Finding(
            source="post_run", check="primary_metric_missing", severity="warning", stage=stage,
            signal=spec.primary_metric,
            message=f"results_spec primary metric {spec.primary_metric!r} was never logged by stage {stage}.{hint}",
            fix=f"Call log_metric({spec.primary_metric!r}, value) in the stage, or fix the name in results_spec.",
        ))
        return out
    threshold = spec.failure_threshold
    if threshold is not None:
        worse = value < threshold if spec.direction == "maximize" else value > threshold
        if worse:
            word = "below" if spec.direction == "maximize" else "above"
            out.append(Finding(
                source="post_run", check="failure_threshold", severity="warning", stage=stage,
                signal=spec.primary_metric, value=value, threshold=threshold,
                message=f"{spec.primary_metric} = {value:.6g} is {word} the results_spec failure_threshold"
                        f" {threshold:g}: a clear miss.",
                fix="Finalize it as a miss with what was learned (finalize_run), then change the approach.",
            ))
    return out


def post_run_review(
    project: Project,
    *,
    run_dir: Path,
    stage: str,
    results_spec: ResultsSpec | Mapping[str, Any] | None = None,
    metrics_summary: Mapping[str, Mapping[str, Any]] | None = None,
    outputs_dir: Path | None = None,
    feeds_later_stages: bool = False,
    run_command: str | None = None,
) -> PostRunResult:
    """Review a stage that exited 0. ``metrics_summary``: ``{name: {"last": value, ...}}`` when the
    runner already ingested the metrics (else metrics.jsonl is read). ``feeds_later_stages``: a stage
    of the same pipeline run consumes this one's outputs, so the primary metric may come from it and
    its absence here is not worth a warning. ``run_command``: the run(...) call with its
    config_override and inputs_override, so the AI judges what was actually run. Never raises for
    SVS content."""
    svs = project.config.svs
    outputs = Path(outputs_dir) if outputs_dir is not None else Path(run_dir) / "outputs"
    stats_doc = _read_json(outputs / ".goldfish" / "svs_stats.json").get("stats")
    stats = stats_doc if isinstance(stats_doc, dict) else {}
    findings: list[Finding] = []
    fail_reasons: list[Finding] = []
    if svs.enabled:
        raw = _read_json(outputs / ".goldfish" / "svs_findings.json").get("findings")
        sdk = [f for f in (finding_from_sdk(d, stage=stage) for d in (raw if isinstance(raw, list) else [])) if f]
        seen = {(f.source, f.check, f.signal) for f in sdk}
        host = [f for f in _stats_findings(stats, svs.domain, stage) if (f.source, f.check, f.signal) not in seen]
        for finding in sdk + host:
            if finding.source == "stats" and svs.default_policy == "ignore":
                continue
            findings.append(finding)
            if _fails_run(finding, svs.default_enforcement, svs.default_policy):
                fail_reasons.append(finding)
    spec, spec_findings = _spec(results_spec, stage)
    findings += spec_findings
    value: float | None = None
    hint: MlOutcome | None = None
    if spec is not None:
        summary_last = (metrics_summary or {}).get(spec.primary_metric, {}).get("last")
        names = set(metrics_summary or {})
        if isinstance(summary_last, int | float) and not isinstance(summary_last, bool):
            value = float(summary_last)
        elif metrics_summary is None or spec.primary_metric not in names:
            last, seen_names = _last_values(outputs, {spec.primary_metric})
            value, names = last.get(spec.primary_metric), names | seen_names
        hint = ml_outcome_hint(spec, value)
        if value is not None or not feeds_later_stages:
            findings += _results_findings(spec, value, names, stage)
    result = PostRunResult(
        fail=bool(fail_reasons), findings=findings, ml_outcome_hint=hint, stats=stats,
        primary_metric=spec.primary_metric if spec else None, primary_value=value,
    )
    if fail_reasons:
        result.cause = "contract"
        listed = "; ".join(f"{f.signal or '?'}: {f.message}" for f in fail_reasons[:5])
        why = "svs.default_enforcement is blocking" if any(f.source == "contract" for f in fail_reasons) \
            else "svs.default_policy is fail"
        result.error = (f"Output checks failed ({why}): {listed}. Fix the stage's outputs or the schema in"
                        " pipeline.yaml (schema: null opts out), then run again.")
    if svs.enabled and svs.agent_provider == "anthropic" and svs.ai_post_run_enabled and _ai_allowed(project):
        _ai_review(project, result, stage, spec, metrics_summary, run_command)
    return result


def _ai_allowed(project: Project) -> bool:
    """Project-wide budget of svs.rate_limit_per_hour post-run AI reviews (recorded in the store)."""
    limit = project.config.svs.rate_limit_per_hour
    if limit <= 0:
        return False
    now = time.time()
    with project.store.transaction() as tx:
        meta = tx.table("meta")
        doc = meta.get_doc(_RATE_DOC) or {}
        calls = [t for t in doc.get("calls", []) if isinstance(t, int | float) and now - t < 3600]
        if len(calls) >= limit:
            return False
        meta.put(_RATE_DOC, {"calls": [*calls, now], "updated_at": datetime.now(UTC).isoformat()})
    return True


def _ai_review(project: Project, result: PostRunResult, stage: str, spec: ResultsSpec | None,
               metrics_summary: Mapping[str, Any] | None, run_command: str | None = None) -> None:
    svs = project.config.svs
    prompt = (
        f"A stage named {stage} finished. Look at its output statistics, the SVS findings and its metrics; note"
        " silent failures (constant or collapsed outputs, NaN-heavy data, metrics that make no sense) and judge"
        " the primary metric against the results_spec.\n"
        f"<run_command>{run_command or ''}</run_command>\n"
        f"<results_spec>{spec.model_dump_json() if spec else 'none'}</results_spec>\n"
        f"<primary_value>{result.primary_value}</primary_value>\n"
        f"<output_stats>{json.dumps(result.stats, default=str)[:100_000]}</output_stats>\n"
        f"<findings>{json.dumps([f.model_dump() for f in result.findings], default=str)[:50_000]}</findings>\n"
        f"<metrics_summary>{json.dumps(metrics_summary or {}, default=str)[:50_000]}</metrics_summary>"
    )
    try:
        parsed, _ = call_tool(
            svs, system="You review the outputs of a finished ML stage. Be brief and concrete.", prompt=prompt,
            tool_name="submit_post_run_review", tool_description="Submit notes on the finished stage.",
            answer=_AiPostRun, timeout=float(svs.agent_timeout), max_tokens=2048,
        )
    except ProviderFailure as failure:
        result.findings.append(Finding(
            source="anthropic", check=f"provider_{failure.kind}", severity="info", stage=stage,
            message=failure_message("post-run review", failure) + " The deterministic checks above still apply.",
        ))
        return
    assert isinstance(parsed, _AiPostRun)
    result.ai_summary = parsed.summary or None
    result.ai_ml_outcome_hint = parsed.ml_outcome_hint
    for note in parsed.findings:
        result.findings.append(Finding(source="anthropic", check=f"ai:{note.check}"[:64], severity=note.severity,
                                       confidence="medium", stage=stage, message=note.message[:1000]))
