"""The only module that imports tinydb.

TinyDB gives us its JSON document layout and query API. Its default
behaviour (rewrite the whole file and rebuild the table dict on every write,
cache the next id forever) does not survive several processes, so we bind
each table to an in-memory partition owned by a transaction: writes mutate a
copy-on-write working set, and the transaction writes each changed file once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tinydb import Query
from tinydb.storages import Storage
from tinydb.table import Document, Table

from goldfish.errors import Conflict, NotFound

Doc = dict[str, Any]


class PartitionStorage(Storage):
    """Holds one partition's tables in memory; never touches the disk itself."""

    def __init__(self, tables: dict[str, dict[str, Doc]], *, writable: bool):
        # Shallow copy of the top level: the cached snapshot other readers see stays untouched.
        self.tables: dict[str, dict[str, Doc]] = dict(tables)
        self.base = tables  # as read: a commit hook tells changed documents by identity (replaced, never mutated)
        self.writable = writable
        self.copied: set[str] = set()
        self.dirty = False

    def read(self) -> dict[str, dict[str, Doc]]:
        return self.tables

    def write(self, data: dict[str, dict[str, Any]]) -> None:  # pragma: no cover - never called
        raise RuntimeError("PartitionStorage is written through StoreTable only")

    def own_table(self, name: str) -> dict[str, Doc]:
        """Return a table dict this transaction may mutate (copied on first write)."""
        if not self.writable:
            raise RuntimeError("read-only view: open a store.transaction() to write")
        if name not in self.copied:
            self.tables[name] = dict(self.tables.get(name, {}))
            self.copied.add(name)
        self.dirty = True
        return self.tables[name]


class StoreTable(Table):
    """A TinyDB table with string ids and copy-on-write, replace-not-mutate documents.

    Every document also carries its id under ``"id"``. Returned documents are
    fresh shallow copies; nested values must be treated as read-only.
    """

    document_id_class = str  # type: ignore[assignment]
    _storage: PartitionStorage
    _next_id: int | None  # type: ignore[assignment]

    # -- ids ---------------------------------------------------------------
    def _get_next_id(self) -> str:
        # ``_next_id`` starts as None in every transaction (a new table object
        # over freshly re-read data), so two processes never reuse a cached id.
        if self._next_id is None:
            numeric = [int(k) for k in self._read_table() if k.isdigit()]
            self._next_id = max(numeric, default=0) + 1
        next_id = self._next_id
        self._next_id = next_id + 1
        return str(next_id)

    def _update_table(self, updater: Callable[[dict[str, Doc]], None]) -> None:  # type: ignore[override]
        updater(self._storage.own_table(self.name))
        self.clear_cache()

    # TinyDB's update/upsert mutate documents in place, which would leak into
    # snapshots held by lock-free readers. Use put/patch instead.
    def update(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("use StoreTable.patch() or put(): documents are replaced, never mutated")

    def upsert(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("use StoreTable.put(): documents are replaced, never mutated")

    # -- reads -------------------------------------------------------------
    def get_doc(self, doc_id: str) -> Doc | None:
        raw = self._read_table().get(doc_id)
        return dict(raw) if raw is not None else None

    def require(self, doc_id: str, *, what: str = "document", fix: str | None = None) -> Doc:
        doc = self.get_doc(doc_id)
        if doc is None:
            raise NotFound(f"{what} {doc_id!r} not found.", fix=fix)
        return doc

    def has(self, doc_id: str) -> bool:
        return doc_id in self._read_table()

    def ids(self) -> list[str]:
        return list(self._read_table().keys())

    def docs(self) -> list[Doc]:
        return [dict(d) for d in self._read_table().values()]

    def raw(self) -> Mapping[str, Doc]:
        """The stored documents by id, uncopied (read-only use). The same object until the table
        changes, so a caller may cache what it derives from it, keyed on its identity."""
        return self._read_table()  # type: ignore[return-value]

    def iter_raw(self) -> Iterator[Doc]:
        """Iterate stored documents without copying (read-only use, hot paths)."""
        return iter(self._read_table().values())  # type: ignore[arg-type]

    def where(self, **equals: Any) -> list[Doc]:
        """Documents whose fields equal every given value (TinyDB query, cached per table)."""
        if not equals:
            return self.docs()
        conds = [Query()[key] == value for key, value in equals.items()]
        q = conds[0]
        for cond in conds[1:]:
            q = q & cond
        return [dict(d) for d in self.search(q)]

    def find(self, predicate: Callable[[Mapping[str, Any]], bool]) -> list[Doc]:
        return [dict(d) for d in self._read_table().values() if predicate(d)]

    def count_raw(self) -> int:
        return len(self._read_table())

    # -- writes ------------------------------------------------------------
    def add(self, doc: Mapping[str, Any], doc_id: str | None = None) -> str:
        """Insert a new document; ``doc_id`` None allocates the next integer id."""
        new_id = doc_id if doc_id is not None else self._get_next_id()
        if self.has(new_id):
            raise Conflict(f"{self.name} {new_id!r} already exists.")
        body = dict(doc)
        body["id"] = new_id
        self.insert(Document(body, doc_id=new_id))  # type: ignore[arg-type]
        return new_id

    def put(self, doc_id: str, doc: Mapping[str, Any]) -> None:
        body = dict(doc)
        body["id"] = doc_id
        self._storage.own_table(self.name)[doc_id] = body
        self.clear_cache()

    def patch(self, doc_id: str, fields: Mapping[str, Any]) -> Doc:
        current = self._read_table().get(doc_id)
        if current is None:
            raise NotFound(f"{self.name} {doc_id!r} not found.")
        body = {**current, **fields, "id": doc_id}
        self._storage.own_table(self.name)[doc_id] = body
        self.clear_cache()
        return dict(body)

    def delete(self, doc_id: str) -> bool:
        if doc_id not in self._read_table():
            return False
        self._storage.own_table(self.name).pop(doc_id)
        self.clear_cache()
        return True

    def cas(self, doc_id: str, field: str, expected: Any, fields: Mapping[str, Any]) -> Doc | None:
        """Compare-and-set: apply ``fields`` only if ``doc[field]`` is ``expected``
        (or in it, when ``expected`` is a set/tuple/list). Returns the new doc or None."""
        current = self._read_table().get(doc_id)
        if current is None:
            raise NotFound(f"{self.name} {doc_id!r} not found.")
        value = current.get(field)
        ok = value in expected if isinstance(expected, (set, frozenset, tuple, list)) else value == expected
        if not ok:
            return None
        return self.patch(doc_id, fields)


def make_table(storage: PartitionStorage, name: str) -> StoreTable:
    return StoreTable(storage, name, cache_size=16)
