"""``goldfish doctor --repair``: bring a damaged store back from the latest backup.

1. Every damaged partition or shard file (missing, empty, unparsable, wrong shape) is replaced by its
   copy in the latest backup (checksum-verified); a file the backup does not have (created since)
   comes back empty and what it held is reported lost.
2. Shard directories are reconciled with the shards: entries whose document is gone are dropped
   (reported lost), documents without an entry get one back (reported replayed).
3. The event logs written since the backup are replayed: run and pipeline-run state transitions are
   applied to the restored rows, and versions whose git tags exist are re-adopted from the dev repo.
   Audit entries since the backup that touched a repaired workspace and could not be replayed are
   listed as lost, so the report says exactly what, if anything, is gone.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from goldfish.errors import StoreError
from goldfish.fsutil import atomic_write
from goldfish.store import integrity

_SHARD_RE = re.compile(r"(?P<head>.+)\.(?P<table>[a-z][a-z_]*)\.(?P<num>[0-9]{4})")
_TERMINAL = frozenset({"completed", "failed", "terminated", "canceled", "skipped"})


@dataclass
class RepairReport:
    damaged: list[str] = field(default_factory=list)
    backup_id: str | None = None
    backup_at: str | None = None
    restored: list[str] = field(default_factory=list)
    replayed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    kept_aside: list[str] = field(default_factory=list)

    def render(self) -> str:
        if not self.damaged:
            return "The store checks out: every partition, shard and directory agrees. Nothing to repair."
        out = ["Damaged:", *(f"  {d}" for d in self.damaged)]
        if self.backup_id:
            out.append(f"From backup {self.backup_id} ({self.backup_at}):")
        out += [f"  restored {r}" for r in self.restored]
        out.append(f"Replayed from the event logs and the dev repo ({len(self.replayed)}):")
        out += [f"  {r}" for r in self.replayed] or ["  nothing to replay"]
        out.append(f"Lost ({len(self.lost)}):")
        out += [f"  {x}" for x in self.lost] or ["  nothing"]
        if self.kept_aside:
            out.append("The damaged files were copied to:")
            out += [f"  {p}" for p in self.kept_aside]
        if self.remaining:
            out.append("Still damaged:")
            out += [f"  {x}" for x in self.remaining]
        return "\n".join(out)


def repair(project: Any) -> RepairReport:
    from goldfish.backups.service import Backups
    from goldfish.backups.target import BackupError
    from goldfish.store import Store

    store_root: Path = project.store_dir
    report = RepairReport()
    damage = integrity.check_store(Store(store_root))
    if not damage:
        return report
    report.damaged = [d.render() for d in damage]
    manifest: dict[str, Any] | None = None
    backups = Backups(project)
    try:
        manifest = backups.resolve("latest")
        report.backup_id, report.backup_at = manifest["backup_id"], manifest["created_at"]
    except BackupError as exc:
        report.lost.append(f"no backup to restore from ({exc.message})")
    touched: set[str] = set()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    lock_store = Store(store_root)
    with lock_store.lock():
        for d in damage:
            if not d.file_level:
                continue
            if d.path.exists():  # keep the damaged bytes for whoever wants to salvage them by hand
                aside = project.gf_dir / "damaged" / stamp / d.path.relative_to(store_root)
                aside.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(d.path, aside)
                report.kept_aside.append(str(aside))
            if d.partition.startswith("events/"):
                _restore_log(backups, manifest, d, report, store_root)
                continue
            touched.add(d.partition)
            part = (manifest or {}).get("files", {}).get(f"store/{d.partition}.json")
            if part is not None:
                atomic_write(d.path, backups.target.get_blob(part["blob"]))
                report.restored.append(f"{d.path.relative_to(store_root)} (as of the backup)")
            else:
                atomic_write(d.path, b"{}")
                report.lost.append(f"{d.path.relative_to(store_root)}: not in the backup (first written after "
                                   "it); rebuilt from the event logs and the dev repo as far as they go (see "
                                   "Replayed), anything else it held is gone")
        _register_all(store_root)

        def backup_copy(partition: str) -> dict[str, Any]:
            part = (manifest or {}).get("files", {}).get(f"store/{partition}.json")
            if part is None:
                return {}
            data = orjson.loads(backups.target.get_blob(part["blob"]))
            return data if isinstance(data, dict) else {}

        _reconcile_directories(store_root, report, touched, backup_copy)
    fresh = type(project).open(project.root, source="cli")
    _replay(fresh, manifest, touched, report)
    if touched:  # the history indexes are derived from the rows just restored and replayed
        from goldfish.records.index import rebuild

        store = Store(store_root)
        for head in store.partitions("ws"):
            rebuild(store, head.split("/", 1)[1])
    report.remaining = [d.render() for d in integrity.check_store(Store(store_root))]
    return report


def _restore_log(backups: Any, manifest: dict[str, Any] | None, d: integrity.Damage, report: RepairReport,
                 store_root: Path) -> None:
    """The backup's copy of an event log, then every line of the current file it does not hold."""
    log = d.partition[len("events/"):]
    entry = (manifest or {}).get("logs", {}).get(log)
    if entry is None:
        if not d.path.exists():
            atomic_write(d.path, b"")
        report.lost.append(f"{d.path.relative_to(store_root)}: not in the backup; its events are gone")
        return
    saved = b"".join(backups.target.get_blob(c["blob"]) for c in entry["chunks"])
    current = d.path.read_bytes() if d.path.exists() else b""
    known = set(saved.splitlines())
    whole = current.split(b"\n")[:-1]  # what follows the last newline is a torn line (or nothing)
    extra = [line for line in whole if line.strip() and line not in known]
    atomic_write(d.path, saved + b"".join(line + b"\n" for line in extra))
    lines = len(saved.splitlines())
    report.restored.append(f"{d.path.relative_to(store_root)} ({lines} lines as of the backup"
                           + (f", {len(extra)} later lines kept)" if extra else ")"))


