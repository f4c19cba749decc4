"""Atomic file replacement and small locked JSON documents.

Readers of a stage's outputs (the run engine, the dashboard) may look at any instant, so every file
is written to a temp sibling and renamed over the target: they see the old or the new file, never a
torn one. ``durable=True`` adds fsyncs, used for checkpoints, where surviving a machine loss is the
point; plain outputs skip them (a full fsync of a large array would cost more than the write).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

TMP_TAG = ".gf-tmp-"


def tmp_sibling(path: Path) -> Path:
    return path.with_name(f"{TMP_TAG}{path.name}.{os.getpid()}.{secrets.token_hex(4)}")


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, *, durable: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary file; on clean exit it replaces ``path`` atomically, on error it vanishes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(path)
    f = open(tmp, "xb")  # noqa: SIM115 - closed explicitly on both paths
    try:
        yield f
        f.flush()
        if durable:
            os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes | str, *, durable: bool = False) -> None:
    with atomic_file(path, durable=durable) as f:
        f.write(data.encode() if isinstance(data, str) else data)


def copy_file(src: Path, dst: Path, *, durable: bool = False) -> None:
    """Copy bytes (not metadata) to ``dst`` atomically."""
    with open(src, "rb") as fin, atomic_file(dst, durable=durable) as fout:
        shutil.copyfileobj(fin, fout, 8 * 1024 * 1024)


def copy_tree(src: Path, dst: Path, *, durable: bool = False, skip: Callable[[str], bool] | None = None) -> None:
    """Copy a directory tree into a new directory ``dst``; symlinks are refused, not followed."""
    dst.mkdir(parents=True)
    for entry in os.scandir(src):
        if skip is not None and skip(entry.name):
            continue
        target = dst / entry.name
        if entry.is_symlink():
            raise ValueError(
                f"{entry.path} is a symlink; checkpoints and outputs copy real files only. "
                "Fix: copy the file it points to into the directory instead."
            )
        if entry.is_dir():
            copy_tree(Path(entry.path), target, durable=durable, skip=None)
        elif entry.is_file():
            with open(entry.path, "rb") as fin, open(target, "xb") as fout:
                shutil.copyfileobj(fin, fout, 8 * 1024 * 1024)
                if durable:
                    fout.flush()
                    os.fsync(fout.fileno())
    if durable:
        fsync_dir(dst)


def replace_dir(tmp: Path, final: Path) -> None:
    """Put directory ``tmp`` at ``final``, moving any previous ``final`` aside first and then away.

    POSIX cannot rename a directory over a non-empty one, so there is a short window where only
    the moved-aside copy exists; ``recover_dir`` puts it back if the process dies in that window.
    """
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".gf-old-{final.name}.{secrets.token_hex(4)}")
        os.rename(final, old)
    os.rename(tmp, final)
    fsync_dir(final.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(old)


def recover_dir(final: Path) -> None:
    """Undo a replacement interrupted between its two renames."""
    if final.exists():
        return
    parent = final.parent
    if not parent.is_dir():
        return
    prefix = f".gf-old-{final.name}."
    for entry in sorted(os.listdir(parent)):
        if entry.startswith(prefix):
            with contextlib.suppress(OSError):
                os.rename(parent / entry, final)
                return


_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


def _reset_locks_in_child() -> None:
    # A lock held by another thread at fork() stays held forever in the child (e.g. a DataLoader
    # worker); give the child fresh ones.
    global _local_guard
    _local_guard = threading.Lock()
    _local_locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_in_child)


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Exclusive lock for a read-modify-write, across threads and processes."""
    with _local_guard:
        tlock = _local_locks.setdefault(str(lock_path), threading.Lock())
    with tlock:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def update_json(path: Path, update: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Locked read-modify-write of a JSON document; a missing or unreadable file starts empty."""
    with locked(path.with_name(f".{path.name}.lock")):
        try:
            current = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(current, dict):
                current = {}
        except (OSError, ValueError):
            current = {}
        new = update(current)
        atomic_write(path, json.dumps(new, indent=1, allow_nan=False, default=str) + "\n")
