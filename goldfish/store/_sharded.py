"""Tables split over several files so one write never rewrites a whole history.

A sharded table (``runs``, ``records``, … — the policy is stamped in the store) keeps its
documents in shard partitions ``<partition>.<table>.<NNNN>.json`` of at most ``size``
documents each, filled in creation order: old shards go cold and are never rewritten, so a
write costs one small file and a reader re-parses only the shard that changed. The head
partition keeps a directory (document id → shard number) and the number of the shard being
filled. The API is the subset of :class:`StoreTable` the services use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from goldfish.errors import Conflict, NotFound, StoreError
from goldfish.store._tiny import Doc, PartitionStorage, StoreTable

DIR_PREFIX = "_dir."
LAST_TABLE = "_shards"


class Table(Protocol):
    """The table API services use; :class:`StoreTable` and :class:`ShardedTable` both provide it."""

    @property
    def name(self) -> str: ...

    def get_doc(self, doc_id: str) -> Doc | None: ...
    def require(self, doc_id: str, *, what: str = "document", fix: str | None = None) -> Doc: ...
    def has(self, doc_id: str) -> bool: ...
    def ids(self) -> list[str]: ...
    def iter_raw(self) -> Iterator[Doc]: ...
    def docs(self) -> list[Doc]: ...
    def find(self, predicate: Callable[[Mapping[str, Any]], bool]) -> list[Doc]: ...
    def where(self, **equals: Any) -> list[Doc]: ...
    def count_raw(self) -> int: ...
    def raw(self) -> Mapping[str, Doc]: ...
    def add(self, doc: Mapping[str, Any], doc_id: str | None = None) -> str: ...
    def put(self, doc_id: str, doc: Mapping[str, Any]) -> None: ...
    def patch(self, doc_id: str, fields: Mapping[str, Any]) -> Doc: ...
    def delete(self, doc_id: str) -> bool: ...
    def cas(self, doc_id: str, field: str, expected: Any, fields: Mapping[str, Any]) -> Doc | None: ...


def _dangling(doc_id: str, number: int) -> StoreError:
    return StoreError(
        f"Store damage: the shard directory points {doc_id!r} at shard "
        f"{number:04d}, which does not hold it.",
        fix="Run `goldfish doctor` to see every damaged file, then `goldfish doctor --repair` "
            "(restores from the latest backup and replays the event logs written since) or `goldfish restore latest`.",
        details={"document": doc_id, "shard": number})


def _missing(damage: Callable[[str, int], Doc | None] | None, doc_id: str, number: int) -> Doc | None:
    """A document the directory names but its shard lacks: ``damage`` either finds it (a lock-free
    reader saw a commit half-way) or raises the damage error; without one it is damage."""
    if damage is None:
        raise _dangling(doc_id, number)
    doc = damage(doc_id, number)
    return dict(doc) if doc is not None else None


def shard_partition(partition: str, table: str, number: int) -> str:
    return f"{partition}.{table}.{number:04d}"


class MergedView(Mapping[str, Doc]):
    """Read-only id → document mapping across shards, in creation order."""

    def __init__(self, directory: Mapping[str, int], shards: list[Mapping[str, Doc]],
                 damage: Callable[[str, int], Doc | None] | None = None):
        self._dir = directory
        self._shards = shards
        self._damage = damage

    def __getitem__(self, key: str) -> Doc:
        number = self._dir[key]
        try:
            return self._shards[number][key]
        except (KeyError, IndexError):
            pass
        doc = _missing(self._damage, key, number)
        if doc is None:  # deleted by a commit this reader saw half of
            raise KeyError(key)
        return doc

    def __iter__(self) -> Iterator[str]:
        return iter(self._dir)

    def __len__(self) -> int:
        return len(self._dir)

    def __contains__(self, key: object) -> bool:
        return key in self._dir


class ShardedTable:
    """One logical table over a directory in the head partition and N shard partitions."""

    def __init__(self, name: str, size: int, head: PartitionStorage,
                 shard: Callable[[int], StoreTable], view_cache: Callable[[list[Any]], MergedView] | None = None,
                 damage: Callable[[str, int], Doc | None] | None = None):
        self.name = name
        self._damage = damage
        self.size = size
        self._head = head
        self._shard = shard
        self._view_cache = view_cache

    # -- directory -----------------------------------------------------------
    @property
    def _dir(self) -> Mapping[str, int]:
        return self._head.tables.get(DIR_PREFIX + self.name, {})  # type: ignore[return-value]

    def _last(self) -> int:
        entry = self._head.tables.get(LAST_TABLE, {}).get(self.name)
        return int(entry["last"]) if entry else 0

    def _shards(self) -> list[StoreTable]:
        return [self._shard(k) for k in range(self._last() + 1)] if self._dir else []

    def _locate(self, doc_id: str) -> StoreTable | None:
        number = self._dir.get(doc_id)
        return None if number is None else self._shard(number)

    # -- reads ---------------------------------------------------------------
    def get_doc(self, doc_id: str) -> Doc | None:
        table = self._locate(doc_id)
        if table is None:
            return None
        doc = table.get_doc(doc_id)
        if doc is None:  # the directory says it exists: a lost document is damage, not "not found"
            return _missing(self._damage, doc_id, self._dir[doc_id])
        return doc

    def require(self, doc_id: str, *, what: str = "document", fix: str | None = None) -> Doc:
        doc = self.get_doc(doc_id)
        if doc is None:
            raise NotFound(f"{what} {doc_id!r} not found.", fix=fix)
        return doc

    def has(self, doc_id: str) -> bool:
        return doc_id in self._dir

    def shard_of(self, doc_id: str) -> int | None:
        """The number of the shard holding ``doc_id`` (None when absent)."""
        return self._dir.get(doc_id)

    def shard_numbers(self) -> range:
        """The numbers of the shards in use (empty when the table is)."""
        return range(self._last() + 1) if self._dir else range(0)

    def shard_raw(self, number: int) -> Mapping[str, Doc]:
        """One shard's documents by id, uncopied (read-only use): a scan that holds one shard at a time."""
        return self._shard(number).raw()

    def ids(self) -> list[str]:
        return list(self._dir)

    def iter_raw(self) -> Iterator[Doc]:
        for table in self._shards():
            yield from table.iter_raw()

    def docs(self) -> list[Doc]:
        return [dict(d) for d in self.iter_raw()]

    def find(self, predicate: Callable[[Mapping[str, Any]], bool]) -> list[Doc]:
        return [dict(d) for d in self.iter_raw() if predicate(d)]

    def where(self, **equals: Any) -> list[Doc]:
        out: list[Doc] = []
        for table in self._shards():
            out.extend(table.where(**equals))
        return out

    def count_raw(self) -> int:
        return len(self._dir)

    def raw(self) -> Mapping[str, Doc]:
        """Uncopied id → document mapping; the same object while no shard changed."""
        shards = [t.raw() for t in self._shards()]
        parts: list[Any] = [self._dir, *shards]
        if self._view_cache is not None:
            return self._view_cache(parts)
        return MergedView(self._dir, shards, self._damage)

    # -- writes --------------------------------------------------------------
    def _allocate(self, doc_id: str) -> StoreTable:
        last = self._last()
        table = self._shard(last)
        if table.count_raw() >= self.size:
            last += 1
            table = self._shard(last)
            self._head.own_table(LAST_TABLE)[self.name] = {"last": last}
        elif self.name not in self._head.tables.get(LAST_TABLE, {}):
            self._head.own_table(LAST_TABLE)[self.name] = {"last": last}
        self._head.own_table(DIR_PREFIX + self.name)[doc_id] = last  # type: ignore[assignment]
        return table

    def add(self, doc: Mapping[str, Any], doc_id: str | None = None) -> str:
        if doc_id is None:
            raise ValueError(f"{self.name} is sharded: documents need explicit ids")
        if doc_id in self._dir:
            raise Conflict(f"{self.name} {doc_id!r} already exists.")
        return self._allocate(doc_id).add(doc, doc_id=doc_id)

    def put(self, doc_id: str, doc: Mapping[str, Any]) -> None:
        table = self._locate(doc_id) or self._allocate(doc_id)
        table.put(doc_id, doc)

    def patch(self, doc_id: str, fields: Mapping[str, Any]) -> Doc:
        table = self._locate(doc_id)
        if table is None:
            raise NotFound(f"{self.name} {doc_id!r} not found.")
        return table.patch(doc_id, fields)

    def delete(self, doc_id: str) -> bool:
        table = self._locate(doc_id)
        if table is None:
            return False
        table.delete(doc_id)
        self._head.own_table(DIR_PREFIX + self.name).pop(doc_id, None)
        return True

    def cas(self, doc_id: str, field: str, expected: Any, fields: Mapping[str, Any]) -> Doc | None:
        table = self._locate(doc_id)
        if table is None:
            raise NotFound(f"{self.name} {doc_id!r} not found.")
        return table.cas(doc_id, field, expected, fields)
