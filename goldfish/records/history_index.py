"""The history index in memory: orders and counts over one workspace, kept up to date chunk by chunk.

Built once per process from the index chunks (``goldfish.records.index``: small rows, never the
records or runs themselves) and then kept. A read checks the chunk files (the store's cache tells a
changed file by its identity) and applies only the entries that changed — a finalize changes one —
to lists kept sorted with ``bisect``: a write costs a few list insertions, not a re-sort of the
history. Queries return record ids; callers read only the documents of the page they return.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from goldfish.errors import StoreError
from goldfish.records.index import (
    CREATED, INDEX_MARK, F_BLOCKS, F_FINALIZED, F_RESULT, F_USABLE, F_VALUED, FINISHED, FLAGS, GROUP, METRIC, PRUN, ROLE, RUN, SOURCE, STAGE,
    TABLE, TAGS, TYPE, VALUE, VERSION, Entry, chunk_partition, chunk_rows, damaged, path_of, run_created,
)
from goldfish.records.refs import part
from goldfish.records.roles import SUPPORTING
from goldfish.store import ShardedTable

if TYPE_CHECKING:
    from goldfish.store import Store

# (row, type, stage, metric, finalized, experiment group): what the counts are kept by.
Sig = tuple[bool, Any, Any, Any, bool, Any]


def is_row(entry: Entry) -> bool:
    """What history lists by default: result rows and checkpoints (supporting stages are not)."""
    return entry[TYPE] != "run" or entry[ROLE] != SUPPORTING


def _sig(entry: Entry) -> Sig:
    return (is_row(entry), entry[TYPE], entry[STAGE], entry[METRIC], bool(entry[FLAGS] & F_FINALIZED), entry[GROUP])


_INTERNED = (TYPE, STAGE, VERSION, GROUP, ROLE, METRIC, SOURCE)


def _intern(entry: Entry) -> None:
    """One string object per distinct stage, version, metric…: a workspace repeats them in every entry."""
    for slot in _INTERNED:
        value = entry[slot]
        if type(value) is str:
            entry[slot] = sys.intern(value)


def _remove(items: list[Any], key: Any) -> None:
    i = bisect_left(items, key)
    if i < len(items) and items[i] == key:
        del items[i]


@dataclass(frozen=True)
class Filters:
    """list_history's filters, as one predicate over index entries."""

    record_type: str | None = None
    stage: str | None = None
    tagged: bool | str | None = None
    metric: str | None = None
    min_value: float | None = None
    group: str | None = None
    finalized_only: bool = False
    pruned: frozenset[str] = frozenset()

    def simple(self, entry: Entry) -> bool:
        """The filters the counts are kept by."""
        return ((self.record_type is None or entry[TYPE] == self.record_type)
                and (self.stage is None or entry[STAGE] == self.stage)
                and (self.group is None or entry[GROUP] == self.group)
                and (self.metric is None or entry[METRIC] == self.metric)
                and (not self.finalized_only or bool(entry[FLAGS] & F_FINALIZED)))

    def keep(self, entry: Entry) -> bool:
        if not self.simple(entry):
            return False
        if self.tagged is not None:
            tags = entry[TAGS] or ()
            if self.tagged is True or self.tagged is False:
                if bool(tags) != self.tagged:
                    return False
            elif self.tagged not in tags:
                return False
        if self.pruned and entry[VERSION] in self.pruned:
            return False
        return not (self.min_value is not None and (entry[VALUE] is None or entry[VALUE] < self.min_value))

    def sig_matches(self, sig: Sig) -> bool:
        _, rtype, stage, metric, finalized, group = sig
        return ((self.record_type is None or rtype == self.record_type) and (self.stage is None or stage == self.stage)
                and (self.group is None or group == self.group) and (self.metric is None or metric == self.metric)
                and (not self.finalized_only or finalized))


