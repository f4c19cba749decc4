"""A read-only view of one workspace's records and runs, answered from the history index.

History, the finalization queue, the trend and comparisons need "result rows newest first",
"finalized results, newest first" or "runs the gate counts". The history index
(``goldfish.records.history_index``) keeps those orders; this view turns the few ids a caller
needs into documents, reading only the shards that hold them. Nothing here mutates a stored document.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from goldfish.records.history_index import HistoryIndex, metric_of, reading
from goldfish.records.index import F_VALUED, FLAGS
from goldfish.records.refs import part
from goldfish.records.roles import RESULT, role_of
from goldfish.store import ShardedTable

if TYPE_CHECKING:
    from goldfish.project import Project

Doc = Mapping[str, Any]
Key = tuple[str, str]


def created_key(doc: Doc) -> Key:
    return str(doc.get("created_at") or ""), str(doc.get("id") or "")


class WorkspaceView:
    """Documents by id from the workspace's tables; orders and filters from its index."""

    def __init__(self, project: Project, workspace: str, index: HistoryIndex):
        self.project, self.workspace, self.index = project, workspace, index
        self._tables = {"records": project.store.table("records", part(workspace)),
                        "runs": project.store.table("runs", part(workspace))}
        self._shards: dict[tuple[str, int], Mapping[str, Doc]] = {}

    def _get(self, name: str, doc_id: str) -> dict[str, Any] | None:
        """A document (a copy), each shard looked up once per view: a page of documents costs one
        file check per shard it touches, not one per document."""
        table = self._tables[name]
        if not isinstance(table, ShardedTable):
            return table.get_doc(doc_id)
        number = table.shard_of(doc_id)
        if number is None:
            return None
        shard = self._shards.get((name, number))
        if shard is None:
            shard = self._shards[(name, number)] = table.shard_raw(number)
        doc = shard.get(doc_id)
        if doc is None:  # the directory names it but the shard lacks it: damage (or a commit seen half-way)
            return table.get_doc(doc_id)
        return dict(doc)

    def record(self, record_id: str) -> dict[str, Any] | None:
        return self._get("records", record_id)

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self._get("runs", run_id)

    def run_of(self, record: Doc) -> dict[str, Any] | None:
        run_id = record.get("stage_run_id")
        return self._get("runs", str(run_id)) if run_id else None

    @property
    def has_records(self) -> bool:
        return bool(self.index.entries)

    @property
    def row_count(self) -> int:
        """How many rows history lists by default (result rows and checkpoints)."""
        with self.index.lock:
            return len(self.index.rows)

    def metric(self, record_id: str) -> tuple[str, float | None, str] | None:
        """Record id → the primary metric (name, value, final|auto) of its run."""
        with self.index.lock:
            entry = self.index.entries.get(record_id)
        return metric_of(entry) if entry is not None else None

    def blocking_ids(self) -> list[str]:
        """Run ids of the runs the finalization gate counts, oldest finished first (no document read)."""
        with self.index.lock:
            return [run_id for _, run_id in self.index.blocking_oldest_first()]

    @cached_property
    def blocking_oldest_first(self) -> list[dict[str, Any]]:
        """Runs the finalization gate counts, oldest finished first."""
        with self.index.lock:
            ids = self.index.blocking_oldest_first()
        return [run for run in (self.run(run_id) for _, run_id in ids) if run is not None]

    @property
    def results_newest_first(self) -> Iterator[Doc]:
        """Finalized result runs with a value, newest first, read one by one: take only what you need."""
        with self.index.lock:
            results = list(self.index.results)  # a C-level copy of the order; documents are read lazily
        return self._results(results)

    def _results(self, results: list[tuple[str, str, str]]) -> Iterator[Doc]:
        entries = self.index.entries
        for _, run_id, rid in reversed(results):
            entry = entries.get(rid)
            if entry is not None and entry[FLAGS] & F_VALUED:
                run = self.run(run_id)
                if run is not None:
                    yield run

    def previous_result(self, run: Doc) -> dict[str, Any] | None:
        """The last finalized result with a value of ``run``'s stage, created before it."""
        here = created_key(run)
        with self.index.lock:
            found = self.index.previous_result(here[0], here[1], run.get("stage"))
        return self.run(found) if found else None

    def _members(self, record: Doc) -> list[dict[str, Any]]:
        prun = record.get("pipeline_run_id")
        if not prun:
            return []
        with self.index.lock:
            ids = self.index.pipeline_members(str(prun))
        return [doc for doc in (self.record(rid) for rid in ids) if doc is not None]

    def supporting(self, record: Doc) -> list[dict[str, Any]]:
        """The supporting run records of a result row's pipeline run."""
        if role_of(record) != RESULT:
            return []
        return [r for r in self._members(record) if role_of(r) != RESULT]

    def result_of(self, record: Doc) -> dict[str, Any] | None:
        """The result row of a supporting record's pipeline run."""
        return next((r for r in self._members(record) if role_of(r) == RESULT), None)


def workspace_view(project: Project, workspace: str) -> WorkspaceView:
    """The view of ``workspace`` as last committed (its index brought up to date first)."""
    with reading(project.store, workspace) as index:
        return WorkspaceView(project, workspace, index)
