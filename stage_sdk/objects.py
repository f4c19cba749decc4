"""Object storage for things that must outlive the stage's machine (checkpoints).

``ObjectStore`` is the interface; ``LocalObjectStore`` implements it on a directory
(``GOLDFISH_OBJECTS_DIR``), writing immediately: a file or a whole prefix is built under a temp name,
fsynced, then renamed into place, so a reader sees the old or the new object, never half of one.
A bucket-backed store implements the same five methods.

Keys are ``/``-separated; every segment is checked (no ``..``, no NUL or backslash, no absolute
keys, no ``.gf-`` prefix, which the store reserves for its temp names) and the resolved path must
stay inside the root, so a key can never address a file elsewhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol, runtime_checkable

from stage_sdk import _fs

_RESERVED = (".gf-tmp-", ".gf-old-")


@runtime_checkable
class ObjectStore(Protocol):
    location: str

    def put_file(self, src: Path, key: str) -> str: ...

    def put_dir(self, src: Path, prefix: str, *, move: bool = False) -> str: ...

    def get(self, key: str, dest: Path) -> Path | None: ...

    def list(self, prefix: str) -> list[str]: ...

    def exists(self, key: str) -> bool: ...


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key or key.startswith("/"):
        raise ValueError(f"Object key {key!r} must be a non-empty relative path like 'checkpoints/run/name'.")
    for seg in key.split("/"):
        if seg in ("", ".", "..") or "\x00" in seg or "\\" in seg or seg.startswith(_RESERVED):
            raise ValueError(
                f"Object key {key!r} has an invalid segment {seg!r} (empty, '.', '..', NUL, backslash or a "
                "reserved .gf- name)."
            )
    return key


class LocalObjectStore:
    """A directory used as an object store; durable writes (fsync before rename)."""

    location = "objects"

    def __init__(self, root: Path, *, location: str = "objects"):
        self.root = Path(root)
        self.location = location

    def path(self, key: str) -> Path:
        target = self.root / check_key(key)
        self.root.mkdir(parents=True, exist_ok=True)
        if not _inside(self.root, target):
            raise ValueError(f"Object key {key!r} resolves outside the store root {self.root} (a symlink?).")
        return target

    def put_file(self, src: Path, key: str) -> str:
        dst = self.path(key)
        _fs.copy_file(Path(src), dst, durable=True)
        return key

    def put_dir(self, src: Path, prefix: str, *, move: bool = False) -> str:
        """Publish directory ``src`` as ``prefix``, replacing what was there as one unit.

        ``move=True`` lets the store rename ``src`` into place when it is on the same filesystem
        (the caller built it only for this); otherwise ``src`` is copied and left untouched.
        """
        final = self.path(prefix)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = _fs.tmp_sibling(final)
        try:
            if move:
                try:
                    os.rename(src, tmp)
                except OSError:
                    _fs.copy_tree(Path(src), tmp, durable=True)
                    shutil.rmtree(src, ignore_errors=True)
            else:
                _fs.copy_tree(Path(src), tmp, durable=True)
            _fs.fsync_dir(tmp)
            _fs.replace_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return prefix

    def get(self, key: str, dest: Path) -> Path | None:
        """Materialise ``key`` (a file or a prefix) at ``dest``, replacing it; None if absent."""
        src = self.path(key)
        _fs.recover_dir(src)
        if not src.exists():
            return None
        dest = Path(dest)
        if src.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = _fs.tmp_sibling(dest)
            try:
                _fs.copy_tree(src, tmp, skip=lambda n: n.startswith(_RESERVED))
                _fs.replace_dir(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        else:
            _fs.copy_file(src, dest)
        return dest

    def list(self, prefix: str) -> list[str]:
        """Every file key under ``prefix`` (sorted); temp and moved-aside entries are skipped."""
        base = self.path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        _fs.recover_dir(base)
        if not base.is_dir():
            return []
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            for d in [d for d in dirnames if d.startswith(".gf-old-")]:
                final = Path(dirpath) / d[len(".gf-old-") :].rsplit(".", 1)[0]
                if not final.exists():
                    _fs.recover_dir(final)
                    if final.is_dir():
                        dirnames.append(final.name)
            dirnames[:] = [d for d in dirnames if not d.startswith(_RESERVED)]
            rel_dir = Path(dirpath).relative_to(self.root)
            for name in filenames:
                if not name.startswith(_RESERVED):
                    keys.append((rel_dir / name).as_posix())
        return sorted(keys)

    def exists(self, key: str) -> bool:
        target = self.path(key)
        _fs.recover_dir(target)
        return target.exists()


def _inside(root: Path, candidate: Path) -> bool:
    root_r = root.resolve()
    cand_r = candidate.resolve()
    return cand_r == root_r or root_r in cand_r.parents
