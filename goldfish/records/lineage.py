"""Run lineage: which runs (and sources) a run read, which runs read it, and where a workspace
was forked from.

Upstream comes straight from the run's recorded ``inputs`` (kind stage / override_run → an
upstream stage run; source / override_source → a source name; override_path → a path).
Downstream needs the reverse edge, kept in the ``lineage`` table of the *producer's* workspace
partition (id = producer stage run id → ``{consumers: [{run_id, workspace, stage, input,
signal}]}``), written by :func:`index_inputs` in the same transaction that records the inputs, so
a downstream lookup reads one document instead of scanning every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from goldfish.errors import InvalidInput
from goldfish.records.models import Consumer, LineageResult, Producer, WorkspaceOrigin
from goldfish.records.refs import part, stage_run
from goldfish.timefmt import age

if TYPE_CHECKING:
    from goldfish.project import Project
    from goldfish.store import Transaction

LINEAGE_TABLE = "lineage"
RUN_KINDS = ("stage", "override_run")
MAX_FORK_DEPTH = 50


def index_inputs(tx: Transaction, workspace: str, run_id: str, stage: str,
                 inputs: Mapping[str, Mapping[str, Any]]) -> None:
    """Record ``run_id`` as a consumer of every upstream run in ``inputs`` (idempotent)."""
    for name, entry in inputs.items():
        producer = entry.get("run_id")
        if entry.get("kind") not in RUN_KINDS or not producer:
            continue
        where = tx.table("run_index").get_doc(str(producer))
        producer_ws = str(where["workspace"]) if where else workspace
        table = tx.table(LINEAGE_TABLE, part(producer_ws))
        doc = table.get_doc(str(producer)) or {"consumers": []}
        consumers = list(doc.get("consumers") or [])
        edge = {"run_id": run_id, "workspace": workspace, "stage": stage, "input": name,
                "signal": entry.get("signal") or name}
        if any(c.get("run_id") == run_id and c.get("input") == name for c in consumers):
            continue
        table.put(str(producer), {"consumers": [*consumers, edge]})


def upstream(project: Project, run: Mapping[str, Any]) -> list[Producer]:
    """One entry per upstream run (its signals merged), then one per source or path."""
    by_run: dict[str, Producer] = {}
    others: list[Producer] = []
    for name, entry in sorted((run.get("inputs") or {}).items()):
        kind = str(entry.get("kind") or "")
        producer_id = entry.get("run_id")
        if kind in RUN_KINDS and producer_id:
            known = by_run.get(producer_id)
            signal = str(entry.get("signal") or name)
            if known is not None:
                known.inputs.append(name)
                if signal not in known.signal_produced:
                    known.signal_produced.append(signal)
                continue
            ws, doc = _run_doc(project, str(producer_id))
            by_run[producer_id] = Producer(
                run_id=producer_id, workspace=ws, stage=(doc or {}).get("stage"), signal_produced=[signal],
                inputs=[name], kind=kind, location=entry.get("location"), state=(doc or {}).get("state"))
            continue
        source = entry.get("source")
        merged = next((p for p in others if source and p.source == source), None)
        if merged is not None:
            merged.inputs.append(name)
            continue
        others.append(Producer(run_id=None, inputs=[name], kind=kind or "unknown", source=source,
                               location=entry.get("location")))
    return [*by_run.values(), *others]


def downstream(project: Project, workspace: str, run_id: str) -> list[Consumer]:
    """Runs that read ``run_id``'s outputs, one entry per run, oldest first."""
    doc = project.store.table(LINEAGE_TABLE, part(workspace)).get_doc(run_id) or {}
    merged: dict[str, Consumer] = {}
    for edge in doc.get("consumers") or []:
        rid = str(edge.get("run_id"))
        known = merged.get(rid)
        signal = str(edge.get("signal") or edge.get("input"))
        if known is not None:
            if signal not in known.signal_consumed:
                known.signal_consumed.append(signal)
            continue
        consumer_ws = str(edge.get("workspace") or workspace)
        consumer = project.store.table("runs", part(consumer_ws)).get_doc(rid) or {}
        merged[rid] = Consumer(
            run_id=rid, workspace=consumer_ws, stage=consumer.get("stage") or edge.get("stage"),
            reason=consumer.get("reason_summary"), signal_consumed=[signal], state=consumer.get("state"),
            age=age(consumer.get("created_at")),
        )
    return list(merged.values())


