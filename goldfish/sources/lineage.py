"""Lineage of data sources: who produced a source, which runs read it, which runs still need it.

Consumption is indexed in the ``source_consumers`` table (project partition, id
``<source>|<run_id>|<input>``), written by the run engine through ``record_consumption`` in the
transaction that moves a stage run to ``launching`` (a run blocked before that read nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from goldfish.errors import GoldfishError
from goldfish.git.cmd import git
from goldfish.pipelines.model import parse_pipeline, pipeline_path
from goldfish.sources.models import ConsumerRef, ParentRef, RunRef, SourceLineage

if TYPE_CHECKING:
    from goldfish.project import Project
    from goldfish.sources.service import Sources
    from goldfish.store import Table, Transaction

CONSUMERS = "source_consumers"
SOURCE_KINDS = ("source", "override_source")
TERMINAL = frozenset({"completed", "failed", "terminated", "canceled", "skipped"})


def ws_partition(workspace: str) -> str:
    return f"ws/{workspace}"


def consumer_id(source: str, run_id: str, input_name: str | None) -> str:
    return f"{source}|{run_id}|{input_name or ''}"


def record_consumption(tx: Transaction, source: str, run_id: str, workspace: str, *,
                       input_name: str | None = None, stage: str | None = None) -> None:
    """Index that ``run_id`` reads ``source`` (with the content hash it has now)."""
    from goldfish.sources.service import TABLE, now_iso

    row = tx.table(TABLE).get_doc(source)
    tx.table(CONSUMERS).put(consumer_id(source, run_id, input_name), {
        "source": source, "run_id": run_id, "workspace": workspace, "stage": stage, "input": input_name,
        "sha256": row.get("sha256") if row else None,
        "gcs_generation": row.get("gcs_generation") if row else None,
        "source_created_at": row.get("created_at") if row else None,
        "recorded_at": now_iso(),
    })


def _run(project: Project, run_id: str | None) -> tuple[str | None, dict[str, Any] | None]:
    if not run_id:
        return None, None
    entry = project.store.table("run_index").get_doc(run_id)
    if entry is None:
        return None, None
    workspace = entry.get("workspace")
    if not workspace:
        return None, None
    return workspace, project.store.table("runs", ws_partition(workspace)).get_doc(run_id)


def _workspace_runs(project: Project, tx: Transaction | None = None) -> Iterator[tuple[str, Table]]:
    for partition in project.store.partitions("ws"):
        workspace = partition.split("/", 1)[1]
        table = tx.table("runs", partition) if tx is not None else project.store.table("runs", partition)
        yield workspace, table


def _source_inputs(run: dict[str, Any], source: str) -> list[str]:
    return [name for name, entry in (run.get("inputs") or {}).items()
            if isinstance(entry, dict) and entry.get("kind") in SOURCE_KINDS and entry.get("source") == source]


def consumers(project: Project, row: dict[str, Any]) -> list[ConsumerRef]:
    """Runs that read this registration of the source (runs from before it was registered under
    this name read another source of the same name)."""
    name = row["name"]
    since = row.get("created_at") or ""
    found: dict[tuple[str, str | None], ConsumerRef] = {}
    for doc in project.store.table(CONSUMERS).iter_raw():
        if doc.get("source") != name or (doc.get("source_created_at") or since) != since:
            continue
        workspace, run = _run(project, doc.get("run_id"))
        found[(doc["run_id"], doc.get("input"))] = ConsumerRef(
            run_id=doc["run_id"], workspace=workspace or doc.get("workspace"),
            stage=(run or {}).get("stage", doc.get("stage")), state=(run or {}).get("state"),
            input=doc.get("input"), sha256=doc.get("sha256"), recorded_at=doc.get("recorded_at"),
        )
    return sorted(found.values(), key=lambda c: (c.recorded_at or "", c.run_id), reverse=True)


def lineage(sources: Sources, name: str, *, limit: int) -> SourceLineage:
    project = sources.project
    row = sources.require(name)
    recorded = row.get("lineage") or {}
    parents = []
    for parent in recorded.get("parent_sources") or []:
        prow = sources.row(parent)
        parents.append(ParentRef(name=parent, exists=prow is not None,
                                 created_by=prow.get("created_by") if prow else None,
                                 location=prow.get("location") if prow else None))
    producer = None
    run_id = recorded.get("run_id")
    if run_id:
        workspace, run = _run(project, run_id)
        producer = RunRef(run_id=run_id, workspace=workspace or recorded.get("workspace"),
                          stage=(run or {}).get("stage", recorded.get("stage")), state=(run or {}).get("state"))
    found = consumers(project, row)
    return SourceLineage(source_name=row["name"], parents=parents, produced_by_run=producer,
                         output_name=recorded.get("output_name"), consumers=found[:limit],
                         consumers_total=len(found))


def active_users(project: Project, tx: Transaction, source: str) -> list[dict[str, Any]]:
    """Non-terminal runs that read (or, not yet prepared, will read) ``source``."""
    users = []
    for workspace, table in _workspace_runs(project, tx):
        for run in table.iter_raw():
            if run.get("state") in TERMINAL:
                continue
            reads = bool(_source_inputs(run, source)) if run.get("inputs") else source in _planned(project, tx, workspace, run)
            if reads:
                users.append({"run_id": run["id"], "workspace": workspace, "stage": run.get("stage"),
                              "state": run.get("state")})
    return users


def _planned(project: Project, tx: Transaction, workspace: str, run: dict[str, Any]) -> set[str]:
    """Sources a run whose inputs are not resolved yet will read: its overrides naming sources, and
    the datasets of its stage in the pipeline of its version."""
    overrides = run.get("inputs_override") or {}
    planned = {v for v in overrides.values() if isinstance(v, str)}
    prun = tx.table("pipeline_runs", ws_partition(workspace)).get_doc(run.get("pipeline_run_id") or "") or {}
    sha, stage = run.get("sha"), run.get("stage")
    if not sha or not stage:
        return planned
    try:
        relative = pipeline_path(project.dev_path, prun.get("pipeline")).relative_to(project.dev_path).as_posix()
        text = git(project.dev_path, "show", f"{sha}:{relative}").decode("utf-8")
        spec = parse_pipeline(text, relative).stage(stage)
    except (GoldfishError, UnicodeDecodeError, KeyError):
        return planned  # an unreadable pipeline fails the run's preflight; it reads nothing
    planned.update(s.dataset for n, s in spec.inputs.items() if s.dataset and n not in overrides)
    return planned
