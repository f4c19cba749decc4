"""Everything SVS recorded about one stage run, gathered for ``get_run_svs_findings`` and
``inspect_run(include=["svs"])``: preflight, the pre-run review, during-run and post-run findings,
the output findings and stats the SDK wrote, and the failure patterns learned from the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from goldfish import names
from goldfish.errors import NotFound
from goldfish.issues import Issue
from goldfish.svs.findings import Finding, Provider, ReviewResult, Verdict, finding_from_sdk
from goldfish.svs.patterns import FailurePattern

if TYPE_CHECKING:
    from goldfish.project import Project

MAX_ITEMS = 200


class PreflightView(BaseModel):
    errors: list[Issue] = Field(default_factory=list, description="Preflight errors (they failed the run)")
    warnings: list[Issue] = Field(default_factory=list, description="Preflight warnings")


class RunSvsFindings(BaseModel):
    """SVS record of one stage run."""

    stage_run_id: str = Field(description="Stage run id")
    workspace: str = Field(description="Workspace of the run")
    stage: str | None = Field(default=None, description="Stage name")
    state: str | None = Field(default=None, description="Run state")
    preflight: PreflightView | None = Field(default=None, description="Preflight errors and warnings")
    review: ReviewResult | None = Field(default=None, description="Pre-run review: verdict, provider, findings")
    skip_review: bool = Field(default=False, description="True when run() bypassed the review")
    during_run: list[Finding] = Field(default_factory=list, description="Monitor findings while it ran")
    post_run: dict[str, Any] | None = Field(default=None, description="Post-run review (fail, cause, hint, findings)")
    output_findings: list[Finding] = Field(
        default_factory=list, description="Contract/stats/metric-health findings the stage SDK wrote")
    stats: dict[str, Any] = Field(default_factory=dict, description="Output statistics per signal (svs_stats.json)")
    failure_patterns: list[FailurePattern] = Field(
        default_factory=list, description="Failure patterns learned from (or seen again in) this run")
    truncated: bool = Field(default=False, description=f"True when a list was cut at {MAX_ITEMS} items")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _findings(items: Any) -> list[Finding]:
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(Finding.model_validate(item))
        except ValidationError:
            converted = finding_from_sdk(item) if isinstance(item, dict) else None
            if converted is not None:
                out.append(converted)
    return out


_VERDICTS: dict[str, Verdict] = {"approved": "approved", "warned": "warned", "blocked": "blocked"}
_PROVIDERS: dict[str, Provider] = {"rules": "rules", "anthropic": "anthropic", "null": "null"}


def _review_view(stored: dict[str, Any]) -> ReviewResult:
    """The runner stores the hook result ({decision, summary, provider, findings, at}); show it as a
    ReviewResult. The provider may read "anthropic (claude-…)": split off the model."""
    decision = str(stored.get("decision") or "approved")
    provider, _, model = str(stored.get("provider") or "").partition(" (")
    summary = str(stored.get("summary") or "")
    if decision == "skipped":
        return ReviewResult(verdict="approved", provider="null", text=summary, skipped=True, skip_reason=summary)
    return ReviewResult(
        verdict=_VERDICTS.get(decision, "approved"),
        provider=_PROVIDERS.get(provider, "rules"),
        model=model.rstrip(")") or None,
        findings=_findings(stored.get("findings")),
        text=summary,
    )


def locate_run(project: Project, run_id: str) -> tuple[str, dict[str, Any]]:
    """(workspace, run document) of a stage run, via the run_index."""
    rid = names.stage_run_id(run_id)
    index = project.store.table("run_index").get_doc(rid)
    doc = project.store.table("runs", f"ws/{index['workspace']}").get_doc(rid) if index else None
    if index is None or doc is None:
        raise NotFound(f"stage run {rid} not found.",
                       fix="list_history(workspace) or dashboard() show the run ids (stage-xxxxxxxx).")
    return str(index["workspace"]), doc


def run_svs_findings(project: Project, run_id: str) -> RunSvsFindings:
    workspace, doc = locate_run(project, run_id)
    raw_svs = doc.get("svs")
    svs: dict[str, Any] = raw_svs if isinstance(raw_svs, dict) else {}
    run_dir = Path(doc.get("run_dir") or project.runs_dir / run_id)
    rt = run_dir / "outputs" / ".goldfish"
    result = RunSvsFindings(stage_run_id=run_id, workspace=workspace, stage=doc.get("stage"), state=doc.get("state"))
    pre = svs.get("preflight")
    if isinstance(pre, dict):
        result.preflight = PreflightView.model_validate(
            {"errors": pre.get("errors") or [], "warnings": pre.get("warnings") or []})
    review = svs.get("review")
    if isinstance(review, dict):
        result.review = _review_view(review)
    result.skip_review = bool(svs.get("skip_review") or doc.get("skip_review"))
    result.during_run = _findings(svs.get("during"))
    post = svs.get("post")
    result.post_run = post if isinstance(post, dict) else None
    result.output_findings = [
        f for f in (finding_from_sdk(d, stage=doc.get("stage")) for d in _read_json(rt / "svs_findings.json").get("findings", []))
        if f is not None
    ]
    stats = _read_json(rt / "svs_stats.json").get("stats")
    result.stats = stats if isinstance(stats, dict) else {}
    result.failure_patterns = project.patterns.for_run(run_id)
    for name in ("during_run", "output_findings", "failure_patterns"):
        items = getattr(result, name)
        if len(items) > MAX_ITEMS:
            setattr(result, name, items[-MAX_ITEMS:])
            result.truncated = True
    if len(result.stats) > MAX_ITEMS:
        result.stats = dict(list(result.stats.items())[:MAX_ITEMS])
        result.truncated = True
    return result
