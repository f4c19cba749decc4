"""Store damage is an error, never an empty table.

Every partition is parsed through :func:`parse`, which refuses a zero-byte file, bytes that are not
JSON and JSON of the wrong shape (a partition is ``{table: {id: document}}``; a shard directory
``_dir.<table>`` maps ids to shard numbers). A partition file that is missing is damage when the store
knows it was written: the project partition lists every other partition it ever committed (table
``_partitions``, filled by the commit that first writes a partition), a shard is also known from the
directory entries that point into it, and ``project.json`` itself is expected once anything else exists.

The error names the file and the fix (``goldfish doctor --repair`` / ``goldfish restore``) and the last
backup this project recorded. :func:`check_store` cross-checks every partition, shard and directory
for ``goldfish doctor``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from goldfish.errors import StoreError

if TYPE_CHECKING:
    from goldfish.store import Store

REGISTRY = "_partitions"
DIR_PREFIX = "_dir."
LAST_TABLE = "_shards"
_SHARD_RE = re.compile(r"(?P<head>.+)\.(?P<table>[a-z][a-z_]*)\.(?P<num>[0-9]{4})")
# Partitions rebuilt from the others when missing (derived indexes): never registered, never "expected".
DERIVED = ("index/",)
# Written by goldfish/backups after every backup; read here without importing the backup service.
BACKUP_STATE = "backup_state.json"


@dataclass
class Damage:
    """One damaged store file (or directory entry) and what is wrong with it."""

    path: Path
    partition: str
    problem: str
    entries: list[str] = field(default_factory=list)
    file_level: bool = True  # the file itself is bad (False: it disagrees with another file)

    def render(self) -> str:
        more = f" ({len(self.entries)} entries: {', '.join(self.entries[:5])}{'…' if len(self.entries) > 5 else ''})" \
            if self.entries else ""
        return f"{self.path}: {self.problem}{more}"


def last_backup_text(store_root: Path) -> str:
    try:
        state = orjson.loads((store_root.parent / BACKUP_STATE).read_bytes())
        last = state["last"]
        return f"The last backup is {last['backup_id']} ({last['created_at']}, in {state['target']})."
    except (OSError, ValueError, KeyError, TypeError):
        return "No backup of this project was recorded yet."


def fix_text(store_root: Path) -> str:
    return (f"Run `goldfish doctor --repair` (restores the damaged file from the latest backup and replays the "
            f"event logs written since, then reports what was replayed and what was lost), or "
            f"`goldfish restore latest --force` to restore the whole project. {last_backup_text(store_root)} "
            f"Nothing is written to the store while it is damaged.")


def damage_error(store_root: Path, path: Path, problem: str) -> StoreError:
    return StoreError(f"Store file {path} is damaged: {problem}.", fix=fix_text(store_root),
                      details={"file": str(path), "problem": problem})


def shape_problem(tables: Any) -> str | None:
    """Why parsed JSON is not a partition (None when it is one)."""
    if not isinstance(tables, dict):
        return f"it holds a JSON {type(tables).__name__}, not an object of tables"
    for name, table in tables.items():
        if not isinstance(table, dict):
            return f"table {name!r} is a JSON {type(table).__name__}, not an object of documents"
        if name.startswith(DIR_PREFIX):
            for key, value in table.items():
                if type(value) is not int or value < 0:
                    return f"directory {name!r} entry {key!r} is {value!r}, not a shard number"
        else:
            for key, value in table.items():
                if not isinstance(value, dict):
                    return f"table {name!r} document {key!r} is a JSON {type(value).__name__}, not an object"
    return None


def parse(store_root: Path, path: Path, raw: bytes) -> dict[str, dict[str, Any]]:
    """A partition's tables from its bytes; StoreError naming the file for empty, garbage or wrong shape."""
    if not raw:
        raise damage_error(store_root, path, "the file is empty (zero bytes)")
    try:
        tables = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise damage_error(store_root, path, f"it is not valid JSON ({exc})") from exc
    problem = shape_problem(tables)
    if problem is not None:
        raise damage_error(store_root, path, problem)
    return tables


def _events_written(store_root: Path) -> bool:
    try:
        return any(p.stat().st_size > 0 for p in (store_root / "events").glob("*.jsonl"))
    except OSError:
        return False


def _registry_era(store_root: Path) -> bool:
    try:
        return bool(orjson.loads((store_root / "STORE_VERSION.json").read_bytes()).get("registry"))
    except (OSError, ValueError, AttributeError):
        return False


