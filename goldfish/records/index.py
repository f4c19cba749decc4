"""The history index: one small derived row per experiment record, kept beside the records.

list_history, the finalization queue, the trend, comparisons and STATE.md need orders and filters
over a whole workspace ("newest result rows", "best values", "runs the gate counts"). Reading every
record and run for that costs the whole history; this index holds, per record, just the fields
those reads sort and filter on (what its run adds included), so they read the index and then only
the documents of the page they return.

Layout: ``ws/<workspace>.hist-NNNN.json`` holds the entries of the records in records shard ``NNNN``
(the same numbering, so a record's entry is found through the records directory). It sits in the
directory of the shards it indexes, so a commit that writes both fsyncs one directory, not two. An entry is a
list (see the slot names below), keyed by record id; the chunk stores them as one document,
``{"hist": {"entries": {"id": "entries", "rows": {record id: entry}}}}``, which keeps them compact.

Maintenance: :func:`maintain` is a store commit hook. It finds the records and stage runs the
transaction changed (documents are replaced, never mutated, so a changed one is a new object),
derives their entries again and writes the chunks that changed in the same transaction: a write
touches its shard and the index entries it changes, never the history. The index is derived:
:func:`verify` compares it with the rows and :func:`rebuild` writes it from them (``goldfish
doctor`` does both; the store migration to schema 4 builds it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from goldfish.errors import StoreError
from goldfish.fsutil import atomic_write
from goldfish.records.refs import part, primary_metric
from goldfish.records.roles import RESULT, SUPPORTING, role_of
from goldfish.runs.gate import blocks_gate

from goldfish.store import ShardedTable

if TYPE_CHECKING:
    from goldfish.store import Store, Transaction

INDEX_MARK = ".hist-"  # ws/<workspace>.hist-NNNN: the store's name for a derived index partition
TABLE = "hist"
DOC = "entries"

# Slots of an entry.
CREATED, TYPE, STAGE, VERSION, GROUP, TAGS, PRUN, RUN, ROLE, METRIC, VALUE, SOURCE, FLAGS, RUN_CREATED, FINISHED = \
    range(15)
# FLAGS bits: its run is finalized; it is a finalized result (the trend, comparisons); that result has a
# value; its run holds the finalization gate; its run completed and was not judged a miss (its outputs
# feed a later run's inputs, runs/inputs.py).
F_FINALIZED, F_RESULT, F_VALUED, F_BLOCKS, F_USABLE = 1, 2, 4, 8, 16

Entry = list[Any]


def chunk_partition(workspace: str, number: int) -> str:
    return f"ws/{workspace}{INDEX_MARK}{number:04d}"


def chunk_rows(tables: Mapping[str, Any]) -> Mapping[str, Entry]:
    """The entries of a chunk partition's tables (empty when it has none)."""
    doc = (tables.get(TABLE) or {}).get(DOC) or {}
    rows = doc.get("rows") if isinstance(doc, Mapping) else None
    return rows if isinstance(rows, Mapping) else {}


def _chunk_tables(rows: Mapping[str, Entry]) -> dict[str, Any]:
    return {TABLE: {DOC: {"id": DOC, "rows": rows}}}


def _num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def entry_of(record: Mapping[str, Any], run: Mapping[str, Any] | None) -> Entry:
    """The index entry of a record and its stage run (None for a checkpoint)."""
    pm = primary_metric(run)
    value = pm[1] if pm else None
    if value is not None and not math.isfinite(value):
        value = None  # NaN/inf are stored as null (JSON has neither) and do not sort: no value to order by
    flags = 0
    run_created = finished = None
    if run is not None:
        if run.get("results_status") == "finalized":
            flags |= F_FINALIZED
            if role_of(run) == RESULT:
                flags |= F_RESULT
                if _num((run.get("results_final") or {}).get("value")):
                    flags |= F_VALUED
        if blocks_gate(dict(run)):
            flags |= F_BLOCKS
        if run.get("state") == "completed" and run.get("ml_outcome") != "miss":
            flags |= F_USABLE
        if flags & (F_BLOCKS | F_USABLE):
            finished = run.get("finished_at")
        run_created = run.get("created_at")
    tags = record.get("tags")
    return [
        str(record.get("created_at") or ""), record.get("type", "run"), record.get("stage"), record.get("version"),
        record.get("experiment_group"), list(tags) if tags else None, record.get("pipeline_run_id"),
        record.get("stage_run_id"), SUPPORTING if role_of(record) == SUPPORTING else RESULT,
        pm[0] if pm else None, value, pm[2] if pm else None, flags,
        None if run_created == record.get("created_at") else run_created, finished,
    ]


