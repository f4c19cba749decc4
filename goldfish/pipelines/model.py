"""pipeline.yaml: models, loading, and the stage graph.

A pipeline is a list of stages; a stage reads inputs (from an upstream stage's output with
``from_stage``/``signal``, or from a registered source with ``dataset``) and writes outputs. Every
input and output must carry a ``schema:`` key (a contract, or ``null`` to opt out).

Parsing checks the document itself (shape of every field, names, contracts, duplicate stages) and
reports every problem at once. Checks that need the project (module files, stage configs, sources,
profiles) and the graph checks (unknown upstream, cycles, type and contract compatibility) live in
``goldfish.pipelines.validate``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from goldfish import names

from goldfish.pipelines import dag
from goldfish.errors import GoldfishError, InvalidInput, NotFound
from goldfish.fsutil import inside
from goldfish.issues import Issue, custom_error, issues_error
from goldfish.names import did_you_mean
from goldfish.pipelines.errors import pydantic_issues
from goldfish.pipelines.signal_schema import (
    SCHEMA_KINDS,
    FileSchema,
    JsonSchema,
    SignalContract,
    TabularSchema,
    TensorArray,
    TensorSchema,
)
from goldfish.yamlio import parse_yaml

SignalType = Literal["npy", "npz", "csv", "file", "directory", "dataset", "json"]
SIGNAL_TYPES: tuple[str, ...] = get_args(SignalType)
ConfigType = Literal["int", "float", "number", "bool", "str", "list", "dict"]
Runtime = Literal["python", "rust"]

_PIPELINE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", re.ASCII)
# Which schema kinds a signal type can carry; types not listed accept any kind.
_KINDS_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "npy": ("tensor",),
    "npz": ("tensor",),
    "csv": ("tabular",),
    "json": ("json",),
}


def kinds_for_type(type_: str | None) -> tuple[str, ...]:
    """Schema kinds a signal of this type can carry."""
    return _KINDS_FOR_TYPE.get(type_ or "", SCHEMA_KINDS)


def _name_validator(check: Callable[[object], str]) -> AfterValidator:
    def run(value: str) -> str:
        try:
            return check(value)
        except GoldfishError as exc:
            raise custom_error(exc.message, exc.fix) from None

    return AfterValidator(run)


StageName = Annotated[str, _name_validator(names.stage_name)]
SignalName = Annotated[str, _name_validator(names.signal_name)]
SourceName = Annotated[str, _name_validator(names.source_name)]


def _check_pipeline_name(value: object) -> str:
    if not isinstance(value, str) or not _PIPELINE_NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"Invalid pipeline name {value!r}.",
            fix="Use 1-64 ASCII letters, digits, '_' or '-', starting with a letter or digit (e.g."
            " train_eval).",
        )
    return value


class ConfigField(BaseModel):
    """One entry of a stage's ``config_schema``."""

    model_config = ConfigDict(extra="forbid")

    type: ConfigType = Field(description="int, float (accepts int), number, bool, str, list or dict")
    required: StrictBool = Field(default=False, description="The merged stage config must set this key")