def _run_doc(project: Project, run_id: str) -> tuple[str | None, dict[str, Any] | None]:
    where = project.store.table("run_index").get_doc(run_id)
    if where is None:
        return None, None
    ws = str(where["workspace"])
    return ws, project.store.table("runs", part(ws)).get_doc(run_id)


def workspace_origin(project: Project, workspace: str) -> list[WorkspaceOrigin]:
    """The workspace, then the workspace it was forked from, and so on (from the workspaces rows)."""
    table = project.store.table("workspaces")
    chain: list[WorkspaceOrigin] = []
    seen: set[str] = set()
    current: str | None = workspace
    while current and current not in seen and len(chain) < MAX_FORK_DEPTH:
        seen.add(current)
        row = table.get_doc(current) or {}
        chain.append(WorkspaceOrigin(workspace=current, parent_workspace=row.get("parent_workspace"),
                                     parent_version=row.get("parent_version")))
        current = row.get("parent_workspace")
    return chain


def get_lineage(project: Project, run_id: object, direction: object = "downstream") -> LineageResult:
    if direction not in ("downstream", "upstream"):
        raise InvalidInput(f"direction must be 'downstream' or 'upstream', got {direction!r}.",
                           fix="downstream = who consumed this run's outputs; upstream = where its inputs came from.")
    workspace, run = stage_run(project, run_id)
    rid, stage = str(run["id"]), run.get("stage")
    if direction == "downstream":
        consumers = downstream(project, workspace, rid)
        message = (f"{len(consumers)} run(s) read {rid}'s outputs." if consumers else
                   f"No run has read {rid}'s outputs yet.")
        return LineageResult(run_id=rid, workspace=workspace, stage=stage, direction="downstream",
                             consumers=consumers, message=message)
    producers = upstream(project, run)
    runs = sum(1 for p in producers if p.run_id)
    message = (f"{rid} read {runs} upstream run(s) and {len(producers) - runs} source(s)/path(s)."
               if producers else f"{rid} had no inputs (or has not resolved them yet: state {run.get('state')}).")
    return LineageResult(run_id=rid, workspace=workspace, stage=stage, direction="upstream", producers=producers,
                         workspace_origin=workspace_origin(project, workspace), message=message)


def provenance(project: Project, run_id: str) -> dict[str, Any]:
    """Everything needed to say exactly what a stage run executed and why (for inspect_run)."""
    workspace, run = stage_run(project, run_id)
    prun = project.store.table("pipeline_runs", part(workspace)).get_doc(str(run.get("pipeline_run_id") or "")) or {}
    record = project.store.table("records", part(workspace)).get_doc(str(run.get("record_id") or "")) or {}
    version = project.store.table("versions", part(workspace)).get_doc(str(run.get("version") or "")) or {}
    return {
        "run_id": run["id"], "workspace": workspace, "stage": run.get("stage"), "record_id": run.get("record_id"),
        "version": run.get("version"), "sha": run.get("sha"),
        "git_tag": version.get("tag") or f"{workspace}-{run.get('version')}",
        "tags": list(record.get("tags") or []), "version_tags": list(version.get("tags") or []),
        "pipeline_run_id": run.get("pipeline_run_id"), "pipeline": prun.get("pipeline"),
        "pipeline_stages": prun.get("stages"), "reason": run.get("reason"),
        "results_spec": run.get("results_spec"), "config": run.get("config"),
        "config_override": run.get("config_override"), "experiment_group": run.get("experiment_group"),
        "inputs": [p.model_dump() for p in upstream(project, run)],
        "workspace_origin": [o.model_dump() for o in workspace_origin(project, workspace)],
    }
