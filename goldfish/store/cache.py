"""The store's read cache, bounded: head partitions stay, shard snapshots are kept least-recently-used.

A process that reads a few records of a long history holds the shards it read, not every shard
it ever touched: once the shard snapshots add up to more than ``limit`` bytes of partition files,
the least recently used ones are dropped (a later read re-parses that shard). Head partitions and
the derived index chunks (``ws/<workspace>.hist-NNNN``) are small and read on every query, so
they are never dropped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

# Partition bytes, not memory: parsed, a shard takes ~4x its file size. 32 MB holds the shards of a few
# pages of history (a metric-sorted page may touch 20 runs shards of ~0.8 MB) — about 130 MB resident.
DEFAULT_LIMIT_BYTES = 32 * 1024 * 1024


def evictable(partition: str) -> bool:
    """Shard partitions (``ws/a.runs.0003``) may be dropped; heads and indexes stay."""
    return "." in partition and ".hist-" not in partition


class BoundedCache(OrderedDict[str, Any]):
    """``partition → snapshot`` with the dict API the store uses (``get``, item assignment)."""

    def __init__(self, limit: int = DEFAULT_LIMIT_BYTES):
        super().__init__()
        self.limit = limit
        self.shard_bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(snap: Any) -> int:
        ident = getattr(snap, "ident", None)
        return int(ident[1]) if ident else 0

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            snap = super().get(key, default)
            if snap is not default:
                self.move_to_end(key)
            return snap

    def __setitem__(self, key: str, snap: Any) -> None:
        with self._lock:
            old = super().get(key)
            if old is not None and evictable(key):
                self.shard_bytes -= self._size(old)
            super().__setitem__(key, snap)
            self.move_to_end(key)
            if not evictable(key):
                return
            self.shard_bytes += self._size(snap)
            if self.shard_bytes <= self.limit:
                return
            for name in [k for k in self if evictable(k)]:
                if self.shard_bytes <= self.limit or name == key:
                    break
                self.shard_bytes -= self._size(super().pop(name))

    def pop(self, key: str, *default: Any) -> Any:
        with self._lock:
            if key not in self:
                if default:
                    return default[0]
                raise KeyError(key)
            snap = super().pop(key)
            if evictable(key):
                self.shard_bytes -= self._size(snap)
            return snap

    def clear(self) -> None:
        with self._lock:
            super().clear()
            self.shard_bytes = 0
