"""validate_config: goldfish.yaml plus a mounted workspace's pipeline, stage configs and modules.

Everything is collected (errors block a run, warnings are worth knowing) and nothing is written.
Stage configs are also checked for near-misses of common hyperparameter and Goldfish keys
(``learnig_rate``, ``batchsize``, ``compute.profil``): the stage reads its own keys, so a typo
would otherwise silently fall back to the code's default.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from goldfish.errors import GoldfishError
from goldfish.issues import Issue

if TYPE_CHECKING:
    from goldfish.pipelines.model import Pipeline
    from goldfish.project import Project

MAX_ISSUES = 200  # per list: a broken workspace must not produce a result too big to read

# Keys stage code commonly reads. A config key that is *close* to one of these but not equal is
# almost always a typo.
COMMON_KEYS = (
    "learning_rate", "lr", "epochs", "num_epochs", "batch_size", "weight_decay", "momentum",
    "dropout", "hidden_size", "hidden_dim", "num_layers", "seed", "optimizer", "scheduler",
    "warmup_steps", "max_steps", "gradient_clip", "embedding_dim", "num_heads", "sequence_length",
    "seq_len", "validation_split", "test_split", "early_stopping", "patience", "eval_interval",
    "log_interval", "checkpoint_interval", "num_workers", "n_estimators", "max_depth",
)
GOLDFISH_KEYS = ("compute", "environment", "dashboard_metrics", "hints", "defaults")
COMPUTE_KEYS = (
    "profile", "max_runtime_seconds", "heartbeat_timeout_seconds", "capacity_wait_seconds", "log_sync_interval",
    "network",
)


class ConfigCheckResult(BaseModel):
    """validate_config() result."""

    valid: bool = Field(description="True when there is no error (warnings do not block a run)")
    errors: list[Issue] = Field(default_factory=list, description="Problems that would make a run fail")
    warnings: list[Issue] = Field(default_factory=list, description="Likely mistakes (typos, missing contracts)")
    files_checked: list[str] = Field(
        default_factory=list, description="Files read, relative to the project (slot files as w1/...)"
    )
    workspaces: list[str] = Field(default_factory=list, description="Workspaces whose files were checked")
    truncated: bool = Field(default=False, description=f"More than {MAX_ISSUES} errors or warnings; the rest omitted")


def near_miss(key: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``key`` is probably a misspelling of, or None (exact matches are not misses)."""
    pool = list(candidates)
    if key in pool or len(key) < 4:
        return None
    normalized = key.lower().replace("-", "_")
    for candidate in pool:
        if normalized == candidate or normalized.replace("_", "") == candidate.replace("_", ""):
            return candidate
    matches = difflib.get_close_matches(normalized, pool, n=1, cutoff=0.8)
    return matches[0] if matches else None


def _key_warnings(data: dict[str, Any], label: str, *, compute_keys: bool) -> list[Issue]:
    """Near-miss keys; ``compute_keys`` also reports unknown compute.* keys (validate_pipeline already
    does for configs of pipeline stages)."""
    out: list[Issue] = []
    for key in data:
        if not isinstance(key, str):
            continue
        target = near_miss(key, (*COMMON_KEYS, *GOLDFISH_KEYS))
        if target and target not in data:
            out.append(Issue(
                location=f"{label}: {key}",
                message=f"key {key!r} looks like a typo of {target!r}; stage code reading {target!r} will not see it.",
                fix=f"Rename it to {target} (or ignore this warning if {key!r} is deliberate).",
            ))
    compute = data.get("compute")
    if compute_keys and isinstance(compute, dict):
        for key in compute:
            if isinstance(key, str) and key not in COMPUTE_KEYS:
                target = near_miss(key, COMPUTE_KEYS)
                hint = f" Did you mean {target!r}?" if target else ""
                out.append(Issue(
                    location=f"{label}: compute.{key}",
                    message=f"compute has no key {key!r}.{hint}",
                    fix=f"compute accepts: {', '.join(COMPUTE_KEYS)}.",
                ))
    return out


def _issues_of(exc: GoldfishError, location: str) -> list[Issue]:
    raw = exc.details.get("issues")
    if raw:
        return [Issue(**i) for i in raw]
    return [Issue(location=location, message=exc.message, fix=exc.fix)]


class _Collector:
    def __init__(self) -> None:
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.files: list[str] = []
        self._seen: set[tuple[str, str, str]] = set()

    def add(self, kind: str, issues: Iterable[Issue], prefix: str = "") -> None:
        target = self.errors if kind == "error" else self.warnings
        for issue in issues:
            if prefix and not issue.location.startswith(prefix):
                issue = issue.model_copy(update={"location": f"{prefix}{issue.location}"})
            key = (kind, issue.location, issue.message)
            if key not in self._seen:
                self._seen.add(key)
                target.append(issue)

    def result(self, workspaces: list[str]) -> ConfigCheckResult:
        truncated = len(self.errors) > MAX_ISSUES or len(self.warnings) > MAX_ISSUES
        return ConfigCheckResult(
            valid=not self.errors, errors=self.errors[:MAX_ISSUES], warnings=self.warnings[:MAX_ISSUES],
            files_checked=self.files, workspaces=workspaces, truncated=truncated,
        )