def _other_partitions_exist(store_root: Path) -> bool:
    return any(p.name != "project.json" and not p.name.startswith(".") for p in store_root.rglob("*.json")
               if p.parent != store_root or p.name not in ("STORE_VERSION.json", "intent.json"))


def expected(store: Store, partition: str) -> bool:
    """True when ``partition``'s file is missing although the store says it was written."""
    if store._migrating or partition.startswith(DERIVED):
        return False
    if partition == "project":
        # A store from before the registry may have logs or partitions and no project.json yet.
        return _registry_era(store.root) and (_other_partitions_exist(store.root) or _events_written(store.root))
    registry = store._load("project").tables.get(REGISTRY)
    if registry is not None and partition in registry:
        return True
    m = _SHARD_RE.fullmatch(partition)
    if m is not None:
        head = store._load(m["head"]).tables
        number = int(m["num"])
        return any(v == number for v in head.get(DIR_PREFIX + m["table"], {}).values())
    return False


def dangling_error(store_root: Path, head: Path, table: str, doc_id: str, number: int) -> StoreError:
    shard = head.with_name(f"{head.name[:-len('.json')]}.{table}.{number:04d}.json")
    return damage_error(store_root, head, f"its directory of {table} points {doc_id!r} at {shard.name}, "
                        "which does not hold it")


def check_shard(store: Store, head: str, table: str, number: int, head_tables: dict[str, Any],
                shard_tables: dict[str, Any], *, mutable: bool = False) -> None:
    """Refuse a shard whose document count differs from what its directory points at it (a document
    lost from the shard, or one the directory does not know). The counts per shard are cached per
    committed directory object (never mutated once committed), so a transaction pays one pass over a
    directory only when it changed; one this transaction is changing (``mutable``) is counted afresh."""
    directory = head_tables.get(DIR_PREFIX + table) or {}
    key = (head, table)
    with store._cache_lock:
        cached = store._dir_counts.get(key)
    if cached is not None and cached[0] is directory and not mutable:
        counts = cached[1]
    else:
        counts = {}
        for value in directory.values():
            counts[value] = counts.get(value, 0) + 1
        if not mutable:
            with store._cache_lock:
                store._dir_counts[key] = (directory, counts)  # holding the dict keeps its id from being reused
    held = len(shard_tables.get(table) or {})
    if held != counts.get(number, 0):
        path = store._path(f"{head}.{table}.{number:04d}")
        raise damage_error(store.root, path, f"it holds {held} {table} documents but the directory in "
                           f"{store._path(head).name} points {counts.get(number, 0)} at it")


def check_log_missing(store: Store, log: str, path: Path) -> None:
    """A missing event log the store recorded appending to is damage, not "no events"."""
    if store._migrating:
        return
    def registered() -> bool:
        return f"events/{log}" in (store._load("project").tables.get(REGISTRY) or {})

    if store._really_missing(path, registered):
        raise damage_error(store.root, path, "the event log is missing although the store recorded appending to it")


def missing_error(store: Store, partition: str, path: Path) -> StoreError:
    return damage_error(store.root, path, "the file is missing although the store recorded writing it")


def register_new(store: Store, project_tables: dict[str, Any] | None, new: list[str]) -> dict[str, Any] | None:
    """The registry entries to add for partitions committed for the first time (None: nothing to add).

    ``project_tables`` is the project partition as the transaction sees it. A store from before the
    registry gets every existing partition file added too, so missing ones are caught from then on."""
    registry = (project_tables or {}).get(REGISTRY)
    add: dict[str, Any] = {}
    if registry is None:
        for name in list_partition_files(store.root):
            if name != "project" and not name.startswith(DERIVED):
                add[name] = {"id": name}
        for log in (store.root / "events").glob("*.jsonl"):
            add[f"events/{log.stem}"] = {"id": f"events/{log.stem}"}
        registry = {}
    for name in new:
        if name != "project" and name not in registry and not name.startswith(DERIVED):
            add[name] = {"id": name}
    return add or None


def list_partition_files(store_root: Path) -> list[str]:
    """Every partition name whose file exists (shards included), sorted."""
    out = []
    for p in store_root.rglob("*.json"):
        rel = p.relative_to(store_root)
        if p.name.startswith(".") or rel.parts[0] == "events" or (len(rel.parts) == 1 and p.name in (
                "STORE_VERSION.json", "intent.json")):
            continue
        out.append(str(rel)[: -len(".json")])
    return sorted(out)


