"""Input resolution: where each input of a stage run comes from.

Order, per input:
1. ``inputs_override[input]``: a stage run id (``"stage-…"`` or ``{"from_run": id, "signal": name}``),
   a registered source name, or a path (absolute, or relative to the project) / ``file://`` URI;
2. ``from_stage`` within the same pipeline run (the upstream stage run of this request);
3. ``from_stage`` otherwise: the latest completed run of that stage in the workspace that was not
   finalized as a miss;
4. ``dataset``: the source registry (``sources`` table of the project partition).

Every choice is returned as a lineage entry (kind, run id or source, location, and for upstream
stages the latest run of that stage) that is stored on the run and shown to the pre-run review.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish import names
from goldfish.errors import InvalidInput, NotFound
from goldfish.issues import Issue
from goldfish.names import did_you_mean
from goldfish.pipelines.model import InputSignal, Pipeline
from goldfish.runs.state import ws_partition

if TYPE_CHECKING:
    from goldfish.project import Project

FILE_EXTENSIONS = {"npy": ".npy", "npz": ".npz", "csv": ".csv", "json": ".json"}


def output_candidates(outputs_dir: Path, name: str, type_: str) -> list[Path]:
    """Where output ``name`` of type ``type_`` may be written, the contract's form first."""
    ext = FILE_EXTENSIONS.get(type_)
    found = [outputs_dir / f"{name}{ext}"] if ext else []
    return [*found, outputs_dir / name]


def completed_output(run: Mapping[str, Any], signal: str) -> dict[str, Any] | None:
    out = (run.get("outputs") or {}).get(signal)
    return out if out and out.get("exists") and out.get("location") else None


