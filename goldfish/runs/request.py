"""Validation of a run() request, before anything is created.

``build_request`` resolves the workspace (slot or name; it must be mounted), parses the reason and
the results_spec, reads the slot's pipeline only to check the request (stages exist, no
duplicates, topological order), normalises the overrides and checks every input can be resolved.
Every problem found is reported at once as one InvalidInput; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish import names
from goldfish.errors import GoldfishError, InvalidInput
from goldfish.runs.inputs import resolve_inputs
from goldfish.issues import Issue, issues_error
from goldfish.names import did_you_mean
from goldfish.pipelines.model import Pipeline, load_pipeline
from goldfish.records.results_spec import ResultsSpec, RunReason, parse_run_reason, validate_results_spec
from goldfish.pipelines.stage_config import normalize_input_overrides, normalize_overrides

if TYPE_CHECKING:
    from goldfish.project import Project

MAX_GROUP = 128


@dataclass
class RunRequest:
    workspace: str
    slot: str
    slot_path: Path
    pipeline_name: str | None
    pipeline: Pipeline
    stages: list[str]
    reason: RunReason | None
    results_spec: ResultsSpec | None
    experiment_group: str | None
    config_overrides: dict[str, dict[str, Any]]
    input_overrides: dict[str, dict[str, Any]]
    skip_review: bool
    depends_on: dict[str, list[str]] = field(default_factory=dict)
    input_issues: list[Issue] = field(default_factory=list)
    saved_spec_stages: list[str] = field(default_factory=list)  # results_spec came from save_results_spec

    @property
    def reason_summary(self) -> str:
        return self.reason.summary if self.reason is not None else "dry run"


def _issue(location: str, exc: GoldfishError) -> Issue:
    nested = exc.details.get("issues") if exc.details else None
    if nested and len(nested) == 1:
        return Issue(**nested[0])
    return Issue(location=location, message=exc.message, fix=exc.fix)


def _field_issues(prefix: str, exc: GoldfishError) -> list[Issue]:
    """The per-field errors of a validator (results_spec, reason) as issues, each with the fix."""
    fields = exc.details.get("errors") if exc.details else None
    if not fields:
        return [_issue(prefix, exc)]
    return [
        Issue(
            location=prefix if item["field"] == prefix else f"{prefix}.{item['field']}",
            message=item["message"],
            fix=exc.fix,
        )
        for item in fields
    ]


def resolve_mounted(project: Project, workspace: object) -> tuple[str, str]:
    """(workspace, slot) for a slot or workspace name; InvalidInput unless it is mounted."""
    if not isinstance(workspace, str) or not workspace:
        raise InvalidInput(
            f"workspace must be a slot (e.g. w1) or a workspace name, got {workspace!r}.",
            fix="Pass the slot the workspace is mounted in, e.g. run('w1', ...).",
        )
    if workspace not in project.config.slots:
        names.workspace_name(workspace)
    name, slot = project.workspaces.resolve(workspace)
    if slot is None:
        raise InvalidInput(
            f"Workspace {name} is not mounted, and run() runs what is in a mounted slot.",
            fix=f"mount(workspace='{name}', slot='w1', reason=...) first, then run('{name}', ...).",
        )
    return name, slot


def _experiment_group(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_GROUP or "\n" in value:
        raise InvalidInput(
            f"experiment_group must be a short single-line name (1-{MAX_GROUP} characters), got {value!r}.",
            fix="Use a label such as 'lr-sweep-1', or leave it out.",
        )
    return value.strip()


def _stage_list(pipeline: Pipeline, stages: object, issues: list[Issue]) -> list[str]:
    if stages is None or stages == []:
        return pipeline.stage_names
    if isinstance(stages, str) or not isinstance(stages, list):
        issues.append(Issue(
            location="stages",
            message=f"stages must be a list of stage names, got {type(stages).__name__} {stages!r}.",
            fix=f'Pass e.g. stages=["{pipeline.stage_names[0]}"], or leave it out to run every stage.',
        ))
        return []
    picked: list[str] = []
    for position, name in enumerate(stages):
        where = f"stages[{position}]"
        if not isinstance(name, str):
            issues.append(Issue(location=where, message=f"stage names are strings, got {name!r}.",
                                fix=f"Use one of: {', '.join(pipeline.stage_names)}."))
        elif name in picked:
            issues.append(Issue(location=where, message=f"stage {name!r} is requested twice.",
                                fix="List each stage once."))
        elif name not in pipeline.stage_names:
            issues.append(Issue(
                location=where,
                message=f"pipeline {pipeline.name!r} has no stage {name!r}.{did_you_mean(name, pipeline.stage_names)}",
                fix=f"Use one of its stages: {', '.join(pipeline.stage_names)}.",
            ))
        else:
            picked.append(name)
    return picked


def _previous_spec(project: Project, workspace: str) -> dict[str, Any] | None:
    """The results_spec of the workspace's newest run (for examples in errors), if any."""
    newest: dict[str, Any] | None = None
    for run in project.store.table("runs", f"ws/{workspace}").iter_raw():
        if isinstance(run.get("results_spec"), dict) and str(run.get("created_at") or "") >= str(
                (newest or {}).get("created_at") or ""):
            newest = run
    return dict(newest["results_spec"]) if newest else None


