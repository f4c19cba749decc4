"""A slot's files as a version would hold them, computed in Python (dirty detection, watcher).

Mirrors what ``DevRepo.stage_slot`` asks git to do, so both agree: ``.gitignore`` files
(gitwildmatch via pathspec; nested files, the deepest decides; ignored directories are not
entered, so nothing below them can be re-included), ``STATE.md`` and the mount file at the root
left out, ``.git`` never entered, files over the size cap left out. Blob ids are git's
(``sha1(b"blob <len>\\0" + data)``), so a scan compares directly with ``git ls-tree``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pathspec import GitIgnoreSpec

from goldfish.git.devrepo import RESERVED_ROOT_FILES
from goldfish.errors import Conflict

FileKey = tuple[str, str]  # (git mode, blob sha)

# A cached hash is trusted only if the file's last change was this long before it was hashed:
# a second write within one coarse filesystem timestamp tick would otherwise go unnoticed.
RACY_NS = 2_000_000_000

# Work directories holding only extracted archives (dot-prefixed, so never a slot name). A former
# slot being hibernated (".hibernated-") may hold unsaved files and is never deleted blindly.
TEMP_MARKERS = (".mounting-", ".rollback-")


def is_goldfish_file(name: str) -> bool:
    """STATE.md, the mount file, and the temp files their atomic writes leave for a moment."""
    return name in RESERVED_ROOT_FILES or any(
        name.startswith(f".{reserved}.") and name.endswith(".tmp") for reserved in RESERVED_ROOT_FILES
    )


def blob_id(data: bytes) -> str:
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


def file_key(path: str, st: os.stat_result) -> FileKey:
    if stat.S_ISLNK(st.st_mode):
        return "120000", blob_id(os.fsencode(os.readlink(path)))
    with open(path, "rb") as f:
        data = f.read()
    return ("100755" if st.st_mode & stat.S_IXUSR else "100644"), blob_id(data)


class IgnoreRules:
    """The ``.gitignore`` files of one slot, each parsed once per (mtime, size)."""

    def __init__(self, root: Path):
        self.root = root
        self._specs: dict[str, tuple[tuple[int, int], GitIgnoreSpec | None]] = {}

    def spec(self, prefix: str) -> GitIgnoreSpec | None:
        """The ignore rules of ``<root>/<prefix>.gitignore`` (prefix is '' or ends with '/')."""
        path = os.path.join(self.root, prefix, ".gitignore")
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            self._specs.pop(prefix, None)
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        ident = (st.st_mtime_ns, st.st_size)
        cached = self._specs.get(prefix)
        if cached is not None and cached[0] == ident:
            return cached[1]
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        spec = GitIgnoreSpec.from_lines(lines) if any(ln.strip() for ln in lines) else None
        self._specs[prefix] = (ident, spec)
        return spec

    @staticmethod
    def decide(stack: list[tuple[str, GitIgnoreSpec]], rel: str, is_dir: bool) -> bool:
        """True when ``rel`` is ignored; the deepest .gitignore with a matching pattern decides."""
        for prefix, spec in reversed(stack):
            sub = rel[len(prefix) :]
            verdict = spec.check_file(sub + "/" if is_dir else sub).include
            if verdict is not None:
                return verdict
        return False

    def path_ignored(self, rel: str) -> bool:
        """Whether a path (possibly deleted: then taken as a file) is ignored, parents included."""
        parts = rel.split("/")
        if ".git" in parts or (len(parts) == 1 and is_goldfish_file(rel)):
            return True
        stack: list[tuple[str, GitIgnoreSpec]] = []
        prefix = ""
        for i, part in enumerate(parts):
            spec = self.spec(prefix)
            if spec is not None:
                stack.append((prefix, spec))
            last = i == len(parts) - 1
            is_dir = not last or os.path.isdir(os.path.join(self.root, rel))
            if stack and self.decide(stack, prefix + part, is_dir):
                return True
            prefix += part + "/"
        return False


@dataclass
class SlotScan:
    files: dict[str, FileKey] = field(default_factory=dict)
    large: dict[str, int] = field(default_factory=dict)
    cache: dict[str, list[Any]] = field(default_factory=dict)
    cache_changed: bool = False


def scan_slot(root: Path, *, max_bytes: int, rules: IgnoreRules, cache: dict[str, list[Any]]) -> SlotScan:
    """Every versionable file of the slot with its (mode, blob); unchanged files are not re-read.

    ``cache`` maps path -> [size, mtime_ns, ctime_ns, ino, mode, blob, hashed_at_ns] from the
    previous scan; the scan returns the refreshed cache.
    """
    scan = SlotScan()
    now = time.time_ns()
    stack: list[tuple[str, GitIgnoreSpec]] = []

    def walk(directory: str, prefix: str) -> None:
        spec = rules.spec(prefix)
        if spec is not None:
            stack.append((prefix, spec))
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            entries = []
        for entry in entries:
            name = entry.name
            if name == ".git" or (not prefix and is_goldfish_file(name)):
                continue
            rel = prefix + name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                if is_dir:
                    if not (stack and IgnoreRules.decide(stack, rel, True)):
                        walk(entry.path, rel + "/")
                    continue
                if stack and IgnoreRules.decide(stack, rel, False):
                    continue
                st = entry.stat(follow_symlinks=False)
                _add_file(scan, entry.path, rel, st, max_bytes, cache, now)
            except (FileNotFoundError, PermissionError):
                continue  # vanished or unreadable mid-scan; the next event rescans
        if spec is not None:
            stack.pop()

    walk(str(root), "")
    return scan


def _add_file(
    scan: SlotScan, path: str, rel: str, st: os.stat_result, max_bytes: int,
    cache: dict[str, list[Any]], now: int,
) -> None:
    if stat.S_ISLNK(st.st_mode):
        mode = "120000"
    elif stat.S_ISREG(st.st_mode):
        if st.st_size > max_bytes:
            scan.large[rel] = st.st_size
            return
        mode = "100755" if st.st_mode & stat.S_IXUSR else "100644"
    else:
        return  # fifos, sockets, devices: git does not version them either
    key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, mode]
    old = cache.get(rel)
    if old is not None and old[:5] == key and max(st.st_mtime_ns, st.st_ctime_ns) + RACY_NS < int(old[6]):
        scan.files[rel] = (mode, str(old[5]))
        scan.cache[rel] = old
        return
    mode, blob = file_key(path, st)
    scan.files[rel] = (mode, blob)
    scan.cache[rel] = [*key, blob, now]
    scan.cache_changed = True


def compare(current: dict[str, FileKey], base: dict[str, FileKey]) -> list[tuple[str, str]]:
    """(status, path) for every difference, status in added/modified/deleted; sorted by path."""
    out = [(("modified" if path in base else "added"), path) for path, key in current.items() if base.get(path) != key]
    out += [("deleted", path) for path in base if path not in current]
    out.sort(key=lambda item: item[1])
    return out


# ------------------------------------------------------------------ slot directories
def temp_dir(workspaces_dir: Path, slot: str, marker: str) -> Path:
    return workspaces_dir / f".{slot}{marker}{secrets.token_hex(4)}"


def sweep_temp_dirs(workspaces_dir: Path) -> None:
    """Remove work directories left by a crash. Call under the project lock (no one uses them)."""
    try:
        entries = list(os.scandir(workspaces_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith(".") and any(m in entry.name for m in TEMP_MARKERS) and entry.is_dir():
            shutil.rmtree(entry.path, ignore_errors=True)


def is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def _stays(path: Path, removing: set[str], slot: Path) -> bool:
    """Whether ``path`` still exists once the files in ``removing`` are deleted."""
    if path.is_symlink() or not path.is_dir():
        return str(path.relative_to(slot)) not in removing
    for dirpath, dirnames, filenames in os.walk(path):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in (*filenames, *links):
            if os.path.relpath(os.path.join(dirpath, name), slot) not in removing:
                return True
    return False


def replace_blockers(slot: Path, incoming: Iterable[str], removing: set[str]) -> list[str]:
    """Incoming paths that would overwrite, or need to go below, something that stays in the
    slot (an ignored or oversized file or directory); writing them would lose that data."""
    blocked = []
    for rel in incoming:
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            p = slot / "/".join(parts[:i])
            if not (p.is_symlink() or p.exists()):
                break  # nothing below a missing path can be in the way
            if i < len(parts) and p.is_dir() and not p.is_symlink():
                continue  # files may go into a directory that stays
            if _stays(p, removing, slot):
                blocked.append(rel)
            break
    return sorted(blocked)


def replace_files(slot: Path, source: Path, remove: Iterable[str]) -> None:
    """Delete the versioned files ``remove`` from the slot, then move every file of ``source`` in.

    Ignored and oversized files stay. Refuses (changing nothing) when a file of ``source``
    would land on a directory or below a file that stays in the slot.
    """
    removing = set(remove)
    incoming: list[str] = []
    for dirpath, dirnames, filenames in os.walk(source):
        rel_dir = os.path.relpath(dirpath, source)
        entries = filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in entries:
            incoming.append(name if rel_dir == "." else f"{rel_dir}/{name}")
    blocked = replace_blockers(slot, incoming, removing)
    if blocked:
        raise Conflict(
            f"Cannot restore {', '.join(blocked[:5])}: an unversioned (ignored or oversized) "
            "file or directory is in the way in the slot.",
            fix="Move that unversioned file or directory out of the slot, then retry.",
        )
    parents: set[Path] = set()
    for rel in removing:
        target = slot / rel
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        parents.add(target.parent)
    for directory in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        d = directory
        while d != slot and slot in d.parents:
            try:
                d.rmdir()  # only succeeds when empty: ignored contents keep their directory
            except OSError:
                break
            d = d.parent
    for rel in incoming:
        target = slot / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source / rel, target)


def _move(src: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(src, dest)  # a rename on one filesystem, a copy across


def park_unversioned(root: Path, versioned: Iterable[str], dest: Path) -> int:
    """Move everything under ``root`` that no version holds (ignored or oversized files, nested
    ``.git`` directories) into ``dest``, keeping relative paths. Returns the entries moved."""
    files = set(versioned)
    dirs = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
    moved = 0

    def walk(directory: str, prefix: str) -> None:
        nonlocal moved
        with os.scandir(directory) as it:
            entries = list(it)
        for entry in entries:
            rel = prefix + entry.name
            if not prefix and entry.name in RESERVED_ROOT_FILES:
                continue
            if entry.is_dir(follow_symlinks=False) and rel in dirs:
                walk(entry.path, rel + "/")
            elif rel not in files:
                _move(entry.path, dest / rel)
                moved += 1

    walk(str(root), "")
    return moved


def restore_parked(parked: Path, target: Path) -> tuple[int, list[str]]:
    """Move parked entries back under ``target`` (oldest parking first). An entry whose path is
    taken stays parked and is reported. Returns (entries restored, paths left parked)."""
    restored, left = 0, []
    if not parked.is_dir():
        return 0, []
    for batch in sorted(p for p in parked.iterdir() if p.is_dir()):
        for dirpath, dirnames, filenames in os.walk(batch, topdown=True):
            rel_dir = os.path.relpath(dirpath, batch)
            keep_walking = []
            for name in [*dirnames, *filenames]:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                src = os.path.join(dirpath, name)
                dest = target / rel
                is_real_dir = name in dirnames and not os.path.islink(src)
                if not (dest.exists() or dest.is_symlink()):
                    _move(src, dest)
                    restored += 1
                elif is_real_dir and dest.is_dir() and not dest.is_symlink():
                    keep_walking.append(name)  # merge into the existing directory
                else:
                    left.append(rel)
            dirnames[:] = [d for d in dirnames if d in keep_walking]
        _remove_empty_dirs(batch)
    if parked.is_dir() and not any(parked.iterdir()):
        parked.rmdir()
    return restored, left


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