class _Signal(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: SignalName = Field(description="Signal name (the key under inputs:/outputs:)")
    contract: SignalContract | None = Field(
        alias="schema", description="Schema contract; the key is required, null opts out (with a warning)"
    )
    format: SignalType | None = Field(default=None, description="Load/save format; defaults to type")
    description: str = Field(default="", description="Free text")

    def _check_kind(self, type_: str | None) -> None:
        allowed = _KINDS_FOR_TYPE.get(type_ or "")
        if self.contract is not None and allowed and self.contract.kind not in allowed:
            raise custom_error(
                f"a {type_} signal cannot have a {self.contract.kind} schema.",
                f"Use schema kind {' or '.join(allowed)} for type {type_}, or change the type"
                " (file and directory accept any kind).",
                sub=".schema",
            )


class InputSignal(_Signal):
    """A stage input: from an upstream stage's output, or from a registered dataset."""

    type: SignalType | None = Field(
        default=None,
        description="Signal type; when omitted: dataset if `dataset` is set, else the upstream output's type"
        " (None only when it cannot be inferred, e.g. an input supplied by inputs_override)",
    )
    from_stage: StageName | None = Field(default=None, description="Upstream stage that produces this input")
    signal: SignalName | None = Field(
        default=None, description="Upstream output name; defaults to the input's own name (aliasing)"
    )
    dataset: SourceName | None = Field(default=None, description="Registered source (dataset) name")

    @model_validator(mode="after")
    def _source_rules(self) -> InputSignal:
        if self.from_stage is not None and self.dataset is not None:
            raise custom_error(
                f"input {self.name} sets both from_stage ({self.from_stage}) and dataset ({self.dataset}).",
                "Keep one: from_stage to read an upstream stage's output, or dataset to read a"
                " registered source.",
            )
        if self.signal is not None and self.from_stage is None:
            raise custom_error(
                f"input {self.name} sets signal: {self.signal} without from_stage.",
                "Add from_stage: <upstream stage>, or remove signal.",
                sub=".signal",
            )
        if self.from_stage is not None and self.signal is None:
            self.signal = self.name
        if self.type is None and self.dataset is not None:
            self.type = "dataset"
        self._check_kind(self.type)
        # A dataset input without a format reads in its source's registered format (npy, npz, csv,
        # file), resolved at run time; every other input defaults to its type.
        if self.format is None and self.type != "dataset":
            self.format = self.type
        return self


class OutputSignal(_Signal):
    """A stage output."""

    type: SignalType = Field(default="directory", description="Signal type (default directory)")
    artifact: StrictBool = Field(
        default=False,
        description="Register the output as a data source when its stage completes (needs metadata:)",
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="Source metadata (validated when the artifact is registered)"
    )
    source_name: SourceName | None = Field(
        default=None,
        description="Name of the auto-registered source; default <workspace>-<stage>-<output>-<run id hex>."
        " A fixed name registers only the first completed run (later ones get a warning)",
    )

    @model_validator(mode="after")
    def _defaults(self) -> OutputSignal:
        if self.source_name is not None and not self.artifact:
            raise custom_error(
                f"output {self.name} sets source_name: {self.source_name} but not artifact: true.",
                "Add artifact: true (and a metadata: block) to register it, or remove source_name.",
                sub=".source_name",
            )
        self._check_kind(self.type)
        if self.format is None:
            self.format = self.type
        return self


def _signals_by_name(value: Any, field: str, fix_example: str) -> Any:
    """Accept ``{name: {...}}`` or ``[{name: ..., ...}]``; reject bare-value shorthands."""
    if value is None:
        return {}
    if isinstance(value, list):
        items: dict[str, Any] = {}
        for index, item in enumerate(value):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise custom_error(
                    f"{field}[{index}] is {item!r}; each list item needs a name: and a schema:.",
                    f"Write it as - {{name: x, {fix_example}}}.",
                    sub=f"[{index}]",
                )
            if item["name"] in items:
                raise custom_error(
                    f"{field} lists {item['name']!r} twice.",
                    "Give each signal a unique name.",
                    sub=f"[{index}]",
                )
            items[item["name"]] = item
        return items
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if not isinstance(item, dict):
                example = (
                    f"dataset: {item}, schema: ..."
                    if field == "inputs" and isinstance(item, str)
                    else fix_example
                )
                raise custom_error(
                    f"{field}.{key} is {item!r}; a signal is a mapping with at least a schema:.",
                    f"Write it as {key}: {{{example}}}.",
                    sub=f".{key}",
                )
            if "name" in item and item["name"] != key:
                raise custom_error(
                    f"{field}.{key} has name: {item['name']!r}, which differs from its key.",
                    "Remove name: (the key is the name) or make them equal.",
                    sub=f".{key}",
                )
            out[key] = {**item, "name": key}
        return out
    return value  # pydantic reports the wrong type


class Stage(BaseModel):
    """One pipeline stage."""

    model_config = ConfigDict(extra="forbid")

    name: StageName = Field(description="Stage name; the module is modules/<name>.py (python) or .rs (rust)")
    runtime: Runtime = Field(default="python", description="python or rust (per stage)")
    entrypoint: str | None = Field(
        default=None, description="Rust only: custom binary path, relative and under entrypoints/"
    )
    description: str = Field(default="", description="Free text")
    config_schema: dict[str, ConfigField] = Field(
        default_factory=dict,
        description="{key: type} or {key: {type, required}}; dotted keys reach nested values",
    )
    defaults: dict[str, Any] = Field(default_factory=dict, description="Lowest-precedence stage config layer")
    inputs: dict[str, InputSignal] = Field(default_factory=dict, description="Input signals by name")
    outputs: dict[str, OutputSignal] = Field(default_factory=dict, description="Output signals by name")

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs_form(cls, value: Any) -> Any:
        return _signals_by_name(value, "inputs", "from_stage: <stage>, schema: ...")

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs_form(cls, value: Any) -> Any:
        return _signals_by_name(value, "outputs", "type: npy, schema: ...")

    @field_validator("defaults", mode="before")
    @classmethod
    def _defaults_form(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("config_schema", mode="before")
    @classmethod
    def _config_schema_form(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            return value
        out: dict[Any, Any] = {}
        for key, spec in value.items():
            if not isinstance(key, str) or not all(part for part in key.split(".")):
                raise custom_error(
                    f"config_schema key {key!r} is not a config key.",
                    "Use a key such as lr or optimizer.momentum (dots reach nested values).",
                )
            out[key] = {"type": spec} if isinstance(spec, str) else spec
        return out

    @model_validator(mode="after")
    def _entrypoint_rule(self) -> Stage:
        if self.entrypoint is None:
            return self
        if self.runtime != "rust":
            raise custom_error(
                f"entrypoint is only for rust stages; stage {self.name} has runtime {self.runtime}.",
                "Remove entrypoint: (python stages run modules/<stage>.py), or set runtime: rust.",
                sub=".entrypoint",
            )
        path = PurePosixPath(self.entrypoint)
        if (
            "\\" in self.entrypoint
            or path.is_absolute()
            or len(path.parts) < 2
            or path.parts[0] != "entrypoints"
            or any(part in ("..", ".") for part in path.parts)
        ):
            raise custom_error(
                f"entrypoint {self.entrypoint!r} must be a relative path under entrypoints/ without '..'.",
                f"Use e.g. entrypoint: entrypoints/{self.name} (or leave it out: that is the default).",
                sub=".entrypoint",
            )
        return self

    @property
    def module_path(self) -> str:
        """Source file of the stage, relative to the workspace root."""
        return f"modules/{self.name}.{'rs' if self.runtime == 'rust' else 'py'}"

    @property
    def binary_path(self) -> str | None:
        """Where a rust stage's compiled binary goes (None for python)."""
        if self.runtime != "rust":
            return None
        return self.entrypoint or f"entrypoints/{self.name}"


class Pipeline(BaseModel):
    """A parsed pipeline document."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="pipeline", description="Pipeline name; defaults to the file stem")
    description: str = Field(default="", description="Free text")
    stages: list[Stage] = Field(min_length=1, description="Stages, in declaration order")
    _source: str = PrivateAttr(default="pipeline.yaml")

    @field_validator("name", mode="after")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        try:
            return _check_pipeline_name(value)
        except InvalidInput as exc:
            raise custom_error(exc.message, exc.fix) from None

    @model_validator(mode="after")
    def _unique_and_inferred(self) -> Pipeline:
        first: dict[str, int] = {}
        issues = []
        for index, stage in enumerate(self.stages):
            if stage.name in first:
                issues.append(
                    Issue(
                        location=f"stages[{index}].name",
                        message=f"stage name {stage.name!r} is already used by stages[{first[stage.name]}].",
                        fix="Give every stage a unique name (it names modules/<name>.py and"
                        " configs/<name>.yaml).",
                    )
                )
            first.setdefault(stage.name, index)
        if issues:
            raise custom_error("duplicate stage names", issues=issues)
        # Untyped inputs inherit the upstream output's type, so the run sees the real format.
        for stage in self.stages:
            for signal in stage.inputs.values():
                if signal.type is None and signal.from_stage in first and signal.signal is not None:
                    upstream = self.stages[first[signal.from_stage]].outputs.get(signal.signal)
                    if upstream is not None:
                        signal.type = upstream.type
                        signal.format = signal.format or upstream.type
        return self

    # --- lookup -------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        """The file (or label) the pipeline was parsed from."""
        return self._source

    @property
    def stage_names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def index(self, name: str) -> int:
        """Position of a stage in ``stages`` (for locations like ``stages[2]``)."""
        for position, stage in enumerate(self.stages):
            if stage.name == name:
                return position
        raise self._unknown_stage(name)

    def stage(self, name: str) -> Stage:
        return self.stages[self.index(name)]

    def _unknown_stage(self, name: object) -> NotFound:
        hint = did_you_mean(name, self.stage_names) if isinstance(name, str) else ""
        return NotFound(
            f"Pipeline {self.name!r} has no stage {name!r}.{hint}",
            fix=f"Use one of its stages: {', '.join(self.stage_names)}.",
        )

    # --- graph --------------------------------------------------------------------------------
    def dependencies(self) -> dict[str, set[str]]:
        """Stage → the stages it reads from (``from_stage``). Edges to undeclared stages are left out
        (``validate_pipeline`` reports them); a self reference is kept."""
        known = set(self.stage_names)
        return {
            stage.name: {
                s.from_stage for s in stage.inputs.values() if s.from_stage is not None
            }.intersection(known)
            for stage in self.stages
        }

    def find_cycles(self) -> list[list[str]]:
        """Every cycle of two or more stages, each as a path in data-flow order ``[a, b, a]``
        (b reads from a). Cycles sharing no stage are all reported; a self reference is not a
        cycle here (``validate_pipeline`` reports it separately)."""
        return dag.find_cycles(self.dependencies(), self.stage_names)

    def topological_order(self, stages: list[str] | None = None) -> list[str]:
        """Stages (all, or the given ones) so that every stage comes after the stages it reads from;
        ties keep declaration order. Raises InvalidInput when the stages form a cycle."""
        requested = self._requested(stages)
        deps = self.dependencies()
        cycles = self.find_cycles()
        selfs = [name for name, ds in deps.items() if name in ds]
        if cycles or selfs:
            shown = [" -> ".join(c) for c in cycles] + [f"{s} -> {s}" for s in selfs]
            raise InvalidInput(
                f"Pipeline {self.name!r} has a cycle: {'; '.join(shown)}.",
                fix="Remove one from_stage in each cycle so data flows one way (validate_pipeline"
                " lists them).",
            )
        full = dag.topological(deps, self.stage_names)
        wanted = set(requested)
        return [name for name in full if name in wanted]

    def closure(
        self, stages: list[str], *, direction: Literal["upstream", "downstream"] = "upstream"
    ) -> set[str]:
        """The given stages plus everything they (transitively) read from, or that reads from them."""
        edges = self.dependencies()
        if direction == "downstream":
            reverse: dict[str, set[str]] = {name: set() for name in edges}
            for name, ups in edges.items():
                for up in ups:
                    reverse[up].add(name)
            edges = reverse
        seen = set(self._requested(stages))
        todo = list(seen)
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def _requested(self, stages: list[str] | None) -> list[str]:
        if stages is None:
            return self.stage_names
        if isinstance(stages, str) or not isinstance(stages, list):
            raise InvalidInput(
                f"stages must be a list of stage names, got {stages!r}.",
                fix=f'Pass e.g. ["{self.stage_names[0]}"].',
            )
        seen: set[str] = set()
        for name in stages:
            if name not in self.stage_names:
                raise self._unknown_stage(name)
            if name in seen:
                raise InvalidInput(f"Stage {name!r} is requested twice.", fix="List each stage once.")
            seen.add(name)
        return list(stages)


# --- pydantic errors → issues ---------------------------------------------------------------------
def _keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


# Keys allowed at each level of a pipeline document (for did-you-mean on unknown keys).
DOCUMENT_FIELDS: dict[str, list[str]] = {
    "": _keys(Pipeline),
    "stage": _keys(Stage),
    "inputs": [k for k in _keys(InputSignal) if k != "name"],
    "outputs": [k for k in _keys(OutputSignal) if k != "name"],
    "config_schema": _keys(ConfigField),
    "arrays": _keys(TensorArray),
    "tensor": _keys(TensorSchema),
    "tabular": _keys(TabularSchema),
    "json": _keys(JsonSchema),
    "file": _keys(FileSchema),
}


def validation_issues(exc: ValidationError, *, prefix: str = "", schema_root: bool = False) -> list[Issue]:
    """Pydantic errors of a pipeline document (or, with ``schema_root``, of one schema) as issues."""
    return pydantic_issues(exc, fields=DOCUMENT_FIELDS, prefix=prefix, schema_root=schema_root)


# --- loading --------------------------------------------------------------------------------------
def parse_pipeline(text: str, source: str) -> Pipeline:
    """Parse pipeline YAML text. ``source`` names the file (for messages; its stem is the default name).

    Raises InvalidInput listing every problem, each with its location and fix."""
    data = parse_yaml(text, source)
    if data is None:
        raise InvalidInput(
            f"{source} is empty.",
            fix="Add `stages:` with at least one stage (skill §2).",
            details={"issues": [Issue(location=source, message="empty document").model_dump()]},
        )
    if not isinstance(data, dict):
        raise issues_error(
            f"{source} is not a valid pipeline.",
            [
                Issue(
                    location=source,
                    message=f"the document is a {type(data).__name__}, not a mapping.",
                    fix="Start the file with `stages:` (a list of stages), optionally `name:` and"
                    " `description:`.",
                )
            ],
        )
    if "name" not in data:
        data = {**data, "name": PurePosixPath(source.replace("\\", "/")).stem or "pipeline"}
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        raise issues_error(f"{source} is not a valid pipeline.", validation_issues(exc)) from None
    pipeline._source = source
    return pipeline


def pipeline_path(root: Path, name: str | None = None) -> Path:
    """``root/pipeline.yaml``, or ``root/pipelines/<name>.yaml`` for a named pipeline."""
    if name is None:
        return Path(root) / "pipeline.yaml"
    return Path(root) / "pipelines" / f"{_check_pipeline_name(name)}.yaml"


def load_pipeline(root: Path, name: str | None = None) -> Pipeline:
    """Load ``pipeline.yaml`` (name None) or ``pipelines/<name>.yaml`` from a workspace root."""
    path = pipeline_path(root, name)
    relative = path.relative_to(root).as_posix()
    if not path.is_file():
        if name is None:
            raise NotFound(
                f"No pipeline file: {path} does not exist.",
                fix="Create pipeline.yaml in the workspace with `stages:` (see skill §2).",
            )
        available = sorted(p.stem for p in (Path(root) / "pipelines").glob("*.yaml"))
        hint = did_you_mean(name, available)
        raise NotFound(
            f"No pipeline {name!r}: {path} does not exist.{hint}",
            fix=(
                f"Use one of: {', '.join(available)}, or create {relative}."
                if available
                else f"Create {relative}, or leave the pipeline name out to use pipeline.yaml."
            ),
        )
    inside(root, path, what="pipeline file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{relative} is not UTF-8 text.", fix="Save the file as UTF-8.") from None
    return parse_pipeline(text, relative)


def signal_location(
    pipeline: Pipeline, stage: str, direction: Literal["inputs", "outputs"], signal: str
) -> str:
    return f"stages[{pipeline.index(stage)}].{direction}.{signal}"
