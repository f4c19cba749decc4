"""A consistent snapshot of one project, taken under the project lock, and its parts.

Under the lock (no commit can be half-done then) every store file is hard-linked into a staging
directory — commits replace partitions by rename, so a link keeps the bytes of that instant — and
each event log's size is recorded (logs are append-only: the bytes up to that size never change).
The dev repo's refs are read under the same lock. Everything slow (hashing, compressing, packing
git objects, uploading) happens after the lock is released.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.git.cmd import git
from goldfish.store import integrity

if TYPE_CHECKING:
    from goldfish.project import Project

VERSION_FILE = "STORE_VERSION.json"


@dataclass
class Snapshot:
    created_at: str
    staging: Path
    files: dict[str, tuple[Path, tuple[int, int, int]]] = field(default_factory=dict)  # name -> (copy, identity)
    logs: dict[str, tuple[Path, int]] = field(default_factory=dict)  # log name -> (copy, size at the instant)
    refs: dict[str, str] = field(default_factory=dict)
    head: str = "refs/heads/main"
    registry: list[str] = field(default_factory=list)


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:  # another filesystem, or links not allowed: copy (still under the lock)
        shutil.copy2(src, dest)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def take(project: Project, staging: Path, now: datetime | None = None) -> Snapshot:
    store_root = project.store_dir
    staging.mkdir(parents=True, exist_ok=True)
    with project.store.lock():
        snap = Snapshot(created_at=iso(now or datetime.now(UTC)), staging=staging)
        names = integrity.list_partition_files(store_root)
        for name in [*names, VERSION_FILE[: -len(".json")]]:
            src = store_root / f"{name}.json"
            if not src.exists():
                continue
            st = src.stat()
            dest = staging / "store" / f"{name}.json"
            _link(src, dest)
            snap.files[f"store/{name}.json"] = (dest, (st.st_ino, st.st_size, st.st_mtime_ns))
        for log in sorted((store_root / "events").glob("*.jsonl")):
            dest = staging / "events" / log.name
            size = log.stat().st_size
            _link(log, dest)
            snap.logs[log.stem] = (dest, size)
        for rel, src in (("config/goldfish.yaml", project.config_path), ("dev/STATE.md", project.state_md_path)):
            if src.is_file():
                dest = staging / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                st = src.stat()
                shutil.copyfile(src, dest)
                snap.files[rel] = (dest, (st.st_ino, st.st_size, st.st_mtime_ns))
        out = git(project.dev_path, "for-each-ref", "--format=%(objectname) %(refname)")
        for line in out.decode(errors="surrogateescape").splitlines():
            sha, _, ref = line.partition(" ")
            if ref:
                snap.refs[ref] = sha
        head = git(project.dev_path, "symbolic-ref", "-q", "HEAD", check=False).decode().strip()
        snap.head = head or "refs/heads/main"
        project_json = store_root / "project.json"
        if project_json.exists():
            import orjson

            try:
                snap.registry = sorted(orjson.loads(project_json.read_bytes()).get(integrity.REGISTRY) or {})
            except (orjson.JSONDecodeError, AttributeError):
                snap.registry = []
    return snap


def check_parts(snap: Snapshot, store_root: Path) -> None:
    """Refuse to back up a damaged store: it would replace the last good copy."""
    present = {name[len("store/"):-len(".json")] for name in snap.files if name.startswith("store/")}
    for name in snap.registry:
        if name.startswith("events/"):
            if name[len("events/"):] not in snap.logs:
                raise integrity.damage_error(store_root, store_root / f"{name}.jsonl", "the event log is missing "
                                             "although the store recorded appending to it")
            continue
        if name not in present:
            raise integrity.damage_error(store_root, store_root / f"{name}.json",
                                         "the file is missing although the store recorded writing it")


def log_chunk(path: Path, size: int, prev: dict[str, Any] | None) -> tuple[str, int, bytes]:
    """(sha256 of the log up to ``size``, offset of the new bytes, the new bytes): only the tail after
    the previous backup's copy when the log still starts with it, else the whole log."""
    with open(path, "rb") as f:
        if prev is not None and 0 < int(prev["size"]) <= size:
            h = hashlib.sha256()
            remaining = int(prev["size"])
            while remaining:
                block = f.read(min(remaining, 8 << 20))
                if not block:
                    break
                h.update(block)
                remaining -= len(block)
            if h.hexdigest() == prev["sha256"]:
                tail = f.read(size - int(prev["size"]))
                h.update(tail)
                return h.hexdigest(), int(prev["size"]), tail
            f.seek(0)
        data = f.read(size)
    return hashlib.sha256(data).hexdigest(), 0, data


def git_pack(dev: Path, tips: list[str], exclude: list[str]) -> bytes | None:
    """A git bundle (v2) of the objects reachable from ``tips`` and not from ``exclude``; None when empty."""
    revs = "".join(f"{t}\n" for t in sorted(set(tips))) + "".join(f"^{e}\n" for e in sorted(set(exclude)))
    listed = git(dev, "rev-list", "--objects", "--stdin", input=revs.encode(), timeout=3600)
    if not listed.strip():
        return None
    pack = git(dev, "pack-objects", "--revs", "--stdout", "-q", input=revs.encode(), timeout=3600)
    header = "# v2 git bundle\n" + "".join(f"-{e}\n" for e in sorted(set(exclude))) + \
        "".join(f"{t} refs/goldfish-backup/{i}\n" for i, t in enumerate(sorted(set(tips)))) + "\n"
    return header.encode() + pack
