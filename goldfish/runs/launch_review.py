"""Review before launch: preflight and the pre-run review of every requested stage, before any runs.

run() calls ``check_stages`` on the archive of the version it just committed (what will run);
``run(dry_run=True)`` and ``validate_config(workspace=…)`` call it on the slot's files (nothing is
committed for them). A stage whose inputs come from an earlier stage of the same run is reviewed
with those inputs as placeholders here, and gets a second, input-aware review when it starts
(``StageDriver.prepare``); every other stage keeps the review made here.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from goldfish.errors import GoldfishError
from goldfish.issues import Issue
from goldfish.pipelines.stage_config import merge_stage_config
from goldfish.runs.hooks import ReviewContext, RunHooks
from goldfish.runs.inputs import resolve_inputs
from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.pipelines.model import Pipeline
    from goldfish.project import Project


REVIEW_THREADS = 4


class LaunchFinding(BaseModel):
    """A problem found before launch, with where it is and the fix."""

    stage: str = Field(description="Stage the finding is about")
    check: str = Field(description="Which check found it (preflight, unknown_signal, undefined_name, …)")
    severity: str = Field(description="error or warning")
    blocks: bool = Field(description="True when it stops the run (preflight errors, high-confidence review errors)")
    file: str | None = Field(default=None, description="File relative to the workspace, e.g. modules/fit.py")
    line: int | None = Field(default=None, description="1-based line in file")
    where: str = Field(description="file:line, or the pipeline location")
    message: str = Field(description="What is wrong")
    fix: str | None = Field(default=None, description="What to change")


@dataclass
class StageCheck:
    """Preflight and review of one stage, in the shapes stored on the stage run (``svs.preflight``,
    ``svs.review``)."""

    stage: str
    preflight: dict[str, list[dict[str, Any]]]
    review: dict[str, Any] | None
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def cause(self) -> str | None:
        """``preflight`` or ``review_blocked`` when this stage must not launch, else None."""
        if self.preflight.get("errors"):
            return "preflight"
        if self.review is not None and self.review.get("decision") == "blocked":
            return "review_blocked"
        return None

    @property
    def error(self) -> str | None:
        """The run's error text for a blocked stage."""
        if self.cause == "preflight":
            errors = [Issue.model_validate(i) for i in self.preflight["errors"]]
            shown = "; ".join(i.render() for i in errors[:8])
            more = f" (+{len(errors) - 8} more: inspect_run include=['svs'])" if len(errors) > 8 else ""
            return f"Preflight failed before launch: {shown}{more}"
        if self.cause == "review_blocked" and self.review is not None:
            return f"Pre-run review blocked before launch: {self.review.get('summary')}"
        return None

    def findings(self) -> list[LaunchFinding]:
        out: list[LaunchFinding] = []
        for severity in ("errors", "warnings"):
            for issue in self.preflight.get(severity) or []:
                out.append(LaunchFinding(
                    stage=self.stage, check="preflight", severity=severity[:-1], blocks=severity == "errors",
                    where=str(issue.get("location") or ""), message=str(issue.get("message") or ""),
                    fix=issue.get("fix")))
        for f in (self.review or {}).get("findings") or []:
            if not isinstance(f, Mapping) or f.get("severity") not in ("error", "warning"):
                continue
            file, line = f.get("file"), f.get("line")
            where = f"{file}:{line}" if file and line else str(file or f.get("signal") or self.stage)
            out.append(LaunchFinding(
                stage=self.stage, check=str(f.get("check") or "review"), severity=str(f["severity"]),
                blocks=f.get("severity") == "error" and f.get("confidence", "high") == "high",
                file=file, line=line if isinstance(line, int) else None, where=where,
                message=str(f.get("message") or ""), fix=f.get("fix")))
        return out


@contextmanager
def version_archive(project: Project, workspace: str, sha: str) -> Iterator[Path]:
    """The files of a version in a temporary directory (not a run dir), removed afterwards."""
    project.gf_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="launch-review-", dir=project.gf_dir))
    try:
        app = tmp / "app"
        project.workspaces.archive(workspace, sha, app)
        yield app
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


KEPT_PREFIX = "app-"


def keep_archive(app: Path, prun_dir: Path, sha: str) -> None:
    """Move the files run() reviewed to ``<prun>/app-<sha>``: the first stage of the run to prepare
    takes them (``take_archive``) instead of extracting the same version again."""
    try:
        prun_dir.mkdir(parents=True, exist_ok=True)
        app.rename(prun_dir / f"{KEPT_PREFIX}{sha}")
    except OSError:
        pass  # the stage extracts the version itself