def _backed_up_logs(store_root: Path) -> dict[str, int]:
    """Event-log sizes in the last backup this project recorded (append-only: never shorter since)."""
    try:
        logs = orjson.loads((store_root.parent / BACKUP_STATE).read_bytes())["manifest"]["logs"]
        return {str(name): int(entry["size"]) for name, entry in logs.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def check_store(store: Store) -> list[Damage]:
    """Every damaged partition, shard and directory entry, cross-checked against each other; and every
    event log against its size in the last backup (a log is append-only: shorter means truncated)."""
    root = store.root
    found: list[Damage] = []
    for log, size in sorted(_backed_up_logs(root).items()):
        path = root / "events" / f"{log}.jsonl"
        now = path.stat().st_size if path.exists() else None
        if now is None and size > 0:
            found.append(Damage(path, f"events/{log}", f"missing; the last backup holds {size} bytes of it"))
        elif now is not None and now < size:
            found.append(Damage(path, f"events/{log}", f"truncated: {now} bytes, the last backup holds {size}"))
    parsed: dict[str, dict[str, Any]] = {}
    names = set(list_partition_files(root))
    registry: dict[str, Any] = {}
    project_path = root / "project.json"
    if project_path.exists():
        try:
            parsed["project"] = parse(root, project_path, project_path.read_bytes())
            registry = parsed["project"].get(REGISTRY) or {}
        except StoreError as exc:
            found.append(Damage(project_path, "project", exc.details["problem"]))
    elif expected(store, "project"):
        found.append(Damage(project_path, "project", "missing (other partitions and event logs exist)"))
    for name in sorted(n for n in registry if n.startswith("events/")):
        path = root / f"{name}.jsonl"
        if not path.exists() and not any(d.path == path for d in found):
            found.append(Damage(path, name, "missing although the store recorded appending to it"))
    for name in sorted(names | {n for n in registry if not n.startswith("events/")}):
        if name == "project":
            continue
        path = root / f"{name}.json"
        if not path.exists():
            found.append(Damage(path, name, "missing although the store recorded writing it"))
            continue
        try:
            parsed[name] = parse(root, path, path.read_bytes())
        except StoreError as exc:
            found.append(Damage(path, name, exc.details["problem"]))
    damaged = {d.partition for d in found}
    # Directories against shards: every entry points at a shard holding the document, and every
    # document in a shard has its entry.
    for head, tables in parsed.items():
        if _SHARD_RE.fullmatch(head):
            continue
        for tname, directory in tables.items():
            if not tname.startswith(DIR_PREFIX):
                continue
            table = tname[len(DIR_PREFIX):]
            last = int((tables.get(LAST_TABLE, {}).get(table) or {}).get("last", 0))
            by_shard: dict[int, list[str]] = {}
            for doc_id, number in directory.items():
                by_shard.setdefault(number, []).append(doc_id)
            for number, ids in sorted(by_shard.items()):
                shard = f"{head}.{table}.{number:04d}"
                spath = root / f"{shard}.json"
                if shard in damaged:
                    continue
                if shard not in parsed:
                    found.append(Damage(spath, shard, f"missing although directory {tname!r} of {head}.json "
                                        f"points {len(ids)} documents into it", ids))
                    damaged.add(shard)
                    continue
                docs = parsed[shard].get(table, {})
                absent = [i for i in ids if i not in docs]
                if absent:
                    found.append(Damage(root / f"{head}.json", head, f"directory {tname!r} points "
                                        f"{len(absent)} documents at shard {number:04d}, which does not hold them",
                                        absent, file_level=False))
                if number > last:
                    found.append(Damage(root / f"{head}.json", head,
                                        f"directory {tname!r} uses shard {number:04d} beyond the last ({last:04d})",
                                        file_level=False))
    for shard, stables in parsed.items():
        m = _SHARD_RE.fullmatch(shard)
        if m is None or m["head"] in damaged:
            continue
        head_tables = parsed.get(m["head"], {})
        directory = head_tables.get(DIR_PREFIX + m["table"], {})
        stray = [i for i in stables.get(m["table"], {}) if directory.get(i) != int(m["num"])]
        if stray:
            found.append(Damage(root / f"{shard}.json", shard, f"holds {len(stray)} documents the directory "
                                f"{DIR_PREFIX + m['table']!r} of {m['head']}.json does not point at", stray,
                                file_level=False))
    return found