def check_project_config(project: Project, out: _Collector) -> None:
    from goldfish.config import load_config

    out.files.append(project.config_path.name)
    try:
        load_config(project.config_path)
    except GoldfishError as exc:
        rows = exc.details.get("errors") or []
        if not rows:
            out.add("error", [Issue(location=project.config_path.name, message=exc.message, fix=exc.fix)])
        for row in rows:
            where = project.config_path.name + (f":{row['line']}" if row.get("line") else "")
            if row.get("path"):
                where += f" {row['path']}"
            out.add("error", [Issue(location=where, message=row["message"], fix=exc.fix)])
    refused = project.backend_issue()
    if refused is not None:
        refused.location = f"{project.config_path.name} {refused.location}"
        out.add("error", [refused])


def check_slot(project: Project, slot: str, out: _Collector) -> None:
    """pipeline.yaml (+ pipelines/*.yaml), configs/*.yaml and the modules of a mounted slot."""
    from goldfish.pipelines.model import load_pipeline

    root = project.slot_path(slot)
    prefix = f"{slot}/"
    pipelines: list[tuple[str | None, Path]] = [(None, root / "pipeline.yaml")]
    pipelines += [(p.stem, p) for p in sorted((root / "pipelines").glob("*.yaml"))]
    stage_names: set[str] = set()
    for name, path in pipelines:
        if name is None and not path.is_file():
            out.add("error", [Issue(
                location="pipeline.yaml", message="the workspace has no pipeline.yaml.",
                fix="Create pipeline.yaml with `stages:` (each stage: name, inputs, outputs).",
            )], prefix)
            continue
        out.files.append(prefix + path.relative_to(root).as_posix())
        try:
            pipeline = load_pipeline(root, name)
        except GoldfishError as exc:
            out.add("error", _issues_of(exc, path.relative_to(root).as_posix()), prefix)
            continue
        stage_names.update(pipeline.stage_names)
        _validate_pipeline(project, pipeline, root, out, prefix)
    _check_config_files(root, stage_names, out, prefix)


def _validate_pipeline(project: Project, pipeline: Pipeline, root: Path, out: _Collector, prefix: str) -> None:
    from goldfish.pipelines.validate import validate_pipeline

    config = project.config
    sources = project.store.table("sources")
    try:
        report = validate_pipeline(
            pipeline, root, backend=config.jobs.backend,
            profile_overrides=config.gce.profile_overrides if config.gce else None,
            zones=config.gce.zones if config.gce else None,
            source_schemas=lambda n: dict((sources.get_doc(n) or {}).get("metadata") or {}) if sources.has(n) else None,
        )
    except GoldfishError as exc:
        out.add("error", _issues_of(exc, "pipeline.yaml"), prefix)
        return
    out.add("error", report.errors, prefix)
    out.add("warning", report.warnings, prefix)
    for stage in pipeline.stages:
        module = root / stage.module_path
        if module.is_file():
            out.files.append(prefix + stage.module_path)


def _check_config_files(root: Path, stage_names: set[str], out: _Collector, prefix: str) -> None:
    from goldfish.yamlio import parse_yaml

    for path in sorted((root / "configs").glob("*.yaml")):
        label = f"configs/{path.name}"
        out.files.append(prefix + label)
        if stage_names and path.stem not in stage_names:
            hint = difflib.get_close_matches(path.stem, sorted(stage_names), n=1, cutoff=0.6)
            out.add("warning", [Issue(
                location=label,
                message=f"no stage is named {path.stem!r}, so no run reads this file."
                + (f" Did you mean {hint[0]!r}?" if hint else ""),
                fix=f"Rename it to configs/<stage>.yaml for one of: {', '.join(sorted(stage_names))}.",
            )], prefix)
        try:
            data = parse_yaml(path.read_text(encoding="utf-8"), label)
        except UnicodeDecodeError:
            out.add("error", [Issue(location=label, message="the file is not UTF-8 text.", fix="Save it as UTF-8.")],
                    prefix)
            continue
        except GoldfishError as exc:
            out.add("error", _issues_of(exc, label), prefix)
            continue
        if data is None:
            continue
        if not isinstance(data, dict):
            out.add("error", [Issue(
                location=label, message=f"the file holds a {type(data).__name__}, not a mapping.",
                fix="Write the stage config as key: value lines (e.g. lr: 0.001).",
            )], prefix)
            continue
        out.add("warning", _key_warnings(data, label, compute_keys=path.stem not in stage_names), prefix)


Review = Callable[[str, str], tuple[list[Issue], list[Issue]]]


def validate_config(project: Project, workspace: str | None = None, *, review: Review | None = None
                    ) -> ConfigCheckResult:
    """Check goldfish.yaml and, for ``workspace`` (a slot or a mounted workspace; None: every mounted
    one), its pipeline files, stage configs and modules. ``review(workspace, slot)``: the pre-run
    review of every stage (``Runs.review_slot``, passed in because pipelines never import runs),
    run when the slot's own files hold no error."""
    out = _Collector()
    check_project_config(project, out)
    if workspace is not None:
        name, slot = project.workspaces.resolve_mounted(workspace)
        targets = [(name, slot)]
    else:
        targets = [(str(d["workspace"]), str(d["id"])) for d in project.store.table("mounts").docs()]
        targets.sort(key=lambda t: t[1])
    for name, slot in targets:
        before = len(out.errors)
        check_slot(project, slot, out)
        if review is not None and len(out.errors) == before:
            errors, warnings = review(name, slot)
            out.add("error", errors, f"{slot}/")
            out.add("warning", warnings, f"{slot}/")
    return out.result([name for name, _slot in targets])
