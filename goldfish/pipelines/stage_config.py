"""Stage configuration: merging the layers, Goldfish's own keys, and override normalisation.

Precedence, lowest first: the stage's ``defaults:`` in the pipeline file, then
``configs/<stage>.yaml`` (optional), then the run's ``config_override``. Layers are merged
*deeply*: a nested mapping merges key by key, so ``{compute: {profile: h100-spot}}`` in an
override keeps ``compute.max_runtime_seconds`` from the file. Any other value (a list included)
replaces the lower layer's value; ``null`` sets the key to null (it does not delete it).

Keys Goldfish reads: ``compute.{profile, max_runtime_seconds, heartbeat_timeout_seconds,
capacity_wait_seconds, log_sync_interval}``, ``environment``, ``dashboard_metrics``, ``hints``.
Everything else is the stage's own hyperparameters (``get_config()`` in the stage).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from goldfish import names
from goldfish.errors import GoldfishError, InvalidInput
from goldfish.issues import Issue, issues_error
from goldfish.names import did_you_mean
from goldfish.pipelines.errors import pydantic_issues
from goldfish.pipelines.model import ConfigField, Pipeline, Stage, validation_issues
from goldfish.pipelines.signal_schema import (
    Contract,
    iter_placeholders,
    parse_contract,
    placeholder_name,
)
from goldfish.yamlio import parse_yaml

RESERVED_KEYS = ("stage", "inputs", "outputs")  # Goldfish writes these into the runtime config
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


class ComputeSettings(BaseModel):
    """The ``compute:`` block of a stage config."""

    model_config = ConfigDict(extra="forbid")

    profile: Any = Field(default=None, description="Compute profile name (checked against the backend)")
    max_runtime_seconds: StrictInt | None = Field(default=None, gt=0, description="Run timeout")
    heartbeat_timeout_seconds: StrictInt | None = Field(
        default=None, gt=0, description="Fail the run when no heartbeat arrives for this long"
    )
    capacity_wait_seconds: StrictInt | None = Field(
        default=None, gt=0, description="GCE capacity search time"
    )
    log_sync_interval: StrictInt | None = Field(default=None, gt=0, description="Log sync period (GCE)")
    network: StrictBool | None = Field(
        default=None,
        description="Give the stage's container network access (docker/gce); null uses docker.network (none)",
    )


class StageConfig(BaseModel):
    """A stage's merged configuration."""

    stage: str = Field(description="Stage name")
    values: dict[str, Any] = Field(description="The merged config (every layer, Goldfish keys included)")
    profile: str | None = Field(default=None, description="compute.profile, if set")
    max_runtime_seconds: int | None = Field(default=None, description="compute.max_runtime_seconds")
    heartbeat_timeout_seconds: int | None = Field(
        default=None, description="compute.heartbeat_timeout_seconds"
    )
    capacity_wait_seconds: int | None = Field(default=None, description="compute.capacity_wait_seconds")
    log_sync_interval: int | None = Field(default=None, description="compute.log_sync_interval")
    network: bool | None = Field(default=None, description="compute.network: container network access")
    environment: dict[str, str] = Field(default_factory=dict, description="Extra environment for the stage")
    dashboard_metrics: list[str] = Field(default_factory=list, description="Metrics inspect_run shows first")
    hints: Any = Field(default=None, description="Free-form hints stored on the run")
    config_file: str | None = Field(default=None, description="configs/<stage>.yaml when it exists")
    origins: dict[str, str] = Field(
        default_factory=dict, description="Dotted key → the layer that set it (for messages)"
    )

    def origin(self, dotted: str) -> str:
        """The layer that set ``dotted`` (or its closest parent)."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            label = self.origins.get(".".join(parts[:end]))
            if label:
                return label
        return self.config_file or f"configs/{self.stage}.yaml"


class StageConfigCheck(BaseModel):
    """Result of ``check_stage_config``: the config (None when it cannot be built) and its issues."""

    config: StageConfig | None = None
    errors: list[Issue] = Field(default_factory=list)
    warnings: list[Issue] = Field(default_factory=list)


# --- merging ---------------------------------------------------------------------------------------
def _record(origins: dict[str, str], path: str, value: Any, label: str) -> None:
    for key in [k for k in origins if k.startswith(path + ".")]:
        del origins[key]
    origins[path] = label
    if isinstance(value, dict):
        for key, item in value.items():
            _record(origins, f"{path}.{key}", item, label)


def deep_merge(
    base: Mapping[str, Any],
    over: Mapping[str, Any],
    *,
    origins: dict[str, str] | None = None,
    label: str = "",
    _path: str = "",
) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        path = f"{_path}.{key}" if _path else str(key)
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value, origins=origins, label=label, _path=path)
            if origins is not None:
                origins.setdefault(path, label)
        else:
            out[key] = copy.deepcopy(value)
            if origins is not None:
                _record(origins, path, value, label)
    return out


def config_file_path(root: Path, stage: str) -> Path:
    return Path(root) / "configs" / f"{names.stage_name(stage)}.yaml"


def read_config_file(root: Path, stage: str) -> tuple[dict[str, Any] | None, list[Issue]]:
    """The parsed ``configs/<stage>.yaml`` (None when absent) and its problems."""
    path = config_file_path(root, stage)
    label = f"configs/{stage}.yaml"
    if not path.is_file():
        return None, []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [Issue(location=label, message="the file is not UTF-8 text.", fix="Save it as UTF-8.")]
    try:
        data = parse_yaml(text, label)
    except GoldfishError as exc:
        return None, [Issue(**i) for i in exc.details.get("issues", [])] or [
            Issue(location=label, message=exc.message, fix=exc.fix)
        ]
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return None, [
            Issue(
                location=label,
                message=f"the file holds a {type(data).__name__}, not a mapping.",
                fix="Write the stage config as key: value lines (e.g. lr: 0.001).",
            )
        ]
    return data, []


def _check_compute(values: dict[str, Any], cfg: StageConfig, errors: list[Issue]) -> None:
    compute = values.get("compute")
    if compute is None:
        return
    if not isinstance(compute, dict):
        errors.append(
            Issue(
                location=f"{cfg.origin('compute')}:compute",
                message="compute must be a mapping.",
                fix="Write e.g. compute: {profile: cpu-small, max_runtime_seconds: 3600}.",
            )
        )
        return
    try:
        settings = ComputeSettings.model_validate(compute)
    except ValidationError as exc:
        for issue in pydantic_issues(exc, fields={"": list(ComputeSettings.model_fields)}):
            key = issue.location.split(".")[0].split("[")[0]
            if "unknown key" in issue.message:
                issue.fix = (
                    f"Use the compute keys: {', '.join(ComputeSettings.model_fields)}; put your own"
                    " hyperparameters at the top level of the config."
                )
            errors.append(
                issue.model_copy(
                    update={"location": f"{cfg.origin('compute.' + key)}:compute.{issue.location}"}
                )
            )
        return
    cfg.profile = settings.profile if isinstance(settings.profile, str) else None
    if settings.profile is not None and not isinstance(settings.profile, str):
        errors.append(
            Issue(
                location=f"{cfg.origin('compute.profile')}:compute.profile",
                message=f"compute.profile must be a profile name, got {settings.profile!r}.",
                fix="Use e.g. compute.profile: cpu-small.",
            )
        )
    cfg.max_runtime_seconds = settings.max_runtime_seconds
    cfg.heartbeat_timeout_seconds = settings.heartbeat_timeout_seconds
    cfg.capacity_wait_seconds = settings.capacity_wait_seconds
    cfg.log_sync_interval = settings.log_sync_interval
    cfg.network = settings.network


def _check_environment(values: dict[str, Any], cfg: StageConfig, errors: list[Issue]) -> None:
    env = values.get("environment")
    if env is None:
        return
    if not isinstance(env, dict):
        errors.append(
            Issue(
                location=f"{cfg.origin('environment')}:environment",
                message="environment must map variable names to values.",
                fix="Write e.g. environment: {OMP_NUM_THREADS: 4}.",
            )
        )
        return
    for key, value in env.items():
        where = f"{cfg.origin('environment.' + str(key))}:environment.{key}"
        if not isinstance(key, str) or not _ENV_NAME_RE.fullmatch(key):
            errors.append(
                Issue(
                    location=where,
                    message=f"{key!r} is not an environment variable name.",
                    fix="Use letters, digits and '_', not starting with a digit.",
                )
            )
        elif key.upper().startswith("GOLDFISH_"):
            errors.append(
                Issue(
                    location=where,
                    message=f"{key} is reserved: GOLDFISH_* variables are set by Goldfish for every run.",
                    fix="Rename the variable (any name not starting with GOLDFISH_), or put the"
                    " value in the stage"
                    " config and read it with get_config().",
                )
            )
        elif value is None or isinstance(value, (dict, list)):
            errors.append(
                Issue(
                    location=where,
                    message=f"environment value {value!r} is not a scalar.",
                    fix="Give a string or number (lists and mappings belong in the stage config).",
                )
            )
        else:
            cfg.environment[key] = str(value).lower() if isinstance(value, bool) else str(value)


def _check_dashboard(values: dict[str, Any], cfg: StageConfig, errors: list[Issue]) -> None:
    metrics = values.get("dashboard_metrics")
    if metrics is None:
        return
    where = f"{cfg.origin('dashboard_metrics')}:dashboard_metrics"
    if not isinstance(metrics, list):
        errors.append(
            Issue(
                location=where,
                message="dashboard_metrics must be a list of metric names.",
                fix="Write e.g. dashboard_metrics: [train/loss, val/acc].",
            )
        )
        return
    for index, metric in enumerate(metrics):
        try:
            cfg.dashboard_metrics.append(names.metric_name(metric))
        except InvalidInput as exc:
            errors.append(Issue(location=f"{where}[{index}]", message=exc.message, fix=exc.fix))


_TYPE_CHECKS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}


def _lookup(values: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_config_schema(stage: Stage, cfg: StageConfig) -> list[Issue]:
    """The merged config against the stage's ``config_schema`` (types, required keys)."""
    issues: list[Issue] = []
    file_label = cfg.config_file or f"configs/{stage.name}.yaml"
    for key, spec in stage.config_schema.items():
        assert isinstance(spec, ConfigField)
        found, value = _lookup(cfg.values, key)
        if not found or value is None:
            if spec.required:
                issues.append(
                    Issue(
                        location=f"{file_label}:{key}",
                        message=f"config_schema of stage {stage.name} requires {key} ({spec.type}),"
                        f" but no layer sets it.",
                        fix=f"Add {key}: <{spec.type}> to {file_label}, to the stage's defaults in"
                        f" the pipeline,"
                        " or pass it in config_override.",
                    )
                )
            continue
        if not _TYPE_CHECKS[spec.type](value):
            got = "bool" if isinstance(value, bool) else type(value).__name__
            issues.append(
                Issue(
                    location=f"{cfg.origin(key)}:{key}",
                    message=f"{key} is {value!r} ({got}), but config_schema of stage {stage.name}"
                    f" declares {spec.type}.",
                    fix=f"Set {key} to a {spec.type} value"
                    + (" (true/false are not numbers)" if isinstance(value, bool) else "")
                    + ", or change its type in config_schema.",
                )
            )
    return issues


