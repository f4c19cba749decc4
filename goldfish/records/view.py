"""A derived, read-only view of one workspace's records and runs, cached until the partition changes.

History, the finalization queue, the trend and comparisons all need "every record in creation
order", "finalized runs, newest first" or "runs the gate counts". Each is one pass over the
partition; the view keeps them, keyed on the identity of the stored tables (``Table.raw()``
returns the same object until a table changes), so repeated reads of an unchanged workspace cost
only the page they return. Nothing here copies or mutates a stored document.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from goldfish.runs.gate import blocks_gate
from goldfish.records.refs import part, primary_metric
from goldfish.records.roles import RESULT, is_result_row, role_of

if TYPE_CHECKING:
    from goldfish.project import Project

Doc = Mapping[str, Any]
Key = tuple[str, str]


def created_key(doc: Doc) -> Key:
    return str(doc.get("created_at") or ""), str(doc.get("id") or "")


def _finished_key(doc: Doc) -> Key:
    return str(doc.get("finished_at") or ""), str(doc.get("id") or "")


class WorkspaceView:
    """Each part is built on first use, so a read after a write pays only for what it needs."""

    def __init__(self, records: Mapping[str, Doc], runs: Mapping[str, Doc], versions: Mapping[str, Doc]):
        self.records, self.runs, self.versions = records, runs, versions

    def run_of(self, record: Doc) -> Doc | None:
        run_id = record.get("stage_run_id")
        return self.runs.get(run_id) if run_id else None

    @cached_property
    def newest_first(self) -> list[Doc]:
        """Every record, newest first."""
        return sorted(self.records.values(), key=created_key, reverse=True)

    @cached_property
    def rows_newest_first(self) -> list[Doc]:
        """What history lists by default: result rows and checkpoints, newest first."""
        return [r for r in self.newest_first if r.get("type", "run") != "run" or is_result_row(r)]

    @cached_property
    def by_pipeline_run(self) -> dict[str, list[Doc]]:
        """Pipeline run id → its run records, in creation order (stage order within one run)."""
        out: dict[str, list[Doc]] = {}
        for rec in reversed(self.newest_first):
            prun = rec.get("pipeline_run_id")
            if prun:
                out.setdefault(str(prun), []).append(rec)
        return out

    @cached_property
    def results_newest_first(self) -> list[Doc]:
        """Finalized result runs (one per pipeline run), newest first."""
        finalized = [r for r in self.runs.values()
                     if r.get("results_status") == "finalized" and role_of(r) == RESULT]
        finalized.sort(key=created_key, reverse=True)
        return finalized

    @cached_property
    def blocking_oldest_first(self) -> list[Doc]:
        """Runs the finalization gate counts, oldest first (the gate module's predicate)."""
        blocking = [r for r in self.runs.values() if blocks_gate(r)]  # type: ignore[arg-type]
        blocking.sort(key=_finished_key)
        return blocking

    @cached_property
    def metrics(self) -> dict[str, tuple[str, float | None, str] | None]:
        """Record id → primary metric (name, value, final|auto) of its run."""
        return {rec_id: primary_metric(self.run_of(rec)) for rec_id, rec in self.records.items()}

    @cached_property
    def pruned(self) -> frozenset[str]:
        return frozenset(v["id"] for v in self.versions.values() if v.get("pruned_at"))

    def previous_result(self, run: Doc) -> Doc | None:
        """The last finalized result with a value of ``run``'s stage, created before it."""
        here, stage = created_key(run), run.get("stage")
        for other in self.results_newest_first:
            value = (other.get("results_final") or {}).get("value")
            if (other.get("stage") == stage and created_key(other) < here
                    and isinstance(value, (int, float)) and not isinstance(value, bool)):
                return other
        return None

    def supporting(self, record: Doc) -> list[Doc]:
        """The supporting run records of a result row's pipeline run."""
        prun = record.get("pipeline_run_id")
        if not prun or role_of(record) != RESULT:
            return []
        return [r for r in self.by_pipeline_run.get(str(prun), ()) if role_of(r) != RESULT]

    def result_of(self, record: Doc) -> Doc | None:
        """The result row of a supporting record's pipeline run."""
        prun = record.get("pipeline_run_id")
        if not prun:
            return None
        return next((r for r in self.by_pipeline_run.get(str(prun), ()) if role_of(r) == RESULT), None)


_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[tuple[Mapping[str, Doc], ...], WorkspaceView]] = {}


def workspace_view(project: Project, workspace: str) -> WorkspaceView:
    """The view of ``workspace`` as last committed (rebuilt only when its tables changed)."""
    store, partition = project.store, part(workspace)
    tables = (store.table("records", partition).raw(), store.table("runs", partition).raw(),
              store.table("versions", partition).raw())
    key = (str(store.root), partition)
    with _lock:
        cached = _cache.get(key)
    if cached is not None and all(a is b or (not a and not b) for a, b in zip(cached[0], tables, strict=True)):
        return cached[1]
    view = WorkspaceView(*tables)
    with _lock:
        _cache[key] = (tables, view)  # holding the tables keeps their identities from being reused
    return view
