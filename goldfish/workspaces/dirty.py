"""Is a mounted slot dirty? Its files compared with the tree of the commit it was last synced to.

The baseline (``git ls-tree`` of the mount's head) and a stat cache of the slot live in
``<dev>/.goldfish/mounts/<slot>.json``, out of the agent's reach. Only files whose stat changed
(or that changed too recently to trust a timestamp) are re-hashed, so a check of an unchanged
1,000-file slot reads no file contents and spawns no process.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from goldfish.fsutil import atomic_write
from goldfish.workspaces.slots import IgnoreRules, compare, scan_slot
from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.project import Project

# How many changed paths a mount row keeps (the count is always exact).
MAX_CHANGED_LISTED = 50


@dataclass
class SlotChanges:
    changed: list[tuple[str, str]] = field(default_factory=list)  # (status, path)
    large: dict[str, int] = field(default_factory=dict)
    missing: bool = False  # the slot directory is gone

    @property
    def dirty(self) -> bool:
        return bool(self.changed)

    def row_fields(self) -> dict[str, Any]:
        return {
            "dirty": None if self.missing else self.dirty,
            "changed_count": len(self.changed),
            "changed_files": [{"path": shown(p), "status": s} for s, p in self.changed[:MAX_CHANGED_LISTED]],
        }


def shown(path: str) -> str:
    """A path as valid UTF-8 text (names that are not UTF-8 get backslash escapes)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class DirtyChecker:
    """Computes slot changes for the watcher and for ``status()`` when no watcher runs."""

    def __init__(self, project: Project):
        self.project = project
        self._rules: dict[str, IgnoreRules] = {}
        self._memory: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def cache_path(self, slot: str) -> Path:
        return self.project.gf_dir / "mounts" / f"{slot}.json"

    def rules(self, slot: str) -> IgnoreRules:
        rules = self._rules.get(slot)
        if rules is None or rules.root != self.project.slot_path(slot):
            rules = self._rules[slot] = IgnoreRules(self.project.slot_path(slot))
        return rules

    def _load(self, slot: str) -> dict[str, Any]:
        path = self.cache_path(slot)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return {}
        ident = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._memory.get(slot)
        if cached is not None and cached[0] == ident:
            return cached[1]
        try:
            data = orjson.loads(path.read_bytes())
        except (orjson.JSONDecodeError, FileNotFoundError):
            return {}  # only a cache: rebuilt from git and the slot
        self._memory[slot] = (ident, data)
        return data if isinstance(data, dict) else {}

    def _save(self, slot: str, data: dict[str, Any]) -> None:
        path = self.cache_path(slot)
        try:
            blob = orjson.dumps(data)
        except orjson.JSONEncodeError:
            return  # a file name that is not UTF-8: go without the cache (it is only a cache)
        atomic_write(path, blob, durable=False)
        st = os.stat(path)
        self._memory[slot] = ((st.st_ino, st.st_size, st.st_mtime_ns), data)

    def changes(self, slot: str, mount: dict[str, Any]) -> SlotChanges:
        """Compare the slot with the tree of ``mount["head"]``."""
        with self._lock:
            root = self.project.slot_path(slot)
            if not root.is_dir():
                return SlotChanges(missing=True)
            data = self._load(slot)
            fresh = data.get("mount_id") != mount.get("mount_id")
            if fresh:
                data = {"mount_id": mount.get("mount_id"), "head": None, "tree": {}, "stat": {}}
            changed_cache = fresh
            if data.get("head") != mount["head"]:
                tree = self.project.dev_repo.ls_tree(mount["head"])
                data = {**data, "head": mount["head"], "tree": {p: list(k) for p, k in tree.items()}}
                changed_cache = True
            max_bytes = int(self.project.config.workspace.max_file_mb * 1_000_000)
            scan = scan_slot(root, max_bytes=max_bytes, rules=self.rules(slot), cache=data.get("stat") or {})
            if scan.cache_changed or len(scan.cache) != len(data.get("stat") or {}):
                data = {**data, "stat": scan.cache}
                changed_cache = True
            if changed_cache:
                self._save(slot, data)
            base = {p: (k[0], k[1]) for p, k in data["tree"].items()}
            return SlotChanges(changed=compare(scan.files, base), large=scan.large)

    def seed(self, slot: str, mount: dict[str, Any], tree: dict[str, tuple[str, str]]) -> None:
        """Record the per-file blob ids of a fresh mount (no stat cache yet)."""
        with self._lock:
            self._save(slot, {"mount_id": mount["mount_id"], "head": mount["head"],
                              "tree": {p: list(k) for p, k in tree.items()}, "stat": {}})

    def refresh(self, slot: str) -> dict[str, Any] | None:
        """Recompute a mounted slot's dirty state and store it in its mount row (if it changed)."""
        store = self.project.store
        with store.transaction() as tx:
            mounts = tx.table("mounts")
            row = mounts.get_doc(slot)
            if row is None:
                return None
            fields = self.changes(slot, row).row_fields()
            if any(row.get(k) != v for k, v in fields.items()):
                row = mounts.patch(slot, {**fields, "dirty_checked_at": now_iso()})
            return row

    def forget(self, slot: str) -> None:
        with self._lock:
            self._memory.pop(slot, None)
            self._rules.pop(slot, None)
            self.cache_path(slot).unlink(missing_ok=True)
