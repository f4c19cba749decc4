"""Atomic file writes and path containment."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from goldfish.errors import InvalidInput
import contextlib


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str, *, durable: bool = True, sync_dir: bool | None = None) -> None:
    """Write ``path`` so that a crash leaves either the old or the new content, never a torn file.

    ``durable`` fsyncs the data before the rename (no torn file). ``sync_dir`` (default: same as
    ``durable``) also fsyncs the directory, so the rename itself survives a crash; derived files
    that are rewritten anyway (STATE.md) can skip that."""
    if isinstance(data, str):
        data = data.encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable if sync_dir is None else sync_dir:
        fsync_dir(path.parent)


def inside(root: Path, candidate: Path, *, what: str = "path") -> Path:
    """Resolve ``candidate`` and refuse it unless it stays within ``root`` (symlinks resolved)."""
    root_r = Path(root).resolve()
    cand_r = Path(candidate).resolve()
    if cand_r != root_r and root_r not in cand_r.parents:
        raise InvalidInput(
            f"{what} {str(candidate)!r} resolves outside {str(root)!r}.",
            fix="Use a relative path without '..' or symlinks that lead out.",
        )
    return cand_r
