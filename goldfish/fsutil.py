"""Atomic file writes, whole-line appends, disk errors and path containment."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from goldfish.errors import DiskError, InvalidInput

# The errors that mean "the disk refused the write", not "Goldfish is broken".
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
# What git (and other tools run under LC_ALL=C) print for the same conditions.
_DISK_TEXTS = {
    "no space left on device": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "permission denied": errno.EACCES,
}


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


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (the nearest existing ancestor's)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def disk_error(code: int, path: Path | str, *, doing: str = "write") -> DiskError:
    """A clear error for a refused write: which disk, what is wrong with it, what to do."""
    where = Path(path)
    disk = mount_point(where)
    on = f"the disk holding {where} (mounted at {disk})"
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = "is full" if code == errno.ENOSPC else "is over its quota"
        return DiskError(f"Could not {doing}: {on} {what}.",
                         fix=f"Free space on {disk} (e.g. old run outputs, caches), then retry the same call.",
                         details={"errno": errno.errorcode.get(code, str(code)), "path": str(where), "disk": str(disk)})
    if code == errno.EROFS:
        return DiskError(f"Could not {doing}: {on} is read-only.",
                         fix=f"Remount {disk} read-write (or move the project to a writable disk), then retry.",
                         details={"errno": "EROFS", "path": str(where), "disk": str(disk)})
    user = _user()
    return DiskError(f"Could not {doing}: permission denied on {where} (Goldfish runs as {user}).",
                     fix=f"Give {user} write access to {where} (chown/chmod), then retry.",
                     details={"errno": errno.errorcode.get(code, str(code)), "path": str(where), "disk": str(disk)})


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def as_disk_error(exc: BaseException, path: Path | str, *, doing: str = "write") -> DiskError | None:
    """``exc`` as a :class:`DiskError` when it is a refused write, else None."""
    if isinstance(exc, DiskError):
        return exc
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return disk_error(exc.errno, exc.filename or path, doing=doing)
    return None


def disk_error_from_text(text: str, path: Path | str, *, doing: str) -> DiskError | None:
    """A DiskError when a tool's error output (git's) says the disk refused a write."""
    low = text.lower()
    for needle, code in _DISK_TEXTS.items():
        if needle in low:
            return disk_error(code, path, doing=doing)
    return None


@contextlib.contextmanager
def disk_errors(path: Path | str, *, doing: str = "write") -> Iterator[None]:
    """Re-raise a refused write (ENOSPC, EDQUOT, EROFS, EACCES, EPERM) as a DiskError."""
    try:
        yield
    except OSError as exc:
        mapped = as_disk_error(exc, path, doing=doing)
        if mapped is None:
            raise
        raise mapped from exc


def append_whole(path: Path, payload: bytes) -> None:
    """Append ``payload`` (whole lines) and fsync, or raise and leave the file ending at a whole line.

    ``os.write`` may write part of the buffer (a nearly full disk); the rest is retried until the
    disk refuses, and then the file is cut back to where this append started, so a torn line never
    joins the next append. A torn tail left by a crash is cut off first for the same reason.
    Callers serialize appends to one file (the store appends under the project lock)."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = _whole_lines_end(fd)
        try:
            view = memoryview(payload)
            done = 0
            while done < len(view):
                written = os.write(fd, view[done:])
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                done += written
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
                os.fsync(fd)
            raise
    finally:
        os.close(fd)


def _whole_lines_end(fd: int) -> int:
    """The size of the file at ``fd`` after cutting off a torn last line (one without its newline)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    pos = size
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        chunk = os.pread(fd, step, pos)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            pos += cut + 1
            break
    os.ftruncate(fd, pos)
    return pos


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
