"""Stage outputs as sources: ``promote_artifact`` and the auto-registration of ``artifact: true``
outputs when their stage completes.

Nothing is copied: outputs of a completed run are read-only in its run dir, and the source row
points at the file there (with its sha256, so a later change is still noticed).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish import names
from goldfish.errors import GoldfishError, InvalidInput, NotFound
from goldfish.fielderrors import FieldErrors
from goldfish.sources.lineage import SOURCE_KINDS, ws_partition
from goldfish.sources.locations import DIRECTORY_REJECTED
from goldfish.sources.models import ArtifactLineage, PromoteResult
from goldfish.sources.service import (
    TABLE,
    Checked,
    check_field,
    audit_details,
    duplicate,
    meta_size,
    now_iso,
    raise_problems,
    validate_into,
)

if TYPE_CHECKING:
    from goldfish.pipelines.model import Stage
    from goldfish.sources.service import Sources
    from goldfish.store import Transaction

# Formats whose bytes an output of another format cannot hold (an npy output is not a csv source).
_STRICT_FORMATS = ("npy", "npz", "csv")
MAX_NAME = 64


def _run(sources: Sources, run_id: str) -> tuple[str, dict[str, Any]]:
    entry = sources.project.store.table("run_index").get_doc(run_id)
    run = None
    if entry is not None and entry.get("workspace"):
        run = sources.project.store.table("runs", ws_partition(entry["workspace"])).get_doc(run_id)
    if entry is None or run is None:
        raise NotFound(f"Stage run {run_id} not found.",
                       fix="Use a stage run id from run() or list_history() (stage-xxxxxxxx).")
    return entry["workspace"], run


def output_file(sources: Sources, run: dict[str, Any], output_name: str) -> Path | str:
    """The file of a declared, existing output of a completed run, confined to its outputs dir:
    a local path, or a ``gs://`` URI under ``runs/<run id>/outputs/`` for a run on a cloud backend."""
    run_id = run["id"]
    outputs = run.get("outputs") or {}
    if output_name not in outputs:
        declared = sorted(outputs)
        raise InvalidInput(
            f"Run {run_id} ({run.get('stage')}) declares no output {output_name!r}."
            f"{names.did_you_mean(output_name, declared)}",
            fix=f"Use one of its outputs: {', '.join(declared) or 'none (the stage declares no outputs)'}.",
        )
    out = outputs[output_name]
    root = sources.project.runs_dir / run_id / "outputs"
    raw = out.get("location")
    if not out.get("exists") or not raw:
        raise InvalidInput(f"Run {run_id} did not write output {output_name!r}.",
                           fix="Promote an output the run wrote (inspect_run shows them), or run the stage again.")
    if str(raw).startswith("gs://"):
        return _remote_output(run_id, output_name, str(raw))
    path = Path(raw)
    lexical = Path(os.path.normpath(path))
    root_real = root.resolve()
    if not path.is_absolute() or (lexical != root and root not in lexical.parents):
        raise InvalidInput(f"Output {output_name!r} of {run_id} is recorded at {raw}, outside the run's outputs "
                           f"directory {root}.", fix="Promote only outputs the run wrote into its outputs directory.")
    if path.is_symlink():
        raise InvalidInput(f"Output {output_name!r} of {run_id} is a symbolic link ({raw}); a source must be a file "
                           "the run wrote.", fix="Write the data itself into the output, not a link to it.")
    real = path.resolve()
    if real != root_real and root_real not in real.parents:
        raise InvalidInput(f"Output {output_name!r} of {run_id} resolves to {real}, outside the run's outputs "
                           f"directory.", fix="Promote only outputs the run wrote into its outputs directory.")
    if not path.exists():
        raise InvalidInput(f"Output {output_name!r} of {run_id} is gone from {raw}.",
                           fix="Run the stage again to recreate it.")
    if path.is_dir():
        raise InvalidInput(f"Output {output_name!r} of {run_id} is a directory. {DIRECTORY_REJECTED}",
                           fix=f"Change the output to a file type (npy, npz, csv or file) in pipeline.yaml, run "
                               f"again, then promote it; or promote one file of {raw} after registering it with "
                               "register_source.")
    return path


