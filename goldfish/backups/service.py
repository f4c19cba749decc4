"""``project.backups``: create, list, clean up and report backups (see docs/backups.md)."""

from __future__ import annotations

import gc
import logging
import secrets
import shutil
import time
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from filelock import FileLock, Timeout

from goldfish.backups import snapshot
from goldfish.backups.models import (
    TIERS,
    BackupInfo,
    BackupStatus,
    CleanupBackupsResult,
    CreateBackupResult,
    LastBackup,
    ListBackupsResult,
    Tier,
)
from goldfish.backups.target import FORMAT, BackupError, Target, project_target
from goldfish.fsutil import atomic_write
from goldfish.store import integrity

if TYPE_CHECKING:
    from goldfish.project import Project

log = logging.getLogger("goldfish.backups")
MAX_CHAIN = 30  # incremental git packs (and event-log tails) before a backup stores them whole again
STATE_FILE = integrity.BACKUP_STATE


class Backups:
    def __init__(self, project: Project):
        self.project = project

    @cached_property
    def target(self) -> Target:
        return project_target(self.project.config, self.project.root, self.project.gf_dir)

    # ------------------------------------------------------------- local state
    @property
    def state_path(self) -> Path:
        return self.project.gf_dir / STATE_FILE

    def state(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.state_path.read_bytes())
            return data if isinstance(data, dict) else {}
        except (OSError, orjson.JSONDecodeError):
            return {}

    def _save_state(self, **fields: Any) -> None:
        state = {**self.state(), **fields, "target": self.target.uri}
        atomic_write(self.state_path, orjson.dumps(state), durable=False)

    def _lock(self, timeout: float = 600) -> FileLock:
        lock = FileLock(str(self.project.gf_dir / "backups.lock"), timeout=timeout)
        try:
            lock.acquire()
        except Timeout as exc:
            raise BackupError("Another backup of this project has been running for 10 minutes.",
                              fix="Wait for it to finish, then retry.") from exc
        return lock

    # ------------------------------------------------------------------ create
    def create(self, *, tier: Tier = "manual", trigger: str = "manual", details: str | None = None,
               now: datetime | None = None) -> CreateBackupResult:
        """Snapshot the project under its lock and store every part the target does not have yet."""
        started = time.monotonic()
        lock = self._lock()
        try:
            result = self._create(tier, trigger, details, now)
        finally:
            lock.release()
        result.seconds = round(time.monotonic() - started, 3)
        if tier == "manual":
            self._audit("create_backup", details or trigger, {"backup_id": result.backup_id, "tier": tier,
                                                              "location": result.location})
        return result

    def _create(self, tier: Tier, trigger: str, details: str | None, now: datetime | None) -> CreateBackupResult:
        target = self.target
        backup_id = f"bk-{secrets.token_hex(4)}"
        staging_root = self.project.gf_dir / "backup-staging"
        shutil.rmtree(staging_root, ignore_errors=True)  # a crashed backup's leftovers (lock held)
        snap = snapshot.take(self.project, staging_root / backup_id, now)
        uploads: _Uploads | None = None
        try:
            snapshot.check_parts(snap, self.project.store_dir)
            prev = self._previous(target)
            known = _blobs_of(prev) if prev else {}
            uploads = _Uploads(target, known)
            put = uploads.put

            files: dict[str, Any] = {}
            prev_files = (prev or {}).get("files", {})
            for name, (path, ident) in sorted(snap.files.items()):
                old = prev_files.get(name)
                if old is not None and old.get("ident") == list(ident) and old["blob"] in known:
                    files[name] = old  # unchanged since the previous backup (same inode, size, mtime)
                    continue
                data = path.read_bytes()
                if name.startswith("store/") and name != "store/STORE_VERSION.json":
                    _check_parses(self.project.store_dir, name[len("store/"):], data)
                entry = put(data)  # filled in (stored size) when its upload finishes: keep the same dict
                entry["ident"] = list(ident)
                files[name] = entry
            logs: dict[str, Any] = {}
            for name, (path, size) in sorted(snap.logs.items()):
                old = (prev or {}).get("logs", {}).get(name)
                if old is not None and len(old["chunks"]) >= MAX_CHAIN:
                    old = None  # the log is stored whole again, so a restore never fetches hundreds of tails
                sha, offset, tail = snapshot.log_chunk(path, size, old)
                chunks = list(old["chunks"]) if offset and old is not None else []
                if tail:
                    chunks.append(put(tail))
                logs[name] = {"size": size, "sha256": sha, "chunks": chunks}
            git_part = self._git_part(snap, prev, put)
            new_bytes = uploads.finish()  # every part stored before the manifest names it
            manifest: dict[str, Any] = {
                "format": FORMAT, "backup_id": backup_id, "tier": tier, "trigger": trigger, "details": details,
                "created_at": snap.created_at, "project_name": self.project.config.project_name,
                "dev_repo_path": self.project.config.dev_repo_path, "files": files, "logs": logs, "git": git_part,
                "new_bytes": new_bytes,
            }
            manifest["size_bytes"] = sum(_blobs_of(manifest).values())
            location = target.put_manifest(manifest)  # last: a backup exists once its manifest does
        finally:
            if uploads is not None:
                uploads.pool.shutdown(wait=True, cancel_futures=True)
            shutil.rmtree(staging_root, ignore_errors=True)
        self._save_state(last={"backup_id": backup_id, "tier": tier, "trigger": trigger,
                               "created_at": snap.created_at}, manifest=manifest)
        log.info("backup %s (%s, %s) to %s: %d bytes new", backup_id, tier, trigger, location, new_bytes)
        return CreateBackupResult(backup_id=backup_id, tier=tier, location=location, size_bytes=manifest["size_bytes"],
                                  new_bytes=new_bytes, seconds=0.0, warning=self._advice())

    def _previous(self, target: Target) -> dict[str, Any] | None:
        """The newest backup (from the local record when it is for this target, else the target)."""
        state = self.state()
        manifest = state.get("manifest")
        if state.get("target") == target.uri and isinstance(manifest, dict) and target.storage.stat(
                target.manifest_key(manifest)) is not None:
            return manifest
        found = target.manifests()
        return found[-1] if found else None

    def _git_part(self, snap: snapshot.Snapshot, prev: dict[str, Any] | None, put: Any) -> dict[str, Any]:
        prev_git = (prev or {}).get("git") or {}
        chain = list(prev_git.get("bundles") or [])
        exclude = sorted(set((prev_git.get("refs") or {}).values()))
        if not chain or len(chain) >= MAX_CHAIN:
            chain, exclude = [], []
        tips = sorted(set(snap.refs.values()))
        try:
            bundle = snapshot.git_pack(self.project.dev_path, tips, exclude) if tips else None
        except Exception:  # an excluded tip is gone (history rewritten): start a full chain
            chain = []
            bundle = snapshot.git_pack(self.project.dev_path, tips, []) if tips else None
        if bundle is not None:
            chain.append(put(bundle))
        return {"refs": snap.refs, "head": snap.head, "bundles": chain}

    # ------------------------------------------------------------- list / status
    def _info(self, m: dict[str, Any]) -> BackupInfo:
        return BackupInfo(backup_id=m["backup_id"], tier=m["tier"], trigger=m.get("trigger") or m["tier"],
                          details=m.get("details"), created_at=m["created_at"],
                          location=self.target.storage.uri(m["_key"]) if "_key" in m else self.target.uri,
                          size_bytes=int(m.get("size_bytes") or 0), new_bytes=int(m.get("new_bytes") or 0),
                          deleted_at=m.get("deleted_at"))

    def manifests(self) -> list[dict[str, Any]]:
        return self.target.manifests()

    def list_backups(self, tier: Tier | None = None, include_deleted: bool = False, limit: int = 100) -> ListBackupsResult:
        live = self.target.manifests()
        rows = live + (self.target.manifests(deleted=True) if include_deleted else [])
        rows = [m for m in rows if tier is None or m["tier"] == tier]
        rows.sort(key=lambda m: m["created_at"], reverse=True)
        return ListBackupsResult(backups=[self._info(m) for m in rows[:limit]], counts=_counts(live), total=len(rows),
                                 has_more=len(rows) > limit,
                                 target=self.target.uri)

    def resolve(self, which: str = "latest") -> dict[str, Any]:
        live = self.target.manifests()
        if not live:
            raise BackupError(f"There is no backup in {self.target.uri}.",
                              fix="Take one with create_backup() (or `goldfish restore --from` another target).")
        if which == "latest":
            return live[-1]
        for m in live:
            if m["backup_id"] == which:
                return m
        raise BackupError(f"No backup {which!r} in {self.target.uri}.",
                          fix=f"Use one of: {', '.join(m['backup_id'] for m in live[-5:])} (or 'latest').")

    def retention(self) -> dict[str, int | None]:
        cfg = self.project.config.backups
        return {"event": cfg.keep_event, "daily": cfg.keep_daily, "weekly": cfg.keep_weekly,
                "manual": cfg.keep_manual}

    def _expired(self, live: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for tier, keep in self.retention().items():
            rows = [m for m in live if m["tier"] == tier]
            if keep is not None and len(rows) > keep:
                out += rows[: len(rows) - keep]  # oldest first
        return out

    def _advice(self) -> str | None:
        if not self.target.local_disk:
            return None
        return (f"Backups go to {self.target.uri}, on the same disk as the project: they do not survive losing "
                "that disk. Set backups.target in goldfish.yaml to a directory on another disk or a "
                "gs://<bucket>/<prefix>/.")

    def status(self) -> BackupStatus:
        live = self.target.manifests()
        last = live[-1] if live else None
        return BackupStatus(
            enabled=self.project.config.backups.auto, target=self.target.uri,
            survives_disk_loss=not self.target.local_disk, advice=self._advice(), counts=_counts(live),
            last_backup=LastBackup(backup_id=last["backup_id"], tier=last["tier"],
                                   trigger=last.get("trigger") or last["tier"], created_at=last["created_at"])
            if last else None,
            expired_pending_cleanup=len(self._expired(live)), retention=self.retention(),
            last_auto_error=self.state().get("last_auto_error"),
        )

    # ------------------------------------------------------------------ cleanup
    def cleanup(self, now: datetime | None = None) -> CleanupBackupsResult:
        """Delete backups beyond each tier's count, then every part no live backup needs."""
        lock = self._lock()
        try:
            live = self.target.manifests()
            doomed = self._expired(live)
            stamp = snapshot.iso(now or datetime.now(UTC))
            for m in doomed:
                self.target.delete_manifest(m, stamp)
            keep_ids = {m["backup_id"] for m in doomed}
            remaining = [m for m in live if m["backup_id"] not in keep_ids]
            needed: set[str] = set()
            for m in remaining:
                needed.update(_blobs_of(m))
            freed = 0
            for sha, size in self.target.blob_shas().items():
                if sha not in needed:
                    self.target.storage.delete(self.target.blob_key(sha))
                    freed += size
            state = self.state()
            if state.get("manifest", {}).get("backup_id") in keep_ids:
                self._save_state(manifest=None)
        finally:
            lock.release()
        result = CleanupBackupsResult(
            deleted_expired=[m["backup_id"] for m in doomed if m["tier"] in ("daily", "weekly")],
            deleted_excess=[m["backup_id"] for m in doomed if m["tier"] in ("event", "manual")],
            kept=_counts(remaining), freed_bytes=freed)
        self._audit("cleanup_backups", "retention policy", {"deleted": sorted(keep_ids), "freed_bytes": freed})
        return result

    def _audit(self, op: str, reason: str, details: dict[str, Any]) -> None:
        with self.project.store.transaction() as tx:
            self.project.journal.record(tx, op, reason=reason, details=details)


class _Uploads:
    """Parts go up on a few threads (compression, hashing, fsync and network calls release the GIL);
    at most ``2 * workers`` parts wait in memory. A part already in the target is not stored again."""

    def __init__(self, target: Target, known: dict[str, int], workers: int = 4):
        from concurrent.futures import ThreadPoolExecutor
        from threading import BoundedSemaphore

        self.target = target
        self.known = known
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="goldfish-backup-part")
        self.slots = BoundedSemaphore(2 * workers)
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self.futures: list[Any] = []

    def put(self, data: bytes) -> dict[str, Any]:
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        entry: dict[str, Any] = {"blob": sha, "size": len(data), "stored": self.known.get(sha)}
        if sha in self.known:
            return entry
        waiting = self.entries.get(sha)
        if waiting is not None:  # the same content twice in one backup: stored once
            waiting.append(entry)
            return entry
        self.entries[sha] = [entry]
        self.slots.acquire()

        def upload() -> tuple[str, int]:
            try:
                return self.target.put_blob(data, sha)
            finally:
                self.slots.release()

        self.futures.append(self.pool.submit(upload))
        return entry

    def finish(self) -> int:
        """Wait for every upload (the first error is raised); the bytes stored."""
        new = 0
        try:
            for future in self.futures:
                sha, stored = future.result()
                new += stored
                self.known[sha] = stored
                for entry in self.entries[sha]:
                    entry["stored"] = stored
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        return new


def _check_parses(store_root: Path, rel: str, data: bytes) -> None:
    """A damaged partition is never backed up over the last good copy (GC paused: see the store's parse)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        integrity.parse(store_root, store_root / rel, data)
    finally:
        if enabled:
            gc.enable()


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(TIERS, 0)
    for m in rows:
        counts[m["tier"]] = counts.get(m["tier"], 0) + 1
    return counts


def _blobs_of(manifest: dict[str, Any]) -> dict[str, int]:
    """sha256 → stored size of every part a backup needs."""
    out: dict[str, int] = {}
    for part in manifest.get("files", {}).values():
        out[part["blob"]] = int(part.get("stored") or 0)
    for entry in manifest.get("logs", {}).values():
        for part in entry["chunks"]:
            out[part["blob"]] = int(part.get("stored") or 0)
    for part in (manifest.get("git") or {}).get("bundles", []):
        out[part["blob"]] = int(part.get("stored") or 0)
    return out
