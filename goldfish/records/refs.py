"""Finding records and runs from what the agent passes: a workspace or slot, a record id (ULID),
a stage run id, a pipeline run id, or ``@tag``.

Lookups go through small index tables (``run_index``, ``record_index`` in the project partition)
so nothing scans every workspace; the workspace partition is read lock-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from goldfish import names
from goldfish.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from goldfish.project import Project
    from goldfish.store import Transaction

RECORD_INDEX = "record_index"
BEST_TAG = "best"


def part(workspace: str) -> str:
    """The store partition holding a workspace's versions, tags, runs and records."""
    return f"ws/{workspace}"


def is_best_tag(tag: str) -> bool:
    return tag == BEST_TAG or tag.startswith(BEST_TAG + "-")


@dataclass(frozen=True)
class Resolved:
    """A record, and its stage run when it is a run record (read-only docs: never mutate)."""

    workspace: str
    record: dict[str, Any]
    run: dict[str, Any] | None
    tag: str | None = None

    @property
    def record_id(self) -> str:
        return str(self.record["id"])


def resolve_workspace(project: Project, name_or_slot: object) -> str:
    """A slot (must be mounted) or a live workspace name → the workspace name."""
    slots = list(project.config.slots)
    if isinstance(name_or_slot, str) and name_or_slot in slots:
        mount = project.store.table("mounts").get_doc(name_or_slot)
        if mount is None:
            raise NotFound(f"Slot {name_or_slot} is empty.",
                           fix=f"mount(workspace, {name_or_slot!r}, reason) first, or pass a workspace name.")
        return str(mount["workspace"])
    try:
        workspace = names.workspace_name(name_or_slot)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.message.rstrip('.')}: it is neither a slot ({', '.join(slots)}) nor a valid "
                           "workspace name.", fix=exc.fix) from exc
    table = project.store.table("workspaces")
    row = table.get_doc(workspace)
    if row is None or row.get("deleted_at"):
        live = [d["id"] for d in table.iter_raw() if not d.get("deleted_at")]
        gone = " (it was deleted)" if row is not None else names.did_you_mean(workspace, [*live, *slots])
        raise NotFound(f"Workspace {workspace!r} does not exist{gone}.",
                       fix="Check status() for existing workspaces, or create_workspace(name, goal, reason).")
    return workspace


def locate_run(project: Project, run_id: object) -> tuple[str, str]:
    """A stage-/prun- id → (workspace, "stage" | "pipeline"), from run_index."""
    if not isinstance(run_id, str) or not (names.STAGE_RUN_RE.fullmatch(run_id)
                                           or names.PIPELINE_RUN_RE.fullmatch(run_id)):
        raise InvalidInput(f"Invalid run id {run_id!r}.",
                           fix="Use a stage run id like stage-1a2b3c4d (from run() or list_history) or a pipeline "
                               "run id like prun-1a2b3c4d.")
    entry = project.store.table("run_index").get_doc(run_id)
    if entry is None:
        raise NotFound(f"Run {run_id} not found.",
                       fix="Use a run id returned by run(), list_history() or list_unfinalized_runs().")
    kind = entry.get("kind") or ("stage" if run_id.startswith("stage-") else "pipeline")
    return str(entry["workspace"]), str(kind)


def stage_run(project: Project, run_id: object) -> tuple[str, dict[str, Any]]:
    """(workspace, stage run doc) of a stage- id."""
    workspace, kind = locate_run(project, run_id)
    if kind != "stage":
        raise InvalidInput(f"{run_id} is a pipeline run; this needs a stage run id.",
                           fix=f"Use one of its stage runs (inspect_run({run_id!r}) or list_history lists them).")
    run = project.store.table("runs", part(workspace)).require(
        str(run_id), what="stage run", fix="Use a run id returned by run() or list_history().")
    return workspace, run


def index_record(tx: Transaction, workspace: str, record_id: str, record_type: str) -> None:
    """Remember which workspace holds a record, so a bare record id resolves without a scan."""
    tx.table(RECORD_INDEX).put(record_id, {"workspace": workspace, "type": record_type})


def _record_workspace(project: Project, record_id: str) -> str | None:
    entry = project.store.table(RECORD_INDEX).get_doc(record_id)
    if entry is not None:
        return str(entry["workspace"])
    # Records written before the index existed: look in each workspace partition once.
    for partition in project.store.partitions("ws"):
        if project.store.table("records", partition).has(record_id):
            return partition.split("/", 1)[1]
    return None