def _load(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
        return data if isinstance(data, dict) else {}
    except (OSError, orjson.JSONDecodeError):
        return {}


def _register_all(store_root: Path) -> None:
    """After the project partition comes back from a backup, list every partition that exists now."""
    path = store_root / "project.json"
    tables = _load(path)
    registry = tables.setdefault(integrity.REGISTRY, {})
    names = [n for n in integrity.list_partition_files(store_root) if n != "project" and n not in registry]
    if names or not path.exists():
        for n in names:
            registry[n] = {"id": n}
        atomic_write(path, orjson.dumps(tables))


def _reconcile_directories(store_root: Path, report: RepairReport, touched: set[str],
                           backup_copy: Any) -> None:
    names = integrity.list_partition_files(store_root)
    shards: dict[tuple[str, str], dict[int, set[str]]] = {}
    for name in names:
        m = _SHARD_RE.fullmatch(name)
        if m:
            docs = _load(store_root / f"{name}.json").get(m["table"], {})
            shards.setdefault((m["head"], m["table"]), {})[int(m["num"])] = set(docs)
    heads = {h for h, _t in shards} | {n for n in names if not _SHARD_RE.fullmatch(n)}
    for head in sorted(heads):
        path = store_root / f"{head}.json"
        tables = _load(path)
        changed = False
        for key in [k for k in tables if k.startswith(integrity.DIR_PREFIX)] + [
                integrity.DIR_PREFIX + t for (h, t) in shards if h == head]:
            table = key[len(integrity.DIR_PREFIX):]
            directory: dict[str, int] = dict(tables.get(key, {}))
            held = shards.get((head, table), {})
            for doc_id, number in list(directory.items()):
                if doc_id in held.get(number, set()):
                    continue
                shard = f"{head}.{table}.{number:04d}"
                saved = backup_copy(shard).get(table, {}).get(doc_id)
                touched.add(head)
                if saved is None:
                    del directory[doc_id]
                    report.lost.append(f"{table} {doc_id} ({head}): its shard no longer holds it and no backup does")
                    continue
                spath = store_root / f"{shard}.json"
                stables = _load(spath)
                stables.setdefault(table, {})[doc_id] = saved
                atomic_write(spath, orjson.dumps(stables))
                held.setdefault(number, set()).add(doc_id)
                report.restored.append(f"{table} {doc_id} into {shard}.json (as of the backup)")
            for number, ids in sorted(held.items()):
                for doc_id in sorted(ids):
                    if directory.get(doc_id) != number:
                        directory[doc_id] = number
                        report.replayed.append(f"{table} {doc_id} ({head}): directory entry re-linked to shard {number:04d}")
                        touched.add(head)
            last = max(held, default=0)
            if tables.get(key) != directory or (tables.get(integrity.LAST_TABLE, {}).get(table) or {}).get("last") != last:
                tables[key] = directory
                tables.setdefault(integrity.LAST_TABLE, {})[table] = {"last": last}
                changed = True
        if changed:
            atomic_write(path, orjson.dumps(tables))


def _workspace_of(partition: str) -> str | None:
    m = _SHARD_RE.fullmatch(partition)
    head = m["head"] if m else partition
    return head.split("/", 1)[1] if head.startswith("ws/") else None


def _replay(project: Any, manifest: dict[str, Any] | None, touched: set[str], report: RepairReport) -> None:
    since = (manifest or {}).get("created_at", "")
    workspaces = {w for w in (_workspace_of(p) for p in touched) if w}
    project_touched = any(p == "project" for p in touched)
    events, _ = project.store.read_events("transitions")
    newer = [e for e in events if _after(e.get("ts"), since) and (project_touched or e.get("workspace") in workspaces)]
    with project.store.transaction() as tx:
        for ev in newer:
            ws, rid = ev.get("workspace"), str(ev.get("run_id") or "")
            if not ws:
                continue
            table = tx.table("pipeline_runs" if rid.startswith("prun-") else "runs", f"ws/{ws}")
            row = table.get_doc(rid) if table.has(rid) else None
            if row is None or row.get("state") == ev["to"] or row.get("state") != ev.get("from"):
                continue
            update = {"state": ev["to"], "updated_at": ev["ts"]}
            if ev["to"] in _TERMINAL:
                update["finished_at"] = ev["ts"]
            table.patch(rid, update)
            report.replayed.append(f"{rid} ({ws}): state {ev.get('from')} -> {ev['to']} at {ev['ts']} (transitions log)")
        for ws in sorted(workspaces):
            for row in project.versions.adopt_orphans(tx, ws):
                report.replayed.append(f"version {ws} {row.version}: re-adopted from git tag {row.tag}")
    audit, _ = project.store.read_events("audit")
    for ev in audit:
        ws = ev.get("workspace")
        if not _after(ev.get("ts"), since) or not (project_touched or ws in workspaces) or not ws:
            continue
        details = ev.get("details") or {}
        for key, table in (("record_id", "records"), ("stage_run_id", "runs"), ("run_id", "runs"),
                           ("version", "versions")):
            value = details.get(key)
            if not isinstance(value, str) or not value:
                continue
            if table == "runs" and value.startswith("prun-"):
                table = "pipeline_runs"
            try:
                present = project.store.table(table, f"ws/{ws}").has(value)
            except StoreError:
                present = False
            if not present:
                report.lost.append(f"{table} {value} of {ws}: written by {ev.get('op')} at {ev.get('ts')}, after the "
                                   "backup; no event log holds it")


def _after(ts: Any, since: str) -> bool:
    if not since or not isinstance(ts, str):
        return bool(ts)
    return _norm(ts) > _norm(since)


def _norm(ts: str) -> str:
    from datetime import UTC, datetime

    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC).isoformat(timespec="microseconds")
    except ValueError:
        return ts


def run_repair(project_path: str | None) -> int:
    from goldfish.project import Project

    project = Project.open(project_path)
    report = repair(project)
    print(report.render())
    return 1 if report.remaining else 0