def run_created(entry: Entry) -> str:
    """The created_at of the entry's run (stored only when it differs from the record's)."""
    return str(entry[RUN_CREATED] if entry[RUN_CREATED] is not None else entry[CREATED])


# ----------------------------------------------------------------------------- maintenance


def _changed_ids(old: Mapping[str, Any], new: Mapping[str, Any], table: str) -> Iterator[str]:
    """Record ids whose entry may change: the records replaced or removed, the records of the runs so."""
    for doc_id, doc in new.items():
        if old.get(doc_id) is not doc:
            yield doc_id if table == "records" else str(doc.get("record_id") or "")
    for doc_id in old.keys() - new.keys():
        yield doc_id if table == "records" else str(old[doc_id].get("record_id") or "")


def _shard_number(tx: Transaction, workspace: str, record_id: str) -> int | None:
    """The records shard of ``record_id`` in ``tx`` (or before it, for a record deleted in it)."""
    head = tx._storage(part(workspace))
    if "records" not in tx.store.sharding:
        return 0
    key = "_dir.records"
    number = head.tables.get(key, {}).get(record_id)
    if number is None:
        number = head.base.get(key, {}).get(record_id)
    return None if number is None else int(number)  # type: ignore[call-overload]


def maintain(tx: Transaction) -> None:
    """Commit hook: update the index entries of every record whose record or run ``tx`` changed."""
    touched: dict[str, set[str]] = {}
    for partition, storage in list(tx._parts.items()):
        if not storage.dirty or not partition.startswith("ws/"):
            continue
        workspace = partition[3:].split(".", 1)[0]
        for table in ("records", "runs"):
            if table in storage.copied:
                ids = touched.setdefault(workspace, set())
                ids.update(_changed_ids(storage.base.get(table) or {}, storage.tables.get(table) or {}, table))
    for workspace, ids in touched.items():
        ids.discard("")
        if ids:
            _update(tx, workspace, ids)
    # A multi-file commit renames its files in this order. Index chunks go first: a lock-free reader
    # that has seen a changed record or run then also sees its index entry (never a newer document
    # beside an older entry, e.g. a run shown terminal but not yet counted by the gate).
    if any(INDEX_MARK in p for p in tx._parts):
        tx._parts = dict(sorted(tx._parts.items(), key=lambda item: INDEX_MARK not in item[0]))


def _update(tx: Transaction, workspace: str, ids: set[str]) -> None:
    records, runs = tx.table("records", part(workspace)), tx.table("runs", part(workspace))
    by_chunk: dict[int, list[str]] = {}
    for record_id in ids:
        number = _shard_number(tx, workspace, record_id)
        if number is not None:  # None: a run whose record is not written (yet); its record's write indexes both
            by_chunk.setdefault(number, []).append(record_id)
    for number, chunk_ids in sorted(by_chunk.items()):
        storage = tx._storage(chunk_partition(workspace, number))
        current = chunk_rows(storage.tables)
        rows: dict[str, Entry] | None = None
        for record_id in chunk_ids:
            record = records.get_doc(record_id)
            if record is None:
                if record_id in current:
                    rows = rows if rows is not None else dict(current)
                    rows.pop(record_id, None)
                continue
            run_id = record.get("stage_run_id")
            entry = entry_of(record, runs.get_doc(str(run_id)) if run_id else None)
            if entry != current.get(record_id):
                rows = rows if rows is not None else dict(current)
                rows[record_id] = entry
        if rows is not None:
            storage.own_table(TABLE)[DOC] = _chunk_tables(rows)[TABLE][DOC]


# ----------------------------------------------------------------------------- verify / rebuild


