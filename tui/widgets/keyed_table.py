"""A DataTable refreshed by row key: only rows that appeared or vanished and cells that changed
are touched, so a refresh of an unchanged 10,000-row table costs a dict comparison per row and
the cursor and scroll position stay where the person left them."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual._two_way_dict import TwoWayDict
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

REBUILD_ABOVE = 200
# Past this many changed rows in one sync, dropping every cached render costs no more.
PARTIAL_INVALIDATION_MAX = 64


@dataclass
class SyncStats:
    added: int = 0
    removed: int = 0
    updated_cells: int = 0
    reordered: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.updated_cells or self.reordered)


class CellCache:
    """Cells built once per distinct view item: an unchanged item yields the very same tuple, so
    building rows and ``sync``'s comparison cost next to nothing for it. Keeps only the items of
    the latest round."""

    def __init__(self) -> None:
        self._cells: dict[Hashable, tuple[Any, ...]] = {}
        self._next: dict[Hashable, tuple[Any, ...]] = {}

    def get(self, item: Hashable, build: Callable[[], Sequence[Any]]) -> tuple[Any, ...]:
        cells = self._cells.get(item)
        if cells is None:
            cells = tuple(build())
        self._next[item] = cells
        return cells

    def end_round(self) -> None:
        self._cells, self._next = self._next, {}


class KeyedTable(DataTable[Any]):
    """``set_columns`` once, then ``sync(rows)`` with ``{key: cells}`` in display order."""

    DEFAULT_CSS = """
    KeyedTable { height: auto; max-height: 100%; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None, cursor: bool = True) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row" if cursor else "none", zebra_stripes=True)
        self._shown: dict[str, tuple[Any, ...]] = {}
        self._column_keys: list[str] = []
        self._order: list[str] = []
        self.last_sync = SyncStats()

    def set_columns(self, columns: Sequence[tuple[str, str] | tuple[str, str, int]]) -> None:
        """``(label, key)`` or ``(label, key, width)`` per column."""
        for col in columns:
            label, key = col[0], col[1]
            width = col[2] if len(col) > 2 else None
            self.add_column(label, key=key, width=width)
            self._column_keys.append(key)

    @property
    def keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        return self._order[self.cursor_row]

    def select_key(self, key: str) -> bool:
        if key not in self._shown:
            return False
        self.move_cursor(row=self.get_row_index(key))
        return True

    def sync(self, rows: Mapping[str, Sequence[Any]]) -> SyncStats:
        """Make the table show ``rows`` (in their order), touching only what changed."""
        stats = SyncStats()
        shown = self._shown
        gone = [k for k in self._order if k not in rows]
        if len(gone) > REBUILD_ABOVE:
            # remove_row re-indexes every row; past a few hundred removals a rebuild is cheaper.
            self.rebuild(rows)
            stats.added, stats.removed, stats.reordered = len(rows), len(gone), True
            self.last_sync = stats
            return stats
        for key in gone:
            self.remove_row(key)
            del shown[key]
            stats.removed += 1
        added: list[str] = []
        changed: dict[str, dict[str, Any]] = {}
        for key, cells in rows.items():
            new = tuple(cells)
            old = shown.get(key)
            if old is None:
                self.add_row(*new, key=key)
                shown[key] = new
                added.append(key)
            elif old != new:
                changed[key] = {col: b for col, a, b in zip(self._column_keys, old, new, strict=False) if a != b}
                stats.updated_cells += len(changed[key])
                shown[key] = new
        if changed:
            self._update_cells(changed)
        stats.added = len(added)
        wanted = list(rows)
        natural = [k for k in self._order if k in rows] + added if (gone or added) else self._order
        if natural != wanted:
            self._reorder(wanted)
            stats.reordered = True
        self._order = wanted
        self.last_sync = stats
        return stats

    def _update_cells(self, changed: dict[str, dict[str, Any]]) -> None:
        """Write changed cells, then drop the cached renders of those rows only.

        ``DataTable.update_cell`` bumps ``_update_count``, which is part of every render-cache key,
        so one changed cell re-renders every visible row (about 100 ms for a screen of 45 rows of
        rich cells). Here rows are one line high and column widths are fixed, so a changed cell can
        only change its own row's render: the other rows keep their cached lines.
        """
        for key, cells in changed.items():
            data = self._data[RowKey(key)]
            for col, value in cells.items():
                data[ColumnKey(col)] = value
        if len(changed) > PARTIAL_INVALIDATION_MAX:
            self._update_count += 1
            self.refresh()
            return
        stale = {RowKey(k) for k in changed}
        indexes = {self._row_locations.get(k) for k in stale}
        caches: tuple[tuple[Any, int, set[Any]], ...] = (
            (self._cell_render_cache, 0, stale), (self._row_render_cache, 0, stale),
            (self._row_renderable_cache, 1, indexes))
        for cache, slot, wanted in caches:
            keys = cache.keys()  # LRUCache is not iterable itself
            for cache_key in [k for k in keys if k[slot] in wanted]:
                cache.discard(cache_key)
        self._line_cache.clear()  # keyed by screen line; rebuilt from the row cache, cheap
        for index in indexes:
            if index is not None:
                self.refresh_row(index)

    def rebuild(self, rows: Mapping[str, Sequence[Any]]) -> None:
        """Clear and re-add every row (the baseline the benchmark compares ``sync`` with)."""
        self.clear()
        self._shown = {}
        for key, cells in rows.items():
            self.add_row(*cells, key=key)
            self._shown[key] = tuple(cells)
        self._order = list(rows)

    def _reorder(self, keys: list[str]) -> None:
        # What DataTable.sort does once it has an order; sort() cannot see row keys.
        self._row_locations = TwoWayDict({RowKey(k): i for i, k in enumerate(keys)})
        self._update_count += 1
        self.refresh()