class HistoryIndex:
    """One workspace's index entries and the orders built from them (guard reads with ``lock``)."""

    def __init__(self, workspace: str):
        self.workspace = workspace
        self.lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self.idents: dict[int, tuple[int, int, int] | None] = {}
        self.chunks: dict[int, Mapping[str, Entry]] = {}
        self.entries: dict[str, Entry] = {}
        self.created: list[tuple[str, str]] = []  # every record, by (created_at, id)
        self.rows: list[tuple[str, str]] = []  # result rows and checkpoints, by (created_at, id)
        self.valued: list[tuple[float, str, str]] = []  # records whose run has a primary metric value
        self.results: list[tuple[str, str, str]] = []  # finalized results, by (run created_at, run id)
        self.blocking: dict[str, tuple[str, str]] = {}  # record id → (finished_at, run id) of gate holders
        self.usable: dict[Any, list[tuple[str, str]]] = {}  # stage → (finished_at, run id) of usable runs
        # pipeline run → its only record id, or its records' (created_at, id) when it has several
        self.pruns: dict[str, str | list[tuple[str, str]]] = {}
        self.by_version: dict[Any, set[str]] = {}
        self.tagged: set[str] = set()
        self.counts: Counter[Sig] = Counter()

    # ------------------------------------------------------------------ upkeep
    def _add(self, rid: str, e: Entry) -> None:
        _intern(e)
        key = (e[CREATED], rid)
        insort(self.created, key)
        if is_row(e):
            insort(self.rows, key)
        if e[VALUE] is not None:
            insort(self.valued, (e[VALUE], e[CREATED], rid))
        if e[FLAGS] & F_RESULT:
            insort(self.results, (run_created(e), str(e[RUN] or ""), rid))
        if e[FLAGS] & F_BLOCKS:
            self.blocking[rid] = (str(e[FINISHED] or ""), str(e[RUN] or ""))
        if e[FLAGS] & F_USABLE:
            insort(self.usable.setdefault(e[STAGE], []), (str(e[FINISHED] or ""), str(e[RUN] or "")))
        if e[PRUN]:
            prun = str(e[PRUN])
            current = self.pruns.get(prun)
            if current is None:
                self.pruns[prun] = rid
            elif isinstance(current, str):
                self.pruns[prun] = sorted([(self.entries[current][CREATED], current), key])
            else:
                insort(current, key)
        self.by_version.setdefault(e[VERSION], set()).add(rid)
        if e[TAGS]:
            self.tagged.add(rid)
        self.counts[_sig(e)] += 1
        self.entries[rid] = e

    def _remove(self, rid: str, e: Entry) -> None:
        key = (e[CREATED], rid)
        _remove(self.created, key)
        if is_row(e):
            _remove(self.rows, key)
        if e[VALUE] is not None:
            _remove(self.valued, (e[VALUE], e[CREATED], rid))
        if e[FLAGS] & F_RESULT:
            _remove(self.results, (run_created(e), str(e[RUN] or ""), rid))
        self.blocking.pop(rid, None)
        if e[FLAGS] & F_USABLE:
            _remove(self.usable.get(e[STAGE], []), (str(e[FINISHED] or ""), str(e[RUN] or "")))
        if e[PRUN]:
            prun = str(e[PRUN])
            current = self.pruns.get(prun)
            if current == rid:
                del self.pruns[prun]
            elif isinstance(current, list):
                _remove(current, key)
                if len(current) == 1:
                    self.pruns[prun] = current[0][1]
        self.by_version.get(e[VERSION], set()).discard(rid)
        self.tagged.discard(rid)
        sig = _sig(e)
        self.counts[sig] -= 1
        if self.counts[sig] <= 0:
            del self.counts[sig]
        self.entries.pop(rid, None)

    def _bulk(self, chunks: Mapping[int, Mapping[str, Entry]]) -> None:
        """The first load: every order built in one pass each (C-level sorts), the cyclic GC off —
        hundreds of thousands of new tuples would make it rescan them all several times."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            entries = self.entries = {}
            self.by_version, self.pruns = {}, {}
            for chunk in chunks.values():
                entries.update(chunk)
            for e in entries.values():
                _intern(e)
            items = entries.items()
            self.created = sorted([(e[CREATED], rid) for rid, e in items])
            self.rows = [key for key in self.created if is_row(entries[key[1]])]
            self.valued = sorted([(e[VALUE], e[CREATED], rid) for rid, e in items if e[VALUE] is not None])
            self.results = sorted([(run_created(e), str(e[RUN] or ""), rid) for rid, e in items
                                   if e[FLAGS] & F_RESULT])
            self.blocking = {rid: (str(e[FINISHED] or ""), str(e[RUN] or "")) for rid, e in items
                             if e[FLAGS] & F_BLOCKS}
            self.tagged = {rid for rid, e in items if e[TAGS]}
            usable: dict[Any, list[tuple[str, str]]] = {}
            for e in entries.values():
                if e[FLAGS] & F_USABLE:
                    usable.setdefault(e[STAGE], []).append((str(e[FINISHED] or ""), str(e[RUN] or "")))
            for runs in usable.values():
                runs.sort()
            self.usable = usable
            self.counts = Counter(_sig(e) for e in entries.values())
            by_version = self.by_version
            for rid, e in items:
                members = by_version.get(e[VERSION])
                if members is None:
                    members = by_version[e[VERSION]] = set()
                members.add(rid)
            pruns = self.pruns
            for key in self.created:
                prun = entries[key[1]][PRUN]
                if not prun:
                    continue
                current = pruns.get(prun)
                if current is None:
                    pruns[prun] = key[1]
                elif isinstance(current, str):
                    pruns[prun] = [(entries[current][CREATED], current), key]
                else:
                    current.append(key)
        finally:
            if enabled:
                gc.enable()

    def refresh(self, store: Store, *, locked: bool = False) -> bool:
        """Bring the orders up to date with the index chunks as last committed; False when the index
        and the records directory disagree on the count.

        Lock-free, a read can fall between the renames of another process's commit (the index
        renamed, the records directory not yet), so a disagreement is only damage when it is still
        there under the project lock (``locked``), where no commit is half done: then StoreError."""
        ws = self.workspace
        records = store.table("records", part(ws))
        numbers = list(records.shard_numbers()) if isinstance(records, ShardedTable) else [0]
        fresh: dict[int, Mapping[str, Entry]] = {}
        folder = f"{store.root}/ws/{ws}{INDEX_MARK}"
        idents: dict[int, tuple[int, int, int] | None] = {}
        for number in numbers:
            # A plain stat per chunk: one that did not change is not looked up in the store at all.
            try:
                st = os.stat(f"{folder}{number:04d}.json")
                idents[number] = (st.st_ino, st.st_size, st.st_mtime_ns)
            except FileNotFoundError:
                idents[number] = None
            if idents[number] is not None and idents[number] == self.idents.get(number) and number in self.chunks:
                fresh[number] = self.chunks[number]
                continue
            try:
                fresh[number] = chunk_rows({TABLE: store.table(TABLE, chunk_partition(ws, number)).raw()})
            except StoreError as exc:
                raise damaged(store, ws, exc.message) from exc
        self.idents = idents
        if not self.chunks:
            self._bulk(fresh)
        for number, chunk in fresh.items():
            old = self.chunks.get(number)
            if old is chunk or not self.chunks:
                continue
            old = old or {}
            for rid, e in chunk.items():
                before = old.get(rid)
                if before is e or before == e:
                    continue
                if before is not None:
                    self._remove(rid, before)
                self._add(rid, e)
            for rid in old.keys() - chunk.keys():
                self._remove(rid, old[rid])
        for number in self.chunks.keys() - fresh.keys():
            for rid, e in self.chunks[number].items():
                self._remove(rid, e)
        self.chunks = fresh
        if len(self.entries) != records.count_raw() and not locked:
            return False
        if len(self.entries) != records.count_raw():
            missing = [n for n in numbers if not path_of(store, ws, n).exists()]
            what = (f"{path_of(store, ws, missing[0])} is missing" if missing else
                    f"it lists {len(self.entries)} records, the workspace has {records.count_raw()}")
            self._reset()  # start over from the files once they are repaired
            raise damaged(store, ws, what)
        return True

    # ----------------------------------------------------------------- queries
    def page(self, filters: Filters, sort_by: str, desc: bool, include_supporting: bool, offset: int,
             limit: int) -> tuple[list[str], int]:
        """(record ids of the page, total matches) for list_history."""
        base = self.created if include_supporting else self.rows
        order: Iterator[str]
        if sort_by == "created":
            order = (rid for _, rid in (reversed(base) if desc else base))
        else:
            order = self._by_value(base, desc, include_supporting)
        ids: list[str] = []
        skip = offset
        entries = self.entries
        for rid in order:
            if filters.keep(entries[rid]):
                if skip:
                    skip -= 1
                    continue
                ids.append(rid)
                if len(ids) == limit:
                    break
        return ids, self.total(filters, include_supporting)

    def _by_value(self, base: list[tuple[str, str]], desc: bool, include_supporting: bool) -> Iterator[str]:
        entries = self.entries
        for _, _, rid in reversed(self.valued) if desc else self.valued:
            if include_supporting or is_row(entries[rid]):
                yield rid
        for _, rid in reversed(base) if desc else base:  # records without a value go last
            if entries[rid][VALUE] is None:
                yield rid

    def total(self, filters: Filters, include_supporting: bool) -> int:
        entries = self.entries

        def counted(rid: str) -> bool:
            e = entries[rid]
            return (include_supporting or is_row(e)) and filters.keep(e)

        if filters.tagged is not None and filters.tagged is not False:
            return sum(1 for rid in self.tagged if counted(rid))
        if filters.min_value is not None:
            start = bisect_left(self.valued, (filters.min_value,))
            return sum(1 for _, _, rid in self.valued[start:] if counted(rid))
        total = sum(n for sig, n in self.counts.items()
                    if (include_supporting or sig[0]) and filters.sig_matches(sig))
        excluded: set[str] = set()
        for version in filters.pruned:
            excluded |= self.by_version.get(version, set())
        if filters.tagged is False:
            excluded |= self.tagged
        for rid in excluded:
            e = entries.get(rid)
            if e is not None and (include_supporting or is_row(e)) and filters.simple(e):
                total -= 1
        return total

    def blocking_oldest_first(self) -> list[tuple[str, str]]:
        """(record id, run id) of the runs holding the finalization gate, oldest finished first."""
        return [(rid, key[1]) for rid, key in sorted(self.blocking.items(), key=lambda kv: kv[1])]

    def previous_result(self, created: str, run_id: str, stage: Any) -> str | None:
        """The run id of the last finalized result with a value of ``stage`` created before (created, run_id)."""
        i = bisect_left(self.results, (created, run_id))
        for j in range(i - 1, -1, -1):
            _, other, rid = self.results[j]
            e = self.entries[rid]
            if e[STAGE] == stage and e[FLAGS] & F_VALUED:
                return other
        return None

    def pipeline_members(self, prun: str) -> list[str]:
        """Record ids of a pipeline run's records, in creation order."""
        current = self.pruns.get(prun)
        if current is None:
            return []
        return [current] if isinstance(current, str) else [rid for _, rid in current]

    def latest_runs(self, stage: str) -> tuple[str | None, str | None]:
        """(run id of the latest finished usable run of ``stage``, run id of its newest run of any state)."""
        usable = self.usable.get(stage)
        latest = next((self.entries[rid][RUN] for _, rid in reversed(self.created)
                       if self.entries[rid][STAGE] == stage and self.entries[rid][RUN]), None)
        return (usable[-1][1] if usable else None), latest

    def newest_runs(self, count: int) -> list[str]:
        """Record ids of the newest ``count`` result run records (no checkpoints, no supporting stages)."""
        out: list[str] = []
        for _, rid in reversed(self.rows):
            if self.entries[rid][TYPE] == "run":
                out.append(rid)
                if len(out) == count:
                    break
        return out

    def checkpoint_of(self, version: str) -> str | None:
        return next((rid for rid in self.by_version.get(version, ()) if self.entries[rid][TYPE] == "checkpoint"),
                    None)


_lock = threading.Lock()
_indexes: dict[tuple[str, str], HistoryIndex] = {}


@contextmanager
def reading(store: Store, workspace: str) -> Iterator[HistoryIndex]:
    """The up-to-date index of ``workspace``, its lock held for the ``with`` block."""
    key = (str(store.root), workspace)
    with _lock:
        index = _indexes.get(key)
        if index is None:
            index = _indexes[key] = HistoryIndex(workspace)
    index.lock.acquire()
    try:
        if not index.refresh(store):
            index.lock.release()  # the project lock first (a transaction's order), never the other way round
            try:
                with store.lock(), index.lock:
                    index.refresh(store, locked=True)
            finally:
                index.lock.acquire()
        yield index
    finally:
        index.lock.release()


def metric_of(entry: Entry) -> tuple[str, float | None, str] | None:
    """The primary metric (name, value, final|auto) an entry holds for its run."""
    if entry[METRIC] is None:
        return None
    return str(entry[METRIC]), entry[VALUE], str(entry[SOURCE])