def _rows(store: Store, workspace: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(records shard number, its documents), one shard at a time."""
    records = store.table("records", part(workspace))
    if not isinstance(records, ShardedTable):
        yield 0, records.raw()
        return
    for number in records.shard_numbers():
        yield number, records.shard_raw(number)


def expected(store: Store, workspace: str) -> Iterator[tuple[int, dict[str, Entry]]]:
    """The index chunks the rows of ``workspace`` make (number, entries), one at a time."""
    runs = store.table("runs", part(workspace))
    for number, docs in _rows(store, workspace):
        chunk: dict[str, Entry] = {}
        for record_id, record in docs.items():
            run_id = record.get("stage_run_id")
            chunk[record_id] = entry_of(record, runs.get_doc(str(run_id)) if run_id else None)
        yield number, chunk


def path_of(store: Store, workspace: str, number: int) -> Any:
    return store.root / f"{chunk_partition(workspace, number)}.json"


def _stored(store: Store, workspace: str, number: int) -> tuple[dict[str, Any] | None, str | None]:
    """(the chunk's entries, or None with what is wrong with its file)."""
    path = path_of(store, workspace, number)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, f"{path} is missing"
    try:
        entries = orjson.loads(raw)[TABLE][DOC]["rows"]
        if not isinstance(entries, dict):
            raise TypeError(TABLE)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None, f"{path} is not a valid index file"
    return entries, None


def _extra_chunks(store: Store, workspace: str, numbers: set[int]) -> list[Any]:
    prefix = f"{workspace}{INDEX_MARK}"
    return [p for p in (store.root / "ws").glob(f"{prefix}*.json")
            if not (p.stem[len(prefix):].isdigit() and int(p.stem[len(prefix):]) in numbers)]


def verify(store: Store, workspace: str, *, repair: bool = False) -> list[str]:
    """What differs between the stored index of ``workspace`` and its rows (empty: in order).
    With ``repair``, each wrong chunk is rewritten from the rows (under the project lock)."""
    problems: list[str] = []
    with store.lock():
        numbers: set[int] = set()
        for number, want in expected(store, workspace):
            numbers.add(number)
            have, wrong = _stored(store, workspace, number)
            if wrong is None and have != want:
                diff = sum(1 for k in want.keys() | (have or {}).keys() if (have or {}).get(k) != want.get(k))
                wrong = f"{path_of(store, workspace, number)} has {diff} stale entr{'y' if diff == 1 else 'ies'}"
            if wrong is not None:
                problems.append(wrong)
                if repair:
                    _write(store, workspace, number, want)
        for path in _extra_chunks(store, workspace, numbers):
            problems.append(f"{path} indexes no records shard")
            if repair:
                path.unlink()
    return problems


def _write(store: Store, workspace: str, number: int, entries: dict[str, Entry]) -> None:
    path = path_of(store, workspace, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, orjson.dumps(_chunk_tables(entries)))


def rebuild(store: Store, workspace: str) -> int:
    """Write the whole index of ``workspace`` from its rows; returns the number of chunks written."""
    with store.lock():
        count = 0
        numbers: set[int] = set()
        for number, entries in expected(store, workspace):
            _write(store, workspace, number, entries)
            numbers.add(number)
            count += 1
        for path in _extra_chunks(store, workspace, numbers):
            path.unlink()
    return count


def damaged(store: Store, workspace: str, what: str) -> StoreError:
    """The error a read raises when the index of ``workspace`` cannot be used."""
    return StoreError(
        f"The history index of workspace {workspace} is damaged: {what}.",
        fix="Run `goldfish doctor`: it checks the indexes and rebuilds them from the records and runs.")


def doctor_check(project: Any) -> tuple[bool, str]:
    """``goldfish doctor``: verify every workspace's history index against its rows and rebuild the
    chunks that differ. (ok, what was found and done)."""
    store = project.store
    workspaces = [p.split("/", 1)[1] for p in store.partitions("ws")]
    try:
        repaired = {ws: found for ws in workspaces if (found := verify(store, ws, repair=True))}
        left = {ws: found for ws in repaired if (found := verify(store, ws))}
    except StoreError as exc:
        return False, f"could not check the history indexes: {exc.message} Fix: {exc.fix}"
    if left:
        return False, "still wrong after a rebuild: " + "; ".join(f"{ws}: {', '.join(p[:3])}" for ws, p in left.items())
    if not repaired:
        return True, f"the history index of {len(workspaces)} workspace(s) matches their records and runs"
    shown = "; ".join(f"{ws}: {', '.join(p[:3])}{' …' if len(p) > 3 else ''}" for ws, p in repaired.items())
    return True, f"rebuilt from the records and runs ({shown})"