def take_archive(prun_dir: Path | None, sha: str, dest: Path) -> bool:
    """Rename the kept archive of ``sha`` to ``dest``; False when there is none (already taken)."""
    if prun_dir is None:
        return False
    try:
        (prun_dir / f"{KEPT_PREFIX}{sha}").rename(dest)
    except OSError:
        return False
    return True


def drop_archives(prun_dir: Path) -> None:
    """Remove kept archives no stage took (the pipeline run ended)."""
    for kept in prun_dir.glob(f"{KEPT_PREFIX}*"):
        shutil.rmtree(kept, ignore_errors=True)


def check_stages(
    project: Project,
    hooks: RunHooks,
    *,
    workspace: str,
    app_dir: Path,
    pipeline: Pipeline,
    stages: list[str],
    config_overrides: Mapping[str, Mapping[str, Any]],
    input_overrides: Mapping[str, Mapping[str, Any]],
    skip_review: bool,
    reason: Any = None,
    sha: str | None = None,
) -> list[StageCheck]:
    """Preflight, then (when it passes) the pre-run review, of each stage in ``stages``."""
    from goldfish.svs.preflight import preflight

    cfg = project.config
    placeholders = {s: f"(this run: {s})" for s in stages}

    def one(stage: str) -> StageCheck:
        override = dict(config_overrides.get(stage) or {})
        inputs_override = dict(input_overrides.get(stage) or {})
        valid_overrides = {k: v for k, v in inputs_override.items() if k in pipeline.stage(stage).inputs}
        resolved, problems = resolve_inputs(project, workspace, pipeline, stage, in_run=placeholders,
                                            overrides=valid_overrides, check_only=True)
        report = preflight(project, app_dir=app_dir, pipeline=pipeline, stage=stage,
                           config_override=override or None, inputs_override=inputs_override,
                           input_errors=problems)
        pre = {"errors": [i.model_dump() for i in report.errors],
               "warnings": [i.model_dump() for i in report.warnings]}
        check = StageCheck(stage=stage, preflight=pre, review=None, inputs=resolved)
        if report.errors:
            return check
        if skip_review:
            check.review = {"decision": "skipped", "summary": "skip_review=True", "findings": [], "provider": None}
        elif not (cfg.svs.enabled and cfg.pre_run_review.enabled):
            check.review = {"decision": "skipped", "summary": "disabled (svs.enabled / pre_run_review.enabled)",
                            "findings": [], "provider": None}
        else:
            try:
                config = merge_stage_config(pipeline, stage, app_dir, override or None).values
            except GoldfishError as exc:  # preflight validates configs; never trust that blindly
                pre["errors"].append(Issue(location=f"configs/{stage}.yaml", message=exc.message,
                                           fix=exc.fix).model_dump())
                return check
            run = {"id": None, "workspace": workspace, "stage": stage, "sha": sha, "reason": reason,
                   "config_override": override, "inputs_override": inputs_override}
            result = hooks.review(ReviewContext(
                project=project, run=run, app_dir=app_dir, pipeline=pipeline, stage=stage, config=config,
                inputs=resolved, preflight=pre, config_override=override, inputs_override=inputs_override))
            check.review = result.model_dump()
        check.review = {**check.review, "phase": "launch", "at": now_iso(), "providers": provider_names(hooks)}
        return check

    if len(stages) <= 1:
        return [one(s) for s in stages]
    # Stages are reviewed side by side: an AI reviewer waits on the network, once per stage.
    with ThreadPoolExecutor(max_workers=min(REVIEW_THREADS, len(stages)), thread_name_prefix="launch-review") as pool:
        return list(pool.map(one, stages))


def provider_names(hooks: RunHooks) -> list[str]:
    """Who reviews: a launch review is reused at start only when the runner has the same reviewers."""
    return [name for name, _ in hooks.providers]


def blocked(checks: list[StageCheck]) -> list[StageCheck]:
    return [c for c in checks if c.cause is not None]


def as_issues(checks: list[StageCheck]) -> tuple[list[Issue], list[Issue]]:
    """(errors, warnings) of the review findings as validation issues (dry_run, validate_config).

    Preflight issues are left out: both callers already validate the pipeline themselves."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    for check in checks:
        for f in check.findings():
            if f.check == "preflight":
                continue
            issue = Issue(location=f"{f.stage}: {f.where} [{f.check}]", message=f.message, fix=f.fix)
            (errors if f.blocks else warnings).append(issue)
    return errors, warnings
