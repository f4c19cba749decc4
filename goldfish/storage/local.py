"""Object storage in a directory (``storage.local.root``, by default ``.goldfish/objects``).

A key is a path under the root. Writes go to a temp sibling, are fsynced and renamed into place, so
a reader sees the old or the new object, never part of one. Goldfish records each object's crc32c
and sha256 in ``.gf-meta/<key>.json`` when it writes it and checks copies out against them; objects
written by a stage's SDK straight into the directory carry no record and are checked by size.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from goldfish.fsutil import atomic_write, fsync_dir
from goldfish.storage.base import Digests, ObjectInfo, StorageError, check_key, verify

CHUNK = 8 << 20
META = ".gf-meta"


class LocalStorage:
    kind: Literal["local", "gcs"] = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    # ------------------------------------------------------------------ paths
    def path(self, key: str) -> Path:
        target = self.root / check_key(key, prefix=True).rstrip("/")
        root_r = self.root.resolve()
        cand = target.resolve()
        if cand != root_r and root_r not in cand.parents:
            raise StorageError(f"Object key {key!r} resolves outside {self.root} (a symlink?).",
                               fix="Remove the symlink from the object store.")
        return target

    def _meta_path(self, key: str) -> Path:
        return self.root / META / f"{key}.json"

    def uri(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    # ----------------------------------------------------------------- writes
    def _record(self, key: str, target: Path, d: Digests) -> ObjectInfo:
        st = target.stat()
        meta = {"size": d.size, "crc32c": d.crc32c, "sha256": d.sha256, "mtime_ns": st.st_mtime_ns}
        atomic_write(self._meta_path(key), json.dumps(meta), durable=False)
        return ObjectInfo(key=key, uri=self.uri(key), size=d.size, crc32c=d.crc32c, sha256=d.sha256,
                          generation=st.st_mtime_ns, updated=_iso(st.st_mtime))

    def put_file(self, src: Path, key: str, *, sha256: str | None = None) -> ObjectInfo:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".gf-tmp-{target.name}.{os.getpid()}")
        d = Digests()
        try:
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                while block := fin.read(CHUNK):
                    d.update(block)
                    fout.write(block)
                fout.flush()
                os.fsync(fout.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        fsync_dir(target.parent)
        if sha256 and sha256 != d.sha256:
            raise StorageError(f"{src} changed while it was stored as {key} (sha256 differs).",
                               fix="Store it again once nothing writes to it.")
        return self._record(key, target, d)

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        target = self.path(key)
        atomic_write(target, data)
        d = Digests()
        d.update(data)
        return self._record(key, target, d)

    def put_dir(self, src: Path, prefix: str) -> list[ObjectInfo]:
        prefix = check_key(prefix, prefix=True).rstrip("/")
        return [self.put_file(path, f"{prefix}/{rel}") for rel, path in _files(Path(src))]

    # ------------------------------------------------------------------ reads
    def stat(self, key: str) -> ObjectInfo | None:
        target = self.path(key)
        try:
            st = target.stat()
        except FileNotFoundError:
            return None
        if not target.is_file():
            return None
        meta = self._meta(key, st)
        return ObjectInfo(key=key, uri=self.uri(key), size=st.st_size, crc32c=meta.get("crc32c"),
                          sha256=meta.get("sha256"), generation=st.st_mtime_ns, updated=_iso(st.st_mtime))

    def _meta(self, key: str, st: os.stat_result) -> dict[str, Any]:
        try:
            meta = json.loads(self._meta_path(key).read_text())
        except (OSError, ValueError):
            return {}
        # A record of an earlier object under the same key says nothing about this one.
        return meta if meta.get("mtime_ns") == st.st_mtime_ns and meta.get("size") == st.st_size else {}

    def get_file(self, key: str, dest: Path, *, generation: int | None = None) -> ObjectInfo:
        info = self.stat(key)
        if info is None:
            raise StorageError(f"Object {self.uri(key)} does not exist.", fix="Check the key, or store it first.")
        if generation is not None and info.generation != generation:
            raise StorageError(f"Object {self.uri(key)} changed (generation {info.generation}, wanted {generation}).",
                               fix="Register or store it again.")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".gf-tmp-{dest.name}.{os.getpid()}")
        d = Digests()
        try:
            with open(self.path(key), "rb") as fin, open(tmp, "wb") as fout:
                while block := fin.read(CHUNK):
                    d.update(block)
                    fout.write(block)
            verify(info, d, where=str(dest))
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return info

    def get_bytes(self, key: str) -> bytes | None:
        info = self.stat(key)
        if info is None:
            return None
        data = self.path(key).read_bytes()
        d = Digests()
        d.update(data)
        verify(info, d, where="memory")
        return data

    def get_dir(self, prefix: str, dest: Path) -> list[ObjectInfo]:
        base = check_key(prefix, prefix=True).rstrip("/") + "/"
        out = []
        for info in self.list(base):
            out.append(self.get_file(info.key, Path(dest) / info.key[len(base):]))
        return out

    def list(self, prefix: str) -> list[ObjectInfo]:
        prefix = prefix or ""
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.path(head) if head else self.root
        if not base.is_dir():
            return []
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".gf-", META)))
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in sorted(filenames):
                if name.startswith(".gf-"):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    info = self.stat(key)
                    if info is not None:
                        found.append(info)
        return sorted(found, key=lambda i: i.key)

    # ---------------------------------------------------------------- deletes
    def delete(self, key: str) -> bool:
        target = self.path(key)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        with contextlib.suppress(FileNotFoundError):
            self._meta_path(key).unlink()
        return True

    def delete_prefix(self, prefix: str) -> int:
        infos = self.list(prefix)
        for info in infos:
            self.delete(info.key)
        base = self.path(prefix.rstrip("/")) if prefix.strip("/") else None
        if base is not None and base.is_dir() and prefix.endswith("/"):
            shutil.rmtree(base, ignore_errors=True)
        return len(infos)


def _files(src: Path) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every regular file under ``src``; symlinks are refused."""
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = Path(dirpath) / name
            if path.is_symlink():
                raise StorageError(f"{path} is a symlink; object storage copies real files only.",
                                   fix="Replace the link with the file it points to.")
            out.append((path.relative_to(src).as_posix(), path))
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
