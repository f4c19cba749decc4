"""A DataTable refreshed by row key: only rows that appeared or vanished and cells that changed
are touched, so a refresh of an unchanged 10,000-row table costs a dict comparison per row and
the cursor and scroll position stay where the person left them."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual._two_way_dict import TwoWayDict
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

REBUILD_ABOVE = 200


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
        for key, cells in rows.items():
            new = tuple(cells)
            old = shown.get(key)
            if old is None:
                self.add_row(*new, key=key)
                shown[key] = new
                added.append(key)
            elif old != new:
                for col, a, b in zip(self._column_keys, old, new, strict=False):
                    if a != b:
                        self.update_cell(key, col, b)  # fixed column widths: no re-measure
                        stats.updated_cells += 1
                shown[key] = new
        stats.added = len(added)
        wanted = list(rows)
        natural = [k for k in self._order if k in rows] + added if (gone or added) else self._order
        if natural != wanted:
            self._reorder(wanted)
            stats.reordered = True
        self._order = wanted
        self.last_sync = stats
        return stats

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