def _remote_output(run_id: str, output_name: str, uri: str) -> str:
    """A cloud run's output URI, checked to be one object under that run's outputs prefix."""
    _bucket, _, key = uri[len("gs://"):].partition("/")
    prefix = f"runs/{run_id}/outputs/"
    rest = key[len(prefix):] if key.startswith(prefix) else ""
    if not rest or ".." in rest.split("/"):
        raise InvalidInput(f"Output {output_name!r} of {run_id} is recorded at {uri}, outside the run's outputs "
                           f"prefix {prefix}.", fix="Promote only outputs the run wrote into its outputs directory.")
    if uri.endswith("/"):
        raise InvalidInput(f"Output {output_name!r} of {run_id} is a directory ({uri}). {DIRECTORY_REJECTED}",
                           fix="Change the output to a file type (npy, npz, csv or file) in pipeline.yaml, run "
                               "again, then promote it.")
    return uri


def consumed_sources(run: dict[str, Any]) -> list[str]:
    found = {e.get("source") for e in (run.get("inputs") or {}).values()
             if isinstance(e, dict) and e.get("kind") in SOURCE_KINDS and e.get("source")}
    return sorted(str(s) for s in found)


def _check_output_format(problems: FieldErrors, out: dict[str, Any], metadata: Any, output_name: str) -> None:
    fmt = metadata.get("source", {}).get("format") if isinstance(metadata, dict) and isinstance(
        metadata.get("source"), dict) else None
    declared = out.get("format") or out.get("type")
    if fmt in _STRICT_FORMATS and declared != fmt:
        problems.add("metadata.source.format",
                     f"is {fmt!r} but output {output_name} is declared as {declared!r}; use format "
                     f"{declared!r} if it is one of npy/npz/csv, else \"file\"")


def _row(name: str, path: Path | str, checked: Checked, metadata: dict[str, Any], reason: str,
         lineage: dict[str, Any], run_id: str) -> dict[str, Any]:
    location = str(path.resolve()) if isinstance(path, Path) else checked.loc.uri
    return {
        "name": name, "description": metadata["description"], "location": location,
        "uri_kind": checked.loc.kind, "format": metadata["source"]["format"], **checked.fields,
        "metadata": copy.deepcopy(metadata), "metadata_status": "ok", "status": "available",
        "created_at": now_iso(), "updated_at": None, "created_by": f"run:{run_id}", "reason": reason,
        "lineage": lineage, "history": [],
    }


def promote_artifact(sources: Sources, job_id: str, output_name: str, source_name: str, reason: str,
                     metadata: Any, description: str | None, format: str | None,
                     size_bytes: int | None) -> PromoteResult:
    run_id = names.stage_run_id(job_id)
    names.signal_name(output_name)
    name = names.source_name(source_name)
    if sources.row(name) is not None:
        raise duplicate(name)
    workspace, run = _run(sources, run_id)
    state = run.get("state")
    if state != "completed":
        fix = (f"Wait for it to complete (wait('{run_id}') or inspect_run), then promote."
               if state not in ("failed", "terminated", "canceled", "skipped")
               else "Only outputs of completed runs can be promoted: fix the stage and run it again.")
        raise InvalidInput(f"Run {run_id} is {state}, not completed.", fix=fix)
    path = output_file(sources, run, output_name)
    out = run["outputs"][output_name]
    problems = FieldErrors("promote_artifact")
    checked_reason = check_field(problems, "reason", lambda: names.reason(reason, sources.min_reason))
    meta_fix = validate_into(problems, metadata, require_size=False, expect_description=description,
                             expect_format=format, expect_size=size_bytes)
    _check_output_format(problems, out, metadata, output_name)
    checked = sources.check_location(problems, str(path), meta_size(metadata), field="output")
    raise_problems(problems, meta_fix, "Nothing was promoted.")
    assert checked is not None and checked_reason is not None
    sources.hash_local(checked)
    parents = consumed_sources(run)
    lineage = {"parent_sources": parents, "run_id": run_id, "output_name": output_name,
               "workspace": workspace, "stage": run.get("stage")}
    row = _row(name, path, checked, metadata, checked_reason, lineage, run_id)
    with sources.project.store.transaction() as tx:
        table = tx.table(TABLE)
        if table.has(name):
            raise duplicate(name)
        table.add(row, doc_id=name)
        sources.audit(tx, "promote_artifact", checked_reason, audit_details(row), workspace=workspace)
        sources.after_change(tx)
    return PromoteResult(
        source=sources.info(row, deep=False),
        lineage=ArtifactLineage(source_name=name, parent_sources=parents, run_id=run_id,
                                workspace=workspace, stage=str(run.get("stage")), output_name=output_name),
        message=f"Promoted {output_name} of {run_id} to source {name} (no copy; it stays at {row['location']}). "
                f"Read it in a pipeline with `dataset: {name}`.",
    )


# --------------------------------------------------------------------------- auto-registration


