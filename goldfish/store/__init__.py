"""The embedded store: TinyDB JSON partitions under one cross-process lock.

    store = Store(path)
    with store.transaction() as tx:           # project lock held
        runs = tx.table("runs", "ws/lstm")    # partition file ws/lstm.json
        runs.add({...}, doc_id="stage-1a2b3c4d")
        tx.append_event("transitions", {...})
    store.table("runs", "ws/lstm").get_doc("stage-1a2b3c4d")   # lock-free read

* A transaction re-reads only partitions whose file identity (inode, size,
  mtime_ns) changed, works on a copy-on-write view, and on exit writes each
  changed partition once (temp file, fsync, rename, directory fsync).
* Several files (and event-log appends) commit through an intent file that is
  rolled forward by the next process to take the lock, so a crash leaves a
  transaction wholly present or wholly absent.
* Reads outside a transaction never block and see whole files.
"""

from __future__ import annotations

import gc
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock, Timeout

from goldfish.errors import DiskError, StoreError
from goldfish.fsutil import append_whole, as_disk_error, atomic_write, disk_errors, fsync_dir
from goldfish.store._sharded import MergedView, ShardedTable, Table, shard_partition
from goldfish.store import integrity
from goldfish.store._tiny import Doc, PartitionStorage, StoreTable, make_table
from goldfish.store.cache import BoundedCache

__all__ = [
    "DEFAULT_SHARDING", "STORE_SCHEMA_VERSION", "Doc", "ShardedTable", "Store", "StoreTable", "Table", "Transaction",
]

# 2: sharded tables; 3: one result per pipeline run (roles on stage runs and records, see migrations.py);
# 4: the derived history index of each workspace (goldfish/records/index.py); run_index and record_index sharded.
STORE_SCHEMA_VERSION = 4
# Tables that grow with every run are split into shards of this many documents (see _sharded.py).
DEFAULT_SHARDING: dict[str, int] = {"runs": 256, "records": 1024, "pipeline_runs": 512, "lineage": 1024,
                                    "run_index": 4096, "record_index": 4096}
_PARTITION_RE = re.compile(
    # head, shard (.table.NNNN) or derived index chunk (.hist-NNNN, goldfish/records/index.py)
    r"[a-z][a-z0-9_]*(?:/[A-Za-z0-9][A-Za-z0-9_-]{0,63})?(?:\.[a-z][a-z_]*\.[0-9]{4}|\.hist-[0-9]{4})?",
    re.ASCII,
)
_LOG_RE = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)
_INTENT = "intent.json"
_VERSION_FILE = "STORE_VERSION.json"

Ident = tuple[int, int, int]


@dataclass(frozen=True)
class _Snapshot:
    tables: dict[str, dict[str, Doc]]
    ident: Ident | None


_EMPTY = _Snapshot({}, None)