def latest_stage_runs(project: Project, workspace: str, stage: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(latest usable completed run, latest run of any state) of ``stage`` in ``workspace``."""
    from goldfish.records.view import workspace_view  # the history index: no scan of every run

    view = workspace_view(project, workspace)
    with view.index.lock:
        usable_id, latest_id = view.index.latest_runs(stage)
    return (view.run(usable_id) if usable_id else None), (view.run(str(latest_id)) if latest_id else None)


def source_location(project: Project, row: Mapping[str, Any]) -> str:
    """A source's location as this machine sees it: absolute paths and URIs kept, relative paths
    under the local object store."""
    loc = str(row.get("location") or row.get("gcs_location") or "")
    if loc.startswith("file://"):
        return loc[len("file://") :]
    if "://" in loc or loc.startswith("/"):
        return loc
    return str(project.objects_dir / loc)


def _run_ref(value: Any) -> tuple[str, str | None] | None:
    if isinstance(value, str) and names.STAGE_RUN_RE.fullmatch(value):
        return value, None
    if isinstance(value, dict):
        run_id = value.get("from_run", value.get("run_id"))
        return (run_id, value.get("signal")) if isinstance(run_id, str) else None
    return None


def resolve_override(
    project: Project, stage: str, input_name: str, spec: InputSignal | None, value: Any
) -> dict[str, Any]:
    """One ``inputs_override`` entry → lineage entry; InvalidInput naming the problem and the fix."""
    where = f"inputs_override.{stage}.{input_name}"
    ref = _run_ref(value)
    if isinstance(value, dict):
        extra = set(value) - {"from_run", "run_id", "signal"}
        if ref is None or extra:
            raise InvalidInput(
                f"{where} is {value!r}; an object override needs from_run (a stage run id) and optionally signal.",
                fix=f'Use {{"from_run": "stage-1a2b3c4d", "signal": "{input_name}"}}, a source name, or a path.',
            )
    if ref is not None:
        run_id, signal = ref
        names.stage_run_id(run_id)
        entry = project.store.table("run_index").get_doc(run_id)
        if entry is None:
            raise InvalidInput(
                f"{where}: run {run_id} does not exist.",
                fix="Use a stage run id from list_history() or inspect_run(), or a source name or path.",
            )
        run = project.store.table("runs", ws_partition(entry["workspace"])).get_doc(run_id) or {}
        wanted = signal or (spec.signal if spec is not None and spec.signal else input_name)
        if run.get("state") != "completed":
            raise InvalidInput(
                f"{where}: run {run_id} is {run.get('state')}, not completed, so its outputs cannot be used.",
                fix="Pick a completed run of that stage (list_history shows them).",
            )
        out = completed_output(run, wanted)
        if out is None:
            have = sorted(k for k, v in (run.get("outputs") or {}).items() if v.get("exists"))
            raise InvalidInput(
                f"{where}: run {run_id} ({run.get('stage')}) has no output {wanted!r}.{did_you_mean(wanted, have)}",
                fix=f'Pass {{"from_run": "{run_id}", "signal": <one of {", ".join(have) or "none"}>}}.',
            )
        return {
            "kind": "override_run", "run_id": run_id, "signal": wanted, "source": None,
            "location": out["location"], "type": out.get("type"), "format": out.get("format"),
        }
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            f"{where} must be a stage run id, a source name or a path, got {value!r}.",
            fix='Use e.g. "stage-1a2b3c4d", "sales_v1" or "/data/features.npy".',
        )
    sources = project.store.table("sources")
    row = sources.get_doc(value)
    if row is not None:
        return {
            "kind": "override_source", "run_id": None, "signal": None, "source": value,
            "location": source_location(project, row), "type": row.get("format"), "format": row.get("format"),
            "generation": row.get("gcs_generation"),
        }
    looks_like_path = "/" in value or value.startswith((".", "~")) or "://" in value
    if not looks_like_path:
        raise InvalidInput(
            f"{where}: {value!r} is not a stage run id, a registered source or a path."
            f"{did_you_mean(value, sources.ids())}",
            fix="Use a run id like stage-1a2b3c4d, a name from manage_sources(action='list'), or a path with '/'.",
        )
    if value.startswith("file://"):
        value = value[len("file://") :]
    if "://" in value:
        if not value.startswith("gs://"):
            raise InvalidInput(
                f"{where}: {value} uses a URI scheme Goldfish cannot stage (only gs:// and local paths).",
                fix="Copy the data to a local path or to a gs:// bucket and pass that.",
            )
        location = value
    else:
        path = Path(value).expanduser()
        path = path if path.is_absolute() else project.root / path
        if not path.exists():
            raise InvalidInput(
                f"{where}: path {path} does not exist.",
                fix="Pass an existing file or directory (absolute, or relative to the project root).",
            )
        location = str(path.resolve())
    fmt = spec.format if spec is not None else None
    return {
        "kind": "override_path", "run_id": None, "signal": None, "source": None,
        "location": location, "type": spec.type if spec is not None else None, "format": fmt,
    }


def resolve_inputs(
    project: Project,
    workspace: str,
    pipeline: Pipeline,
    stage: str,
    *,
    in_run: Mapping[str, str],
    overrides: Mapping[str, Any],
    check_only: bool = False,
) -> tuple[dict[str, dict[str, Any]], list[Issue]]:
    """Resolve every input of ``stage``; returns lineage entries and the problems found.

    ``in_run`` maps the stages of this pipeline run to their stage run ids. With ``check_only``
    (at run() time, before upstream stages of the same request have run) an in-run upstream is
    accepted without looking at its outputs.
    """
    spec_stage = pipeline.stage(stage)
    resolved: dict[str, dict[str, Any]] = {}
    issues: list[Issue] = []
    runs = project.store.table("runs", ws_partition(workspace))
    for name, spec in spec_stage.inputs.items():
        where = f"stages[{pipeline.index(stage)}].inputs.{name}"
        if name in overrides:
            try:
                resolved[name] = resolve_override(project, stage, name, spec, overrides[name])
            except InvalidInput as exc:
                issues.append(Issue(location=f"inputs_override.{stage}.{name}", message=exc.message, fix=exc.fix))
            continue
        if spec.from_stage is not None:
            signal = spec.signal or name
            if spec.from_stage in in_run:
                run_id = in_run[spec.from_stage]
                if check_only:
                    resolved[name] = {"kind": "stage", "run_id": run_id, "signal": signal, "source": None,
                                      "location": None, "type": spec.type, "format": spec.format}
                    continue
                run = runs.get_doc(run_id) or {}
                out = completed_output(run, signal) if run.get("state") == "completed" else None
                if out is None:
                    issues.append(Issue(
                        location=where,
                        message=f"upstream run {run_id} ({spec.from_stage}) is {run.get('state')} and has no"
                                f" output {signal!r} to read.",
                        fix=f"Check {spec.from_stage} writes {signal} (inspect_run('{run_id}')).",
                    ))
                    continue
                resolved[name] = {"kind": "stage", "run_id": run_id, "signal": signal, "source": None,
                                  "location": out["location"], "type": out.get("type"), "format": spec.format,
                                  "latest_run_id": run_id}
                continue
            usable, latest = latest_stage_runs(project, workspace, spec.from_stage)
            out = completed_output(usable, signal) if usable else None
            if usable is None or out is None:
                why = (
                    f"run {usable['id']} of it has no output {signal!r}" if usable
                    else f"it has no completed run in workspace {workspace} (not finalized as a miss)"
                )
                issues.append(Issue(
                    location=where,
                    message=f"input {name} reads {spec.from_stage}.{signal}, but {spec.from_stage} is not in"
                            f" this run and {why}.",
                    fix=f"Add '{spec.from_stage}' to stages (it runs first), or pass"
                        f" inputs_override={{'{name}': '<stage run id, source or path>'}}.",
                ))
                continue
            resolved[name] = {"kind": "stage", "run_id": usable["id"], "signal": signal, "source": None,
                              "location": out["location"], "type": out.get("type"), "format": spec.format,
                              "latest_run_id": latest["id"] if latest else None,
                              "latest_state": latest.get("state") if latest else None}
            continue
        if spec.dataset is not None:
            try:
                row = project.sources.resolve_for_input(spec.dataset)
            except NotFound as exc:
                issues.append(Issue(location=f"{where}.dataset", message=exc.message, fix=exc.fix))
                continue
            location = source_location(project, row)
            resolved[name] = {"kind": "source", "run_id": None, "signal": None, "source": spec.dataset,
                              "location": location, "type": spec.type, "format": spec.format or row.get("format"),
                              "generation": row.get("gcs_generation")}
            continue
        issues.append(Issue(
            location=where,
            message=f"input {name} has neither from_stage nor dataset, and this run does not override it.",
            fix=f"Add from_stage or dataset to it in the pipeline, or pass inputs_override={{'{name}': ...}}.",
        ))
    return resolved, issues