def _saved_spec(project: Project, workspace: str, stages: list[str],
                issues: list[Issue]) -> tuple[ResultsSpec | None, list[str]]:
    """run() without results_spec: the results_spec saved for its stages, else the usual "required" error."""
    from goldfish.records.service import saved_spec_for

    try:
        doc, used = saved_spec_for(project, workspace, stages)
    except InvalidInput as exc:
        issues.append(_issue("results_spec", exc))
        return None, []
    try:
        spec = validate_results_spec(doc, like=_previous_spec(project, workspace))
    except InvalidInput as exc:
        for issue in _field_issues("results_spec", exc):
            if doc is None:
                issue.fix = (f"{issue.fix or ''} Or save one for the stage first: save_results_spec(workspace, "
                             "stage, results_spec).").strip()
            issues.append(issue)
        return None, []
    return spec, used


def build_request(
    project: Project,
    workspace: object,
    *,
    stages: object = None,
    pipeline: object = None,
    config_override: object = None,
    inputs_override: object = None,
    reason: object = None,
    results_spec: object = None,
    experiment_group: object = None,
    dry_run: bool = False,
    skip_review: bool = False,
) -> RunRequest:
    """Check a run() request; raise one InvalidInput listing every problem (nothing is written)."""
    ws, slot = resolve_mounted(project, workspace)
    issues: list[Issue] = []
    run_reason: RunReason | None = None
    if reason is not None or not dry_run:
        try:
            run_reason = parse_run_reason(reason, project.config.audit.min_reason_length)
        except InvalidInput as exc:
            issues.extend(_field_issues("reason", exc))
    spec: ResultsSpec | None = None
    use_saved = results_spec is None and not dry_run  # a spec saved by save_results_spec, if any
    if results_spec is not None:
        try:
            spec = validate_results_spec(results_spec)
        except InvalidInput:
            try:  # again, for an example in the fix drawn from this workspace's last spec
                validate_results_spec(results_spec, like=_previous_spec(project, ws))
            except InvalidInput as exc:
                issues.extend(_field_issues("results_spec", exc))
    group = None
    try:
        group = _experiment_group(experiment_group)
    except InvalidInput as exc:
        issues.append(_issue("experiment_group", exc))
    if pipeline is not None and not isinstance(pipeline, str):
        raise InvalidInput(f"pipeline must be a pipeline name, got {pipeline!r}.",
                           fix="Pass e.g. pipeline='train_eval' for pipelines/train_eval.yaml, or leave it out.")
    slot_path = project.slot_path(slot)
    parsed = load_pipeline(slot_path, pipeline)
    selected = _stage_list(parsed, stages, issues)
    order: list[str] = []
    if selected:
        order = parsed.topological_order(selected)
    configs: dict[str, dict[str, Any]] = {s: {} for s in order}
    inputs: dict[str, dict[str, Any]] = {s: {} for s in order}
    if order:
        try:
            configs = normalize_overrides(config_override, order, all_stages=parsed.stage_names)
        except InvalidInput as exc:
            issues.append(_issue("config_override", exc))
        try:
            inputs = normalize_input_overrides(inputs_override, order, all_stages=parsed.stage_names)
        except InvalidInput as exc:
            issues.append(_issue("inputs_override", exc))
        for stage, overrides in inputs.items():
            declared = parsed.stage(stage).inputs
            for unknown in sorted(set(overrides) - set(declared)):
                issues.append(Issue(
                    location=f"inputs_override.{stage}.{unknown}",
                    message=f"stage {stage} has no input {unknown!r}.{did_you_mean(unknown, declared)}",
                    fix=f"Override one of its inputs: {', '.join(declared) or '(it has none)'}.",
                ))
    saved_from: list[str] = []
    if use_saved:
        spec, saved_from = _saved_spec(project, ws, order, issues)
    if spec is not None and spec.stage is not None and order and spec.stage not in order:
        known = parsed.stage_names
        issues.append(Issue(
            location="results_spec.stage",
            message=(f"results_spec.stage {spec.stage!r} is not among the stages this run executes "
                     f"({', '.join(order)}).{did_you_mean(spec.stage, known)}"),
            fix="Name one of the run's stages as the result stage, add it to stages, or leave results_spec.stage out "
                "(the result then goes on the last stage that logs primary_metric).",
        ))
    deps = parsed.dependencies()
    depends_on = {s: [d for d in order if d in deps.get(s, set())] for s in order}
    request = RunRequest(
        workspace=ws, slot=slot, slot_path=slot_path, pipeline_name=pipeline, pipeline=parsed,
        stages=order, reason=run_reason, results_spec=spec, experiment_group=group,
        config_overrides=configs, input_overrides=inputs, skip_review=bool(skip_review),
        depends_on=depends_on, saved_spec_stages=saved_from,
    )
    if not issues:
        # Inputs: overrides must exist now; upstreams outside the request need a completed run.
        placeholders = {s: f"(this run: {s})" for s in order}
        for stage in order:
            valid = {k: v for k, v in inputs.get(stage, {}).items() if k in parsed.stage(stage).inputs}
            _, problems = resolve_inputs(project, ws, parsed, stage, in_run=placeholders, overrides=valid,
                                         check_only=True)
            request.input_issues.extend(problems)
        # Override and upstream problems are request errors; a missing dataset is left to preflight
        # (it leaves a record of the attempt), as are module and config problems.
        issues.extend(i for i in request.input_issues if not i.location.endswith(".dataset"))
    if issues:
        raise issues_error("run() request is invalid; nothing was created.", issues)
    return request
