"""Validate a parsed pipeline against the project before a run (dry run and SVS preflight).

Checks that concern the document (the stage graph, upstream references, types and contracts across
edges) cover every stage; checks that concern a run (modules, stage configs, placeholders, datasets,
profiles, inputs without a source) cover the requested stages. Everything is collected: one
report holds every error and warning with its location and fix. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from goldfish.errors import GoldfishError, InvalidInput
from goldfish.fsutil import inside
from goldfish.issues import Issue, issues_error
from goldfish.sources.metadata import validate_source_metadata
from goldfish.names import did_you_mean
from goldfish.pipelines.model import InputSignal, OutputSignal, Pipeline, Stage, kinds_for_type, validation_issues
from goldfish.pipelines.profiles import (
    Backend,
    Profile,
    builtin_profiles,
    check_profile,
    default_profile,
    resolve_profiles,
)
from goldfish.pipelines.schema_compat import compare_schemas, source_contract
from goldfish.pipelines.signal_schema import Contract, contract_dict, iter_placeholders, parse_contract
from goldfish.pipelines.stage_config import (
    StageConfigCheck,
    check_stage_config,
    normalize_overrides,
    resolve_placeholders,
)

__all__ = ["Issue", "ValidationReport", "validate_pipeline"]

SourceSchemas = Callable[[str], dict[str, Any] | None]


class ValidationReport(BaseModel):
    """Every problem found, split into errors (block a run) and warnings (recorded)."""

    errors: list[Issue] = Field(default_factory=list, description="Problems that block a run")
    warnings: list[Issue] = Field(
        default_factory=list, description="Problems worth knowing; the run may go on"
    )
    stages: list[str] = Field(
        default_factory=list,
        description="Requested stages that exist, in run order (topological when acyclic)",
    )

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self, what: str = "The pipeline") -> None:
        """Raise InvalidInput listing every error (with its location and fix) if there is any."""
        if self.errors:
            raise issues_error(f"{what} failed validation.", self.errors)


class _Unresolved:
    """Marker: a contract whose placeholders could not be filled in (already reported)."""


_UNRESOLVED = _Unresolved()


def validate_pipeline(
    pipeline: Pipeline,
    root: Path,
    *,
    stages: list[str] | None = None,
    config_override: dict[str, Any] | None = None,
    overridden_inputs: set[str] | dict[str, set[str]] | None = None,
    backend: Backend = "local",
    profile_overrides: dict[str, dict[str, Any]] | None = None,
    zones: list[str] | None = None,
    source_schemas: SourceSchemas | None = None,
) -> ValidationReport:
    """Validate ``pipeline`` (read from workspace ``root``) for a run of ``stages`` (None: all).

    ``overridden_inputs``: input names the run supplies through ``inputs_override`` (a set for every
    requested stage, or per stage); they need no ``from_stage``/``dataset`` and skip the dataset
    checks. ``source_schemas(name)`` returns a registered source's metadata schema, or None when no
    such source exists; without it datasets are not checked."""
    return _Validator(pipeline, Path(root), backend, source_schemas).run(
        stages, config_override, overridden_inputs, profile_overrides, zones
    )


class _Validator:
    def __init__(
        self, pipeline: Pipeline, root: Path, backend: Backend, source_schemas: SourceSchemas | None
    ):
        self.p = pipeline
        self.root = root
        self.backend = backend
        self.source_schemas = source_schemas
        self.report = ValidationReport()
        self.overrides: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, StageConfigCheck] = {}
        self.contracts: dict[tuple[str, str, str], Contract | _Unresolved | None] = {}

    def error(self, location: str, message: str, fix: str | None) -> None:
        self.report.errors.append(Issue(location=location, message=message, fix=fix))

    def warn(self, location: str, message: str, fix: str | None) -> None:
        self.report.warnings.append(Issue(location=location, message=message, fix=fix))

    def loc(self, stage: str) -> str:
        return f"stages[{self.p.index(stage)}]"

    # --- driver -------------------------------------------------------------------------------
    def run(
        self,
        stages: list[str] | None,
        config_override: Any,
        overridden_inputs: Any,
        profile_overrides: Any,
        zones: list[str] | None,
    ) -> ValidationReport:
        requested = self.requested(stages)
        acyclic = self.graph()
        self.report.stages = self.p.topological_order(requested) if acyclic else requested
        try:
            self.overrides = normalize_overrides(config_override, requested, all_stages=self.p.stage_names)
        except InvalidInput as exc:
            self.error("config_override", exc.message, exc.fix)
            self.overrides = {name: {} for name in requested}
        overridden = self.overridden(overridden_inputs, requested)
        try:
            profiles = resolve_profiles(profile_overrides, zones=zones)
        except InvalidInput as exc:
            issues = [Issue(**i) for i in exc.details.get("issues", [])]
            self.report.errors.extend(
                issues or [Issue(location="gce.profile_overrides", message=exc.message, fix=exc.fix)]
            )
            profiles = builtin_profiles()
        for name in requested:
            self.stage_checks(self.p.stage(name), overridden.get(name, set()), profiles)
        for name in requested:
            self.edge_contracts(self.p.stage(name))
        return self.report

    def requested(self, stages: Any) -> list[str]:
        if stages is None:
            return self.p.stage_names
        if isinstance(stages, str) or not isinstance(stages, list) or not stages:
            self.error(
                "stages",
                f"stages must be a non-empty list of stage names, got {stages!r}.",
                f'Pass e.g. stages=["{self.p.stage_names[0]}"], or leave it out to run every stage.',
            )
            return []
        out: list[str] = []
        for position, name in enumerate(stages):
            where = f"request.stages[{position}]"
            if name in out:
                self.error(where, f"stage {name!r} is requested twice.", "List each stage once.")
            elif name not in self.p.stage_names:
                hint = did_you_mean(name, self.p.stage_names) if isinstance(name, str) else ""
                self.error(
                    where,
                    f"pipeline {self.p.name!r} has no stage {name!r}.{hint}",
                    f"Use one of its stages: {', '.join(self.p.stage_names)}.",
                )
            else:
                out.append(name)
        return out

    def overridden(self, value: Any, requested: list[str]) -> dict[str, set[str]]:
        """Per requested stage, the input names the run overrides; unknown names are errors."""
        if value is None:
            return {}
        if isinstance(value, Mapping):
            per_stage: dict[str, set[str]] = {}
            for name, inputs in value.items():
                if name not in requested:
                    self.error(
                        f"inputs_override.{name}",
                        f"{name!r} is not a stage of this run." + did_you_mean(str(name), requested),
                        f"Key input overrides by the stages of this run: {', '.join(requested)}.",
                    )
                    continue
                declared = self.p.stage(name).inputs
                for unknown in sorted(set(inputs) - set(declared)):
                    self.error(
                        f"inputs_override.{name}.{unknown}",
                        f"stage {name} has no input {unknown!r}.{did_you_mean(unknown, declared)}",
                        f"Override one of its inputs: {', '.join(declared) or '(it has none)'}.",
                    )
                per_stage[name] = set(inputs) & set(declared)
            return per_stage
        names = {value} if isinstance(value, str) else set(value)
        everywhere = {i for s in requested for i in self.p.stage(s).inputs}
        for unknown in sorted(names - everywhere):
            self.error(
                f"inputs_override.{unknown}",
                f"no stage of this run has an input {unknown!r}.{did_you_mean(unknown, everywhere)}",
                f"Override one of: {', '.join(sorted(everywhere)) or '(no inputs)'}.",
            )
        return {s: names & set(self.p.stage(s).inputs) for s in requested}

    # --- graph: every stage --------------------------------------------------------------------
    def graph(self) -> bool:
        known = self.p.stage_names
        for stage in self.p.stages:
            for name, signal in stage.inputs.items():
                if signal.from_stage is None:
                    continue
                where = f"{self.loc(stage.name)}.inputs.{name}"
                if signal.from_stage == stage.name:
                    self.error(
                        f"{where}.from_stage",
                        f"stage {stage.name} reads its own output (from_stage:"
                        f" {stage.name}), a cycle: {stage.name} -> {stage.name}.",
                        "Read from an upstream stage, or split the stage in two.",
                    )
                    continue
                if signal.from_stage not in known:
                    self.error(
                        f"{where}.from_stage",
                        f"from_stage {signal.from_stage!r} is not a stage of this"
                        f" pipeline.{did_you_mean(signal.from_stage, known)}",
                        f"Use one of: {', '.join(s for s in known if s != stage.name)}.",
                    )
                    continue
                upstream = self.p.stage(signal.from_stage)
                output = upstream.outputs.get(signal.signal or name)
                if output is None:
                    self.unknown_signal(where, signal, upstream)
                elif signal.type is not None and signal.type != output.type:
                    self.error(
                        f"{where}.type",
                        f"input {name} has type {signal.type}, but"
                        f" {upstream.name}.{output.name} is {output.type}.",
                        f"Set type: {output.type} on the input (or leave type out to inherit it),"
                        " or change the upstream output's type.",
                    )
                elif (
                    output.contract is None
                    and signal.contract is not None  # else the edge check says it
                    and signal.contract.kind not in kinds_for_type(output.type)
                ):
                    self.error(
                        f"{where}.schema",
                        f"input {name} reads a {output.type} signal"
                        f" ({upstream.name}.{output.name}) but declares a {signal.contract.kind} schema.",
                        f"Use schema kind {' or '.join(kinds_for_type(output.type))} for a {output.type}"
                        " signal, or schema: null.",
                    )
        cycles = self.p.find_cycles()
        for cycle in cycles:
            first = self.p.stage(cycle[1])
            edge = next(n for n, s in first.inputs.items() if s.from_stage == cycle[0])
            self.error(
                self.loc(cycle[0]),
                f"stages form a cycle: {' -> '.join(cycle)}.",
                f"Remove one from_stage in the cycle so data flows one way"
                f" (e.g. {self.loc(first.name)}.inputs.{edge}.from_stage).",
            )
        return not cycles and all(name not in deps for name, deps in self.p.dependencies().items())

    def unknown_signal(self, where: str, signal: InputSignal, upstream: Stage) -> None:
        wanted = signal.signal or signal.name
        available = list(upstream.outputs)
        shown = ", ".join(available) if available else "it has no outputs"
        aliased = " (signal defaults to the input name)" if wanted == signal.name else ""
        self.error(
            f"{where}.signal",
            f"stage {upstream.name} has no output {wanted!r}{aliased}."
            f"{did_you_mean(wanted, available)} Available outputs: {shown}.",
            f"Set signal: <one of {upstream.name}'s outputs> to read it under this input name,"
            f" or add output {wanted} to stage {upstream.name}.",
        )

    # --- per requested stage -------------------------------------------------------------------
    def stage_checks(self, stage: Stage, overridden: set[str], profiles: dict[str, Profile]) -> None:
        self.module(stage)
        check = self.config(stage.name)
        self.report.errors.extend(check.errors)
        self.report.warnings.extend(check.warnings)
        if check.config is not None:
            self.profile(stage.name, check, profiles)
        for direction, signals in (("inputs", stage.inputs), ("outputs", stage.outputs)):
            for name, signal in signals.items():
                where = f"{self.loc(stage.name)}.{direction}.{name}"
                if signal.contract is None:
                    self.warn(
                        f"{where}.schema",
                        f"no contract for {direction[:-1]} {name} of stage {stage.name}"
                        " (schema: null): its data is not checked.",
                        "Declare a schema (kind: tensor/tabular/json/file) once the data's shape is known.",
                    )
                self.contract(stage.name, direction, name, report=True)
        for name, signal in stage.inputs.items():
            if name in overridden:
                continue
            where = f"{self.loc(stage.name)}.inputs.{name}"
            if signal.from_stage is None and signal.dataset is None:
                self.error(
                    where,
                    f"input {name} has neither from_stage nor dataset, and this run does not override it.",
                    f"Add from_stage: <stage> (an upstream output) or dataset: <source>, or pass"
                    f" inputs_override={{'{name}': ...}} to run().",
                )
            elif signal.dataset is not None:
                self.dataset(stage.name, where, signal)
        for name, out in stage.outputs.items():
            if out.artifact:
                self.artifact(stage.name, name, out)

    def artifact(self, stage: str, name: str, out: OutputSignal) -> None:
        """Artifact outputs are registered as sources when the stage completes; say now if that
        will not work (the run itself never fails for it)."""
        where = f"{self.loc(stage)}.outputs.{name}"
        later = "promote_artifact it after the run, or fix pipeline.yaml"
        if out.type == "directory":
            self.warn(where, f"artifact output {name} is a directory, and directory sources are rejected.",
                      "Make it a file type (npy, npz, csv or file), or drop artifact: true.")
            return
        if out.metadata is None:
            self.warn(f"{where}.metadata", f"artifact output {name} has no metadata:, so it will not be"
                      f" registered as a source when {stage} completes.",
                      f"Add a metadata: block (Data Source Metadata rules, size_bytes may be null), or {later}.")
            return
        try:
            validate_source_metadata(out.metadata)
        except InvalidInput as exc:
            self.warn(f"{where}.metadata", f"metadata of artifact output {name} is invalid, so it will not be"
                      f" registered as a source: {exc.message}", f"Correct the fields listed, or {later}.")
            return
        fmt = out.metadata["source"]["format"]
        if fmt in ("npy", "npz", "csv") and fmt != out.format:
            self.warn(f"{where}.metadata.source.format", f"is {fmt!r} but output {name} is {out.format!r}, so it"
                      " will not be registered as a source.", f"Use format {out.format!r} or \"file\".")

    def module(self, stage: Stage) -> None:
        path = self.root / stage.module_path
        if path.is_file():
            try:
                inside(self.root, path, what="stage module")
            except InvalidInput as exc:
                self.error(stage.module_path, exc.message, exc.fix)
        else:
            other = "py" if stage.runtime == "rust" else "rs"
            alt = f"modules/{stage.name}.{other}"
            fix = (
                f"{alt} exists: set runtime: {'python' if other == 'py' else 'rust'} on stage {stage.name}."
                if (self.root / alt).is_file()
                else f"Create {stage.module_path} (the {stage.runtime} code of stage {stage.name})."
            )
            self.error(
                stage.module_path,
                f"stage {stage.name} has no module: {stage.module_path} does not exist.",
                fix,
            )
        binary = stage.binary_path
        if binary is not None:
            try:
                inside(self.root, self.root / binary, what="entrypoint")
            except InvalidInput as exc:
                self.error(f"{self.loc(stage.name)}.entrypoint", exc.message, exc.fix)

    def config(self, stage: str) -> StageConfigCheck:
        if stage not in self.configs:
            self.configs[stage] = check_stage_config(self.p, stage, self.root, self.overrides.get(stage))
        return self.configs[stage]

    def profile(self, stage: str, check: StageConfigCheck, profiles: dict[str, Profile]) -> None:
        cfg = check.config
        assert cfg is not None
        compute = cfg.values.get("compute")
        name = compute.get("profile") if isinstance(compute, dict) else None
        if name is None:
            if self.backend == "gce":
                self.warn(
                    f"configs/{stage}.yaml:compute.profile",
                    f"stage {stage} sets no compute.profile; the gce backend will use"
                    f" {default_profile('gce')}.",
                    f"Set compute.profile in configs/{stage}.yaml (e.g. cpu-small, h100-spot).",
                )
            return
        if not isinstance(name, str):
            return  # reported by the stage config check
        issue = check_profile(name, self.backend, profiles)
        if issue is not None:
            where = (
                f"{cfg.origin('compute.profile')}:compute.profile"
                if issue.location == "compute.profile"
                else issue.location
            )
            self.report.errors.append(issue.model_copy(update={"location": where}))

    # --- contracts ------------------------------------------------------------------------------
    def contract(
        self, stage: str, direction: str, name: str, *, report: bool
    ) -> Contract | _Unresolved | None:
        """The signal's contract with placeholders filled from the stage's merged config."""
        key = (stage, direction, name)
        if key in self.contracts:
            return self.contracts[key]
        st = self.p.stage(stage)
        signal: InputSignal | OutputSignal = st.inputs[name] if direction == "inputs" else st.outputs[name]
        where = f"{self.loc(stage)}.{direction}.{name}.schema"
        result: Contract | _Unresolved | None = signal.contract
        holes = list(iter_placeholders(contract_dict(signal.contract)))
        if holes:
            check = self.config(stage)
            if check.config is None:
                result = _UNRESOLVED
            else:
                values = check.config.values
                missing = [(path, param) for path, param in holes if param not in values]
                for path, param in missing:
                    if report:
                        file = check.config.config_file or f"configs/{stage}.yaml"
                        self.error(
                            f"{where}.{path}",
                            f'"{{{param}}}" references missing config param {param!r}:'
                            f" {file} (and the stage's defaults) have no top-level key {param}.",
                            f"Add {param}: <value> at the top level of {file} or of the stage's defaults.",
                        )
                if missing:
                    result = _UNRESOLVED
                else:
                    try:
                        result = parse_contract(resolve_placeholders(contract_dict(signal.contract), values))
                    except ValidationError as exc:
                        if report:
                            for issue in validation_issues(exc, prefix=where, schema_root=True):
                                self.report.errors.append(
                                    issue.model_copy(
                                        update={
                                            "message": issue.message + " (after filling in config params)"
                                        }
                                    )
                                )
                        result = _UNRESOLVED
        self.contracts[key] = result
        return result

    def edge_contracts(self, stage: Stage) -> None:
        for name, signal in stage.inputs.items():
            upstream_name = signal.from_stage
            if (
                upstream_name is None
                or upstream_name == stage.name
                or upstream_name not in self.p.stage_names
            ):
                continue
            upstream = self.p.stage(upstream_name)
            output = upstream.outputs.get(signal.signal or name)
            if output is None:
                continue
            wanted = self.contract(stage.name, "inputs", name, report=True)
            produced = self.contract(upstream_name, "outputs", output.name, report=False)
            where = f"{self.loc(stage.name)}.inputs.{name}.schema"
            other = f"{self.loc(upstream_name)}.outputs.{output.name}.schema"
            if (
                isinstance(produced, _Unresolved)
                and not isinstance(wanted, _Unresolved)
                and upstream_name not in self.report.stages
            ):  # a requested upstream reports its own errors
                self.warn(
                    where,
                    f"the contract of {upstream_name}.{output.name} could not be resolved (its stage"
                    " config is missing a param or unreadable), so it was not compared with this input.",
                    f"Validate stage {upstream_name} too to see why.",
                )
                continue
            if isinstance(produced, _Unresolved) or isinstance(wanted, _Unresolved):
                continue
            problems = compare_schemas(produced, wanted)
            if problems:
                self.error(
                    where,
                    f"schema does not match the upstream output {upstream_name}.{output.name}: "
                    + "; ".join(problems)
                    + ".",
                    f"Make this schema agree with {other} (null or -1 dimensions match any size),"
                    " or use schema: null on the input.",
                )

    def dataset(self, stage: str, where: str, signal: InputSignal) -> None:
        if self.source_schemas is None or signal.dataset is None:
            return
        try:
            metadata = self.source_schemas(signal.dataset)
        except GoldfishError as exc:
            self.error(f"{where}.dataset", f"could not read source {signal.dataset}: {exc.message}", exc.fix)
            return
        if metadata is None:
            self.error(
                f"{where}.dataset",
                f"dataset {signal.dataset!r} is not a registered source.",
                f"register_source first (register_source(name='{signal.dataset}', ..., metadata=...)),"
                " or fix the name (manage_sources(action='list') lists them).",
            )
            return
        wanted = self.contract(stage, "inputs", signal.name, report=True)
        if wanted is None or isinstance(wanted, _Unresolved):
            return
        if not metadata:
            self.warn(
                f"{where}.schema",
                f"source {signal.dataset} has no metadata schema, so this input's"
                " contract was not compared with it.",
                "Add metadata to the source (manage_sources(action='update', ..., metadata=...)).",
            )
            return
        try:
            source = source_contract(metadata)
        except (ValidationError, ValueError) as exc:
            first = exc.errors(include_url=False)[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            self.warn(
                f"{where}.schema",
                f"the metadata schema of source {signal.dataset} could not be read"
                f" ({first}), so this input's contract was not compared with it.",
                "Fix the source metadata with manage_sources(action='update', ..., metadata=...).",
            )
            return
        problems = compare_schemas(source, wanted)
        if problems:
            self.error(
                f"{where}.schema",
                f"schema does not match registered source {signal.dataset}: " + "; ".join(problems) + ".",
                f"Make the input schema agree with the metadata of {signal.dataset}"
                " (manage_sources(action='get', name=...) shows it), or use schema: null.",
            )