def default_source_name(workspace: str, stage: str, output: str, run_id: str) -> str:
    """``<workspace>-<stage>-<output>-<run8>``, the prefix shortened to fit 64 characters."""
    suffix = run_id.removeprefix("stage-")[:8]
    prefix = f"{workspace}-{stage}-{output}"[: MAX_NAME - len(suffix) - 1].rstrip("-_")
    return f"{prefix}-{suffix}"


def _finding(severity: str, output: str, message: str) -> dict[str, Any]:
    return {"source": "artifacts", "check": "auto_register", "severity": severity, "signal": output,
            "message": message, "value": None, "threshold": None}


@dataclass
class ArtifactPlan:
    """What auto-registration will write for one run: rows ready to add and the problems found."""

    run_id: str
    workspace: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)


def prepare_artifacts(sources: Sources, run_doc: dict[str, Any], stage: Stage) -> ArtifactPlan:
    """Check and hash the ``artifact: true`` outputs of a run whose outputs are final (the slow part,
    done without the project lock). Writes nothing; ``run_doc["outputs"]`` must be collected."""
    run_id, workspace = run_doc["id"], run_doc["workspace"]
    plan = ArtifactPlan(run_id=run_id, workspace=workspace)
    for output, spec in stage.outputs.items():
        if not spec.artifact:
            continue
        name = spec.source_name or default_source_name(workspace, stage.name, output, run_id)
        later = f"promote_artifact(job_id='{run_id}', output_name='{output}', ...)"
        if spec.metadata is None:
            plan.findings.append(_finding("warning", output, f"artifact output {output} has no metadata: block, so "
                                          f"it was not registered. Add metadata: to it in pipeline.yaml, or {later}."))
            continue
        try:
            path = output_file(sources, run_doc, output)
            problems = FieldErrors(f"outputs.{output}")
            meta_fix = validate_into(problems, spec.metadata, require_size=False)
            _check_output_format(problems, run_doc["outputs"][output], spec.metadata, output)
            checked = sources.check_location(problems, str(path), meta_size(spec.metadata), field="output")
            problems.raise_if_any(meta_fix or "")
            assert checked is not None
            sources.hash_local(checked)
        except (GoldfishError, OSError) as exc:
            what = exc.message if isinstance(exc, GoldfishError) else f"{type(exc).__name__}: {exc}"
            plan.findings.append(_finding("warning", output, f"artifact output {output} was not registered as "
                                          f"source {name}: {what} Fix the metadata: block in pipeline.yaml, "
                                          f"or {later}."))
            continue
        lineage = {"parent_sources": consumed_sources(run_doc), "run_id": run_id, "output_name": output,
                   "workspace": workspace, "stage": stage.name}
        reason = f"auto-registered artifact output {output} of stage {stage.name} ({run_id})"
        plan.rows.append(_row(name, path, checked, spec.metadata, reason, lineage, run_id))
    return plan


def commit_artifacts(sources: Sources, tx: Transaction, plan: ArtifactPlan) -> list[dict[str, Any]]:
    """Add the planned rows in ``tx`` (the transaction that completes the run, so a source exists
    exactly when its run is completed); returns every finding of the plan."""
    findings = list(plan.findings)
    table = tx.table(TABLE)
    for row in plan.rows:
        output = row["lineage"]["output_name"]
        existing = table.get_doc(row["name"])
        if existing is not None:
            if existing.get("created_by") != row["created_by"]:
                findings.append(_finding("warning", output, f"artifact output {output} was not registered: source "
                                         f"{row['name']} already exists ({existing.get('created_by')}). Change its "
                                         "source_name: in pipeline.yaml, or promote_artifact under another name."))
            continue  # this run registered it already (post_run redone after a crash)
        table.add(row, doc_id=row["name"])
        sources.audit(tx, "register_source", row["reason"], {**audit_details(row), "auto": True},
                      workspace=plan.workspace)
        findings.append(_finding("info", output, f"registered as source {row['name']} (dataset: {row['name']})"))
    if plan.rows:
        sources.after_change(tx)
    return findings


def auto_register_outputs(sources: Sources, run_doc: dict[str, Any], stage: Stage) -> list[dict[str, Any]]:
    """Register every ``artifact: true`` output of a completed run that carries valid metadata.

    Never raises for a bad output: each problem becomes a warning finding (the run itself
    succeeded), and each registration an info finding."""
    if run_doc.get("state") != "completed":
        return []
    plan = prepare_artifacts(sources, run_doc, stage)
    with sources.project.store.transaction() as tx:
        current = tx.table("runs", ws_partition(plan.workspace)).get_doc(plan.run_id)
        if current is None or current.get("state") != "completed":
            return []
        return commit_artifacts(sources, tx, plan)