def check_stage_config(
    pipeline: Pipeline, stage: str, root: Path, override: Mapping[str, Any] | None = None
) -> StageConfigCheck:
    """Merge the layers of one stage's config and collect every problem (nothing raised, nothing written)."""
    stage_def = pipeline.stage(stage)
    result = StageConfigCheck()
    file_values, file_issues = read_config_file(root, stage)
    label = f"configs/{stage}.yaml"
    if file_issues:
        result.errors.extend(file_issues)
        return result
    if file_values is None:
        result.warnings.append(
            Issue(
                location=label,
                message=f"{label} does not exist; stage {stage} runs with its pipeline defaults"
                + (" and the overrides." if override else "."),
                fix=f"Create {label} if the stage needs settings (e.g. compute.profile, hyperparameters).",
            )
        )
    if override is not None and not isinstance(override, Mapping):
        result.errors.append(
            Issue(
                location=f"config_override.{stage}",
                message="the override is not a mapping.",
                fix="Pass the override as {key: value}.",
            )
        )
        return result
    origins: dict[str, str] = {}
    values = deep_merge(
        {},
        stage_def.defaults,
        origins=origins,
        label=f"{pipeline.source}:stages[{pipeline.index(stage)}].defaults",
    )
    values = deep_merge(values, file_values or {}, origins=origins, label=label)
    values = deep_merge(values, dict(override or {}), origins=origins, label=f"config_override.{stage}")
    cfg = StageConfig(
        stage=stage,
        values=values,
        hints=values.get("hints"),
        origins=origins,
        config_file=label if file_values is not None else None,
    )
    errors: list[Issue] = []
    _check_compute(values, cfg, errors)
    _check_environment(values, cfg, errors)
    _check_dashboard(values, cfg, errors)
    errors.extend(check_config_schema(stage_def, cfg))
    for key in RESERVED_KEYS:
        if key in values:
            result.warnings.append(
                Issue(
                    location=f"{cfg.origin(key)}:{key}",
                    message=f"config key {key!r} is replaced by Goldfish at run time (it holds the"
                    f" stage's {key}).",
                    fix=f"Rename {key!r} (e.g. {stage}_{key}).",
                )
            )
    result.errors.extend(errors)
    result.config = cfg
    return result