def resolve_record(project: Project, ref: object, workspace: object = None) -> Resolved:
    """A record id, a stage run id or ``@tag`` (with ``workspace``) → the record and its run."""
    ws_given = resolve_workspace(project, workspace) if workspace is not None else None
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(f"ref must be a record id, a stage run id or @tag, got {ref!r}.",
                           fix="Pass e.g. '01HXYZ…' (record id from list_history), 'stage-1a2b3c4d' or '@best'.")
    ref = ref.strip()
    if ref.startswith("@"):
        return _by_tag(project, ref[1:], ws_given)
    if names.STAGE_RUN_RE.fullmatch(ref):
        ws, run = stage_run(project, ref)
        _same_workspace(ref, ws, ws_given)
        record = project.store.table("records", part(ws)).get_doc(str(run.get("record_id") or ""))
        if record is None:
            raise NotFound(f"{ref} has no experiment record.", fix="Inspect it with inspect_run instead.")
        return Resolved(ws, record, run)
    if names.PIPELINE_RUN_RE.fullmatch(ref):
        raise InvalidInput(f"{ref} is a pipeline run; a record belongs to one stage run.",
                           fix=f"Use one of its stage run ids (run() returned them; inspect_run({ref!r})).")
    if names.RECORD_RE.fullmatch(ref.upper()):
        ref = ref.upper()  # ULIDs are case-insensitive; stored upper-case
    else:
        raise InvalidInput(f"Invalid ref {ref!r}.",
                           fix="Use a record id (26 characters, from list_history), a stage run id like "
                               "stage-1a2b3c4d, or @tag with workspace.")
    home = ws_given or _record_workspace(project, ref)
    found = project.store.table("records", part(home)).get_doc(ref) if home else None
    if found is None or home is None:
        where = f" in workspace {ws_given}" if ws_given else ""
        raise NotFound(f"Record {ref} not found{where}.", fix="Use a record id from list_history(workspace).")
    run_id = found.get("stage_run_id")
    owner = project.store.table("runs", part(home)).get_doc(run_id) if run_id else None
    return Resolved(home, found, owner)


def _same_workspace(ref: str, actual: str, given: str | None) -> None:
    if given is not None and given != actual:
        raise InvalidInput(f"{ref} belongs to workspace {actual}, not {given}.",
                           fix=f"Pass workspace={actual!r}, or leave workspace out for run and record ids.")


def _by_tag(project: Project, tag: str, workspace: str | None) -> Resolved:
    if workspace is None:
        raise InvalidInput(f"@{tag} is a tag, and tags belong to a workspace.",
                           fix=f"Pass workspace too, e.g. inspect_record('@{tag}', workspace='<name>').")
    names.tag_name(tag)
    tags = project.store.table("tags", part(workspace))
    doc = tags.get_doc(tag)
    if doc is None:
        raise NotFound(f"Workspace {workspace} has no tag {tag!r}.{names.did_you_mean(tag, tags.ids())}",
                       fix=f"list_history({workspace!r}, tagged=True) lists tagged records.")
    record_id = doc.get("record_id")
    if not record_id:
        raise NotFound(f"Tag {tag!r} labels version {doc.get('version')} of {workspace}, not a record.",
                       fix=f"manage_versions({workspace!r}, 'list') shows version tags; tag a record with tag_record.")
    record = project.store.table("records", part(workspace)).get_doc(str(record_id))
    if record is None:
        raise NotFound(f"Tag {tag!r} points at record {record_id}, which no longer exists.",
                       fix=f"Untag it: manage_versions({workspace!r}, 'untag', tag={tag!r}).")
    run_id = record.get("stage_run_id")
    run = project.store.table("runs", part(workspace)).get_doc(run_id) if run_id else None
    return Resolved(workspace, record, run, tag=tag)


def primary_metric(run: Mapping[str, Any] | None) -> tuple[str, float | None, str] | None:
    """(name, value, "final"|"auto") of a run's primary metric, preferring finalized results.

    A supporting stage run has none: the pipeline run's result is on its result stage."""
    if not run or run.get("role") == "supporting":
        return None
    final = run.get("results_final")
    if run.get("results_status") == "finalized" and isinstance(final, dict):
        return str(final.get("primary_metric")), _num(final.get("value")), "final"
    auto = run.get("results_auto")
    if isinstance(auto, dict) and auto.get("primary_metric"):
        return str(auto["primary_metric"]), _num(auto.get("value")), "auto"
    return None


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