def _ident(st: os.stat_result) -> Ident:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Store:
    """A directory of TinyDB JSON partitions plus append-only JSONL event logs."""

    def __init__(self, root: Path, *, lock_timeout: float = 60.0):
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self._cache: dict[str, _Snapshot] = BoundedCache()
        # Called with the transaction just before it commits, e.g. to update derived indexes in it.
        self.commit_hooks: list[Any] = []
        self._cache_lock = threading.Lock()
        self._thread_lock = threading.RLock()
        self._local = threading.local()
        self._filelock = FileLock(str(self.root / ".lock"), timeout=lock_timeout, thread_local=False)
        self._swept = False
        self._migrating = False
        # Called with each committed transaction (after it is durable); see goldfish/backups/auto.py.
        self.on_commit: list[Any] = []
        self.sharding: dict[str, int] = {}
        self._views: dict[tuple[str, str], tuple[list[Any], MergedView]] = {}
        self._dir_counts: dict[tuple[str, str], tuple[Any, dict[int, int]]] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "events").mkdir(exist_ok=True)
        self._check_version()

    # ------------------------------------------------------------------ lock
    @contextmanager
    def lock(self) -> Iterator[None]:
        """The project lock (reentrant): every read-modify-write and dev-repo mutation holds it."""
        with self._thread_lock:
            depth = getattr(self._local, "lock_depth", 0)
            if depth == 0:
                try:
                    with disk_errors(self.root / ".lock", doing="take the project lock to change the Goldfish store"):
                        self._filelock.acquire()
                except Timeout as exc:
                    raise StoreError(
                        f"The project lock {self.root / '.lock'} was held by another process for "
                        f"{self.lock_timeout:.0f}s.",
                        fix="Wait for the other goldfish process to finish; if none is running, retry.",
                    ) from exc
                try:
                    with disk_errors(self.root, doing="complete an interrupted change in the Goldfish store"):
                        self._recover()
                except BaseException:
                    self._filelock.release()
                    raise
            self._local.lock_depth = depth + 1
            try:
                yield
            finally:
                self._local.lock_depth = depth
                if depth == 0:
                    self._filelock.release()

    # ----------------------------------------------------------- partitions
    def _path(self, partition: str) -> Path:
        if not _PARTITION_RE.fullmatch(partition):
            raise StoreError(f"invalid partition name {partition!r}")
        return self.root / f"{partition}.json"

    def _load(self, partition: str) -> _Snapshot:
        path = self._path(partition)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if self._really_missing(path, lambda: integrity.expected(self, partition)):
                raise integrity.missing_error(self, partition, path) from None
            if path.exists():  # a commit finished while we waited for the lock
                return self._load(partition)
            return _EMPTY
        ident = _ident(st)
        with self._cache_lock:
            cached = self._cache.get(partition)
        if cached is not None and cached.ident == ident:
            return cached
        try:
            with open(path, "rb") as f:
                ident = _ident(os.fstat(f.fileno()))
                raw = f.read()
        except FileNotFoundError:
            if self._really_missing(path, lambda: integrity.expected(self, partition)):
                raise integrity.missing_error(self, partition, path) from None
            if path.exists():
                return self._load(partition)
            return _EMPTY
        # A big partition is hundreds of thousands of small objects: the cyclic GC would scan them
        # all several times during the parse (3/4 of its cost), and none of them can form cycles.
        enabled = gc.isenabled()
        gc.disable()
        try:
            # Empty, unparsable or wrong-shaped is damage, named with its fix — never an empty table.
            tables = integrity.parse(self.root, path, raw)
        finally:
            if enabled:
                gc.enable()
        snap = _Snapshot(tables, ident)
        with self._cache_lock:
            self._cache[partition] = snap
        return snap

    def _really_missing(self, path: Path, expected: Any) -> bool:
        """A file the store says exists is absent: damage, unless a lock-free reader caught a commit
        half-way (the project partition renamed before a new partition, a log registered before its
        first append). Confirmed under the project lock, where no commit is half-done."""
        if not expected():
            return False
        if getattr(self._local, "lock_depth", 0) > 0:
            return True
        with self._lock_if_free() as free:
            # A writer at work is most likely the commit this reader caught half-way: read what is
            # there, as before; any write (which holds the lock) still finds the damage.
            return free and not path.exists() and bool(expected())

    @contextmanager
    def _lock_if_free(self) -> Iterator[bool]:
        """The project lock if nobody holds it right now (True), else nothing (False): a reader on the
        damage path never waits behind a long writer."""
        if not self._thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            try:
                self._filelock.acquire(timeout=0)
            except Timeout:
                yield False
                return
            try:
                self._recover()
                self._local.lock_depth = 1
                try:
                    yield True
                finally:
                    self._local.lock_depth = 0
            finally:
                self._filelock.release()
        finally:
            self._thread_lock.release()

    def table(self, name: str, partition: str = "project") -> Table:
        """A lock-free, read-only view of one table as of the last whole file written.

        Sharded tables come back as a :class:`ShardedTable` with the same read API."""
        head = PartitionStorage(self._load(partition).tables, writable=False)
        size = self.sharding.get(name)
        if size is None:
            return make_table(head, name)

        def shard(number: int) -> StoreTable:
            data = self._load(shard_partition(partition, name, number)).tables
            return make_table(PartitionStorage(data, writable=False), name)

        def view(parts: list[Any]) -> MergedView:
            return self._merged_view(partition, name, parts)

        return ShardedTable(name, size, head, shard, view, damage=self._dangling(partition, name))

    def _dangling(self, partition: str, name: str, *, locked: bool = False) -> Any:
        """What a sharded table does with a document its directory names but its shard lacks.

        A lock-free reader may have loaded a head partition committed a moment before its shard (or
        the reverse): under the project lock, with both files read afresh, it is either there, gone
        (deleted) or damage; while a writer holds the lock it is taken as not there (as before).
        Inside a transaction (lock held, files consistent) it is damage."""

        def confirm(doc_id: str, number: int) -> Doc | None:
            if not locked:
                with self._lock_if_free() as free:
                    if not free:
                        return None
                    directory: dict[str, Any] = self._load(partition).tables.get(integrity.DIR_PREFIX + name) or {}
                    now = directory.get(doc_id)
                    if now is None:
                        return None
                    doc = self._load(shard_partition(partition, name, int(now))).tables.get(name, {}).get(doc_id)
                    if doc is not None:
                        return doc
                    number = int(now)
            raise integrity.dangling_error(self.root, self._path(partition), name, doc_id, number)

        return confirm

    def _merged_view(self, partition: str, name: str, parts: list[Any]) -> MergedView:
        """The same MergedView object while neither the directory nor any shard changed."""
        key = (partition, name)
        with self._cache_lock:
            cached = self._views.get(key)
            if cached is not None and len(cached[0]) == len(parts) and all(
                a is b for a, b in zip(cached[0], parts, strict=True)
            ):
                return cached[1]
            view = MergedView(parts[0], parts[1:], self._dangling(partition, name))
            self._views[key] = (parts, view)  # holding the parts keeps their identities from being reused
            return view

    def partitions(self, prefix: str) -> list[str]:
        """Partition names under ``prefix`` (e.g. ``"ws"`` → ``["ws/a", "ws/b"]``); shards excluded."""
        folder = self.root / prefix
        found = {f"{prefix}/{p.stem}" for p in folder.glob("*.json") if "." not in p.stem} if folder.is_dir() else set()
        # A registered partition whose file is gone is listed too: reading it names the damage.
        registry = self._load("project").tables.get(integrity.REGISTRY) or {}
        found.update(n for n in registry if n.startswith(prefix + "/") and "." not in n)
        return sorted(found)

    # --------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        outer: Transaction | None = getattr(self._local, "tx", None)
        if outer is not None:
            yield outer  # nested: join the outer transaction
            return
        with self.lock():
            tx = Transaction(self)
            self._local.tx = tx
            try:
                yield tx
            except BaseException:
                self._local.tx = None
                raise
            self._local.tx = None
            tx._commit()

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "tx", None) is not None

    # --------------------------------------------------------------- events
    def _log_path(self, log: str) -> Path:
        if not _LOG_RE.fullmatch(log):
            raise StoreError(f"invalid event log name {log!r}")
        return self.root / "events" / f"{log}.jsonl"

    def append_event(self, log: str, event: dict[str, Any]) -> None:
        """Append one event outside any transaction (joins the current one if any)."""
        with self.transaction() as tx:
            tx.append_event(log, event)

    def read_events(self, log: str, *, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events from byte ``offset``; returns them and the offset after the last whole line."""
        path = self._log_path(log)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            integrity.check_log_missing(self, log, path)
            return [], offset
        end = data.rfind(b"\n")
        if end < 0:
            return [], offset
        events = []
        for line in data[: end + 1].splitlines():
            if line.strip():
                try:
                    events.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue  # a torn line from a crashed append-only writer
        return events, offset + end + 1

    def tail_events(self, log: str, limit: int, predicate: Any = None, stop: Any = None) -> list[dict[str, Any]]:
        """The newest ``limit`` events (newest first) matching ``predicate``, read backwards in chunks;
        reading ends at the first event for which ``stop`` is true (e.g. older than a window)."""
        path = self._log_path(log)
        out: list[dict[str, Any]] = []
        if not path.exists():
            integrity.check_log_missing(self, log, path)
            return out
        with open(path, "rb") as f:
            pos = f.seek(0, os.SEEK_END)
            rest = b""
            while pos > 0 and len(out) < limit:
                step = min(65536, pos)
                pos -= step
                f.seek(pos)
                chunk = f.read(step) + rest
                lines = chunk.split(b"\n")
                rest = lines[0] if pos > 0 else b""
                body = lines[1:] if pos > 0 else lines
                for line in reversed(body):
                    if not line.strip():
                        continue
                    try:
                        ev = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if stop is not None and stop(ev):
                        return out
                    if predicate is None or predicate(ev):
                        out.append(ev)
                        if len(out) >= limit:
                            break
        return out

    # -------------------------------------------------------------- recovery
    def _read_stamp(self) -> dict[str, Any] | None:
        path = self.root / _VERSION_FILE
        if not path.exists():
            return None
        try:
            stamp = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise integrity.damage_error(self.root, path, f"it is not valid JSON ({exc})") from exc
        found = int(stamp.get("schema", 0))
        if found > STORE_SCHEMA_VERSION:
            raise StoreError(
                f"This store was written by a newer Goldfish (store schema {found}, "
                f"this Goldfish understands {STORE_SCHEMA_VERSION}; written by {stamp.get('written_by')}).",
                fix="Upgrade goldfish (pip install -U goldfish-ml) before opening this project.",
            )
        return dict(stamp)

    def _write_stamp(self) -> None:
        from goldfish import __version__

        atomic_write(self.root / _VERSION_FILE, orjson.dumps(
            # registry: this store lists its partitions and logs (store/integrity.py) from the start
            {"schema": STORE_SCHEMA_VERSION, "written_by": __version__, "sharding": self.sharding, "registry": True}
        ))

    def _check_version(self) -> None:
        stamp = self._read_stamp()
        if stamp is not None and int(stamp.get("schema", 0)) == STORE_SCHEMA_VERSION:
            self.sharding = {str(k): int(v) for k, v in (stamp.get("sharding") or {}).items()}
            return
        with self.lock():
            stamp = self._read_stamp()
            if stamp is None:
                self.sharding = dict(DEFAULT_SHARDING)
                self._write_stamp()
            elif int(stamp.get("schema", 0)) < STORE_SCHEMA_VERSION:
                self._migrating = True  # an old layout: the integrity rules of the current one do not apply yet
                try:
                    from goldfish.store.migrations import migrate

                    migrate(self, int(stamp.get("schema", 0)), stamp)
                finally:
                    self._migrating = False
            else:
                self.sharding = {str(k): int(v) for k, v in (stamp.get("sharding") or {}).items()}

    def _recover(self) -> None:
        """Roll forward an interrupted multi-file commit; drop orphaned temp files. Lock held."""
        intent_path = self.root / _INTENT
        if intent_path.exists():
            try:
                intent = orjson.loads(intent_path.read_bytes())
            except orjson.JSONDecodeError:
                intent = None  # torn intent: its rename phase never started
            if intent is not None:
                _apply_intent(self, intent)
            intent_path.unlink(missing_ok=True)
            fsync_dir(self.root)
            self._swept = False
        if not self._swept:
            # Under the lock no writer is mid-commit, so any temp file is an orphan
            # of a crash. Swept once per process (and after a roll-forward).
            for tmp in self.root.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)
            self._swept = True


def _apply_intent(store: Store, intent: dict[str, Any]) -> None:
    dirs: set[Path] = set()
    for tmp_s, target_s in intent.get("renames", []):
        tmp, target = store.root / tmp_s, store.root / target_s
        if tmp.exists():
            os.replace(tmp, target)
            dirs.add(target.parent)
    for d in dirs:
        fsync_dir(d)
    txid = intent["tx"]
    for log, lines in intent.get("events", {}).items():
        path = store._log_path(log)
        if _tail_has_tx(path, txid):
            continue
        _append_lines(path, lines)


def _tail_has_tx(path: Path, txid: str) -> bool:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 262144))
            return f'"tx":"{txid}"'.encode() in f.read()
    except FileNotFoundError:
        return False


def _append_lines(path: Path, lines: list[str]) -> None:
    append_whole(path, "".join(line + "\n" for line in lines).encode())


class Transaction:
    """Work done under the project lock; committed atomically when the ``with`` block exits."""

    def __init__(self, store: Store):
        self.store = store
        self.txid = f"{time.time_ns():x}-{os.getpid():x}"
        self._parts: dict[str, PartitionStorage] = {}
        self._events: dict[str, list[str]] = {}
        self._after_commit: list[Any] = []

    def _storage(self, partition: str) -> PartitionStorage:
        storage = self._parts.get(partition)
        if storage is None:
            self.store._path(partition)
            storage = PartitionStorage(self.store._load(partition).tables, writable=True)
            self._parts[partition] = storage
        return storage

    def table(self, name: str, partition: str = "project") -> Table:
        size = self.store.sharding.get(name)
        if size is None:
            return make_table(self._storage(partition), name)

        head = self._storage(partition)

        def shard(number: int) -> StoreTable:
            part = shard_partition(partition, name, number)
            first = part not in self._parts
            storage = self._storage(part)
            if first:  # a write must not build on a shard its directory disagrees with
                integrity.check_shard(self.store, partition, name, number, head.tables, storage.tables,
                                      mutable=integrity.DIR_PREFIX + name in head.copied)
            return make_table(storage, name)

        return ShardedTable(name, size, head, shard, damage=self.store._dangling(partition, name, locked=True))

    def append_event(self, log: str, event: dict[str, Any]) -> None:
        self.store._log_path(log)
        body = {**event, "tx": self.txid}
        self._events.setdefault(log, []).append(orjson.dumps(body).decode())

    def after_commit(self, fn: Any) -> None:
        """Run ``fn()`` once the transaction is durable (e.g. regenerate STATE.md)."""
        self._after_commit.append(fn)

    def _register_partitions(self) -> None:
        """List partitions written for the first time in the project partition (store/integrity.py),
        so a later missing file is known to be damage rather than an empty table."""
        new = [p for p, s in self._parts.items() if s.dirty and p != "project" and not self.store._path(p).exists()]
        new += [f"events/{log}" for log in self._events if not self.store._log_path(log).exists()]
        head = self._storage("project")
        add = integrity.register_new(self.store, head.tables, new)
        if add is not None or integrity.REGISTRY not in head.tables:
            head.own_table(integrity.REGISTRY).update(add or {})

    def _commit(self) -> None:
        for hook in self.store.commit_hooks:
            hook(self)
        try:
            self._write()
        except OSError as exc:
            mapped = as_disk_error(exc, self.store.root, doing="save the change to the Goldfish store")
            if mapped is None:
                raise
            raise self._disk_failure(mapped) from exc

    def _disk_failure(self, error: DiskError) -> DiskError:
        """A refused write is the disk's problem, named as such. Once this transaction's intent is on
        disk the change is committed (the next lock rolls it forward); before that nothing is, and
        its temp files go."""
        intent_path = self.store.root / _INTENT
        try:
            committed = orjson.loads(intent_path.read_bytes()).get("tx") == self.txid
        except (OSError, orjson.JSONDecodeError, AttributeError):
            committed = False
        if committed:
            error.message = error.message.replace("Could not save", "Could not finish saving", 1)
            error.fix = (f"{(error.fix or '').rstrip('.')}; the change itself is saved and the next Goldfish call "
                         "completes it, so check the result (status, list_history) before repeating it.")
        else:
            for tmp in self.store.root.rglob(f".*.{self.txid}.tmp"):
                tmp.unlink(missing_ok=True)
        return error

    def _write(self) -> None:
        if self._events or any(s.dirty for s in self._parts.values()):
            self._register_partitions()
        changed = {p: s for p, s in self._parts.items() if s.dirty}
        store = self.store
        if changed or self._events:
            blobs = {p: orjson.dumps(s.tables) for p, s in changed.items()}
            if len(blobs) == 1 and not self._events:
                (partition, blob), = blobs.items()
                atomic_write(store._path(partition), blob)
            elif not blobs:
                for log, lines in self._events.items():
                    _append_lines(store._log_path(log), lines)
            else:
                renames = []
                for partition, blob in blobs.items():
                    target = store._path(partition)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    tmp = target.with_name(f".{target.name}.{self.txid}.tmp")
                    with open(tmp, "wb") as f:
                        f.write(blob)
                        f.flush()
                        os.fsync(f.fileno())
                    renames.append(
                        [str(tmp.relative_to(store.root)), str(target.relative_to(store.root))]
                    )
                intent = {"tx": self.txid, "renames": renames, "events": self._events}
                atomic_write(store.root / _INTENT, orjson.dumps(intent))
                _apply_intent(store, intent)
                (store.root / _INTENT).unlink()
                fsync_dir(store.root)
            # Refresh the read cache with what we just wrote (no re-parse).
            for partition, storage in changed.items():
                st = os.stat(store._path(partition))
                with store._cache_lock:
                    store._cache[partition] = _Snapshot(storage.tables, _ident(st))
        for fn in self._after_commit:
            fn()
        for hook in store.on_commit:
            hook(self)