def merge_stage_config(
    pipeline: Pipeline, stage: str, root: Path, override: Mapping[str, Any] | None = None
) -> StageConfig:
    """The merged config of ``stage`` (defaults → configs/<stage>.yaml → override, deep merge).

    Raises InvalidInput listing every problem (YAML errors, GOLDFISH_* environment keys, bad
    compute settings, config_schema violations)."""
    result = check_stage_config(pipeline, stage, root, override)
    if result.errors or result.config is None:
        raise issues_error(f"The config of stage {stage} is invalid.", result.errors)
    return result.config


# --- override normalisation ------------------------------------------------------------------------
def _normalize(
    value: Any, stages: list[str], what: str, example: str, all_stages: list[str] | None
) -> dict[str, dict[str, Any]]:
    if value is None:
        return {s: {} for s in stages}
    if not isinstance(value, dict):
        raise InvalidInput(
            f"{what} must be a mapping, got {type(value).__name__}.",
            fix=f'Pass e.g. {{{example}}}, or keyed by stage: {{"<stage>": {{{example}}}}}.',
        )
    if not value:
        return {s: {} for s in stages}
    outside = [k for k in value if k in (all_stages or ()) and k not in stages and isinstance(value[k], dict)]
    if outside:
        listed = ", ".join(outside)
        raise InvalidInput(
            f"{what} has entries for stages outside this run ({', '.join(stages)}): {listed}.",
            fix=f"Add {listed} to the stages of the run, or drop those entries.",
        )
    stage_keys = [k for k in value if k in stages]
    if len(stage_keys) == len(value) and all(isinstance(v, dict) for v in value.values()):
        return {s: dict(value.get(s, {})) for s in stages}
    keyed = [k for k in stage_keys if isinstance(value[k], dict)]
    if keyed:
        flat = [str(k) for k in value if k not in keyed]
        raise InvalidInput(
            f"{what} mixes per-stage entries ({', '.join(keyed)}) with flat keys ({', '.join(flat)}).",
            fix=f"Key every entry by stage name: {{{', '.join(repr(s) + ': {...}' for s in stages)}}}.",
        )
    if len(stages) == 1:
        return {stages[0]: dict(value)}
    hints = "".join(
        f" {k!r} is not a stage of this run.{did_you_mean(k, stages)}"
        for k in value
        if isinstance(k, str) and isinstance(value[k], dict) and did_you_mean(k, stages)
    )
    raise InvalidInput(
        f"{what} is flat ({', '.join(map(str, value))}) but this run has {len(stages)} stages"
        f" ({', '.join(stages)}), so it is unclear which stage it is for.{hints}",
        fix=f"Key it by stage name: {{{', '.join(repr(s) + ': {...}' for s in stages)}}}.",
    )


def normalize_overrides(
    config_override: Any, stages: list[str], *, all_stages: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per-stage config overrides for the ``stages`` of a run.

    A flat dict is accepted for a single stage; a dict keyed by stage names gives each stage its
    own; a flat dict for several stages is refused (it would be ambiguous), and so is a mix of the
    two. With ``all_stages`` (every stage of the pipeline), an entry for a stage outside the run
    is refused instead of being read as a config key."""
    return _normalize(config_override, stages, "config_override", "'lr': 0.01", all_stages)


def normalize_input_overrides(
    inputs_override: Any, stages: list[str], *, all_stages: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per-stage input overrides ``{stage: {input: run id | source | path | {from_run, signal}}}``,
    with the same rules as ``normalize_overrides``."""
    return _normalize(inputs_override, stages, "inputs_override", "'features': 'stage-1a2b3c4d'", all_stages)


# --- schema placeholders ---------------------------------------------------------------------------
def missing_placeholders(schema: Any, config: Mapping[str, Any] | StageConfig) -> list[tuple[str, str]]:
    """``(path in schema, param)`` for every ``"{param}"`` the config's top-level keys do not define."""
    values = config.values if isinstance(config, StageConfig) else config
    raw = schema.model_dump(exclude_none=True) if isinstance(schema, BaseModel) else schema
    return [(path, name) for path, name in iter_placeholders(raw) if name not in values]


def _substitute(value: Any, values: Mapping[str, Any]) -> Any:
    name = placeholder_name(value)
    if name is not None:
        return copy.deepcopy(values[name])
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    return value


def resolve_placeholders(schema: Any, config: Mapping[str, Any] | StageConfig) -> Any:
    """Replace whole-string ``"{name}"`` values in a schema by the config's top-level ``name``.

    A dict (or None) gives a dict (or None); a contract model gives a re-validated model. Raises
    InvalidInput naming every missing param, or a resolved value that breaks the schema."""
    values = config.values if isinstance(config, StageConfig) else config
    is_model = isinstance(schema, BaseModel)
    raw = schema.model_dump(exclude_none=True) if isinstance(schema, BaseModel) else schema
    missing = missing_placeholders(raw, values)
    if missing:
        raise issues_error(
            "The schema references missing config params.",
            [
                Issue(
                    location=f"schema.{path}" if path else "schema",
                    message=f'"{{{name}}}" references missing config param {name!r}.',
                    fix=f"Add {name}: <value> at the top level of the stage config"
                    f" (configs/<stage>.yaml or defaults).",
                )
                for path, name in missing
            ],
        )
    resolved = _substitute(raw, values)
    if not is_model:
        return resolved
    try:
        contract: Contract | None = parse_contract(resolved)
    except ValidationError as exc:
        raise issues_error(
            "The schema is invalid once its placeholders are filled in.",
            validation_issues(exc, prefix="schema", schema_root=True),
        ) from None
    return contract
