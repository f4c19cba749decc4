"""Git plumbing over the hidden dev repo: per-workspace index, trees, commits, refs, archive, diff.

No worktree is ever checked out. A slot is staged with ``GIT_WORK_TREE=<slot>`` and a
per-workspace ``GIT_INDEX_FILE``, so git's own ``.gitignore`` handling (real gitwildmatch,
nested files, negation) decides what a version holds. Callers hold the project lock for
every mutation (refs); object writes are safe without it.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from goldfish.errors import NotFound
from goldfish.git.cmd import GitError, git, git_ok, git_stream

BRANCH_PREFIX = "refs/heads/goldfish/"
ARCHIVE_PREFIX = "refs/archive/"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
TRAILER_MOUNT = "Goldfish-Mount"

# Files Goldfish keeps at a slot's root; never part of a version.
MOUNT_FILE = ".goldfish-mount.json"
SLOT_STATE_FILE = "STATE.md"
RESERVED_ROOT_FILES = (SLOT_STATE_FILE, MOUNT_FILE)

# Settings that make staging independent of the user's global git config.
_SLOT_CONFIG = (
    "-c", "core.autocrlf=false",
    "-c", "core.safecrlf=false",
    "-c", "core.symlinks=true",
    "-c", "core.fsmonitor=false",
    "-c", "advice.addEmbeddedRepo=false",
    # Cheaper rescans of a mostly unchanged slot (per-directory untracked cache, compact index).
    "-c", "core.untrackedCache=true",
    "-c", "index.version=4",
)


class SkippedFile(BaseModel):
    """A slot file left out of a version."""

    path: str = Field(description="Path relative to the slot.")
    size_mb: float = Field(description="Size in MB.")
    reason: str = Field(description="Why it was left out, and what to do instead.")


@dataclass(frozen=True)
class Staged:
    tree: str
    skipped: list[SkippedFile]


@dataclass(frozen=True)
class RefOp:
    """One ref change in an all-or-nothing ``update-ref --stdin`` transaction."""

    action: Literal["create", "update", "delete", "verify"]
    ref: str
    new: str | None = None
    old: str | None = None


@dataclass
class TreeDiff:
    files: list[tuple[str, str]] = field(default_factory=list)  # (status letter, path)
    text: str = ""
    truncated: bool = False


def large_file_reason(size: int, limit_mb: float) -> str:
    return (
        f"larger than workspace.max_file_mb ({size / 1e6:.1f} MB > {limit_mb:g} MB); not versioned. "
        "Keep data out of the slot: register it with register_source(name, gcs_path, ...) and read it "
        "as a stage input, or raise workspace.max_file_mb in goldfish.yaml."
    )


class DevRepo:
    """The hidden dev repo: branch ``goldfish/<workspace>``, version tags ``<workspace>-v<N>``."""

    def __init__(self, path: Path, gf_dir: Path):
        self.path = path
        self.git_dir = path / ".git"
        self.index_dir = gf_dir / "index"

    # ------------------------------------------------------------------ names
    @staticmethod
    def branch_ref(workspace: str) -> str:
        return BRANCH_PREFIX + workspace

    @staticmethod
    def version_tag(workspace: str, number: int) -> str:
        return f"{workspace}-v{number}"

    @staticmethod
    def tag_ref(tag: str) -> str:
        return "refs/tags/" + tag

    def index_path(self, workspace: str) -> Path:
        return self.index_dir / workspace

    # ------------------------------------------------------------------ reads
    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        return git(self.path, *args, input=input, check=check)

    def commit_of(self, rev: str) -> str | None:
        out = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False)
        sha = out.decode().strip()
        return sha or None

    def head(self, workspace: str) -> str | None:
        return self.commit_of(self.branch_ref(workspace))

    def tree_of(self, commit: str) -> str:
        return self.run("rev-parse", "--verify", "--end-of-options", f"{commit}^{{tree}}").decode().strip()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return git_ok(self.path, "merge-base", "--is-ancestor", ancestor, descendant)

    def refs(self, prefix: str) -> dict[str, str]:
        out = self.run("for-each-ref", "--format=%(refname)%00%(objectname)", prefix)
        result: dict[str, str] = {}
        for line in out.decode(errors="surrogateescape").splitlines():
            name, _, sha = line.partition("\0")
            result[name] = sha
        return result

    def ls_tree(self, rev: str) -> dict[str, tuple[str, str]]:
        """``{path: (mode, blob sha)}`` for every file and symlink in ``rev`` (recursively)."""
        out = self.run("ls-tree", "-r", "-z", "--full-tree", rev)
        files: dict[str, tuple[str, str]] = {}
        for entry in out.split(b"\0"):
            if not entry:
                continue
            meta, _, path = entry.partition(b"\t")
            mode, kind, sha = meta.decode().split(" ")
            if kind == "blob":
                files[os.fsdecode(path)] = (mode, sha)
        return files

    def read_file(self, rev: str, path: str, limit: int) -> str | None:
        out = self.run("cat-file", "-p", f"{rev}:{path}", check=False)
        return out[:limit].decode(errors="replace") if out else None

    def commits_since(self, base: str, head: str) -> list[tuple[str, list[str], str]]:
        """Commits in ``base..head`` as (sha, parents, Goldfish-Mount trailer), newest first."""
        fmt = f"--format=%H%x00%P%x00%(trailers:key={TRAILER_MOUNT},valueonly,separator=%x2C)%x1e"
        out = self.run("log", fmt, f"{base}..{head}", "--")
        result = []
        for record in out.decode().split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, parents, mount = [*record.split("\0"), "", ""][:3]
            result.append((sha, parents.split(), mount.strip()))
        return result

    # ----------------------------------------------------------------- writes
    def write_empty_tree(self) -> str:
        return self.run("mktree", input=b"").decode().strip()

    def write_tree(self, files: Mapping[str, bytes]) -> str:
        """A tree holding ``files`` (relative POSIX path -> content, mode 644), written with no work tree."""
        root: dict[str, Any] = {}
        for path, data in files.items():
            node = root
            *dirs, leaf = path.split("/")
            for d in dirs:
                node = node.setdefault(d, {})
            node[leaf] = data

        def build(node: dict[str, Any]) -> str:
            lines = []
            for name, value in node.items():
                if isinstance(value, dict):
                    lines.append(f"040000 tree {build(value)}\t{name}")
                else:
                    blob = self.run("hash-object", "-w", "--stdin", input=value).decode().strip()
                    lines.append(f"100644 blob {blob}\t{name}")
            return self.run("mktree", input="".join(line + "\n" for line in lines).encode()).decode().strip()

        return build(root)

    def commit(self, tree: str, parents: Sequence[str], message: str) -> str:
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.run(*args, "-F", "-", input=message.encode()).decode().strip()

    def update_refs(self, ops: Iterable[RefOp]) -> None:
        """Apply every op or none (git ref transaction); ``old`` values are compare-and-set."""
        payload = bytearray()
        for op in ops:
            if op.action == "create":
                payload += f"create {op.ref}\0{op.new}\0".encode()
            elif op.action == "update":
                payload += f"update {op.ref}\0{op.new}\0{op.old or ''}\0".encode()
            elif op.action == "verify":
                payload += f"verify {op.ref}\0{op.old or ''}\0".encode()
            else:
                payload += f"delete {op.ref}\0{op.old or ''}\0".encode()
        if payload:
            self.run("update-ref", "--stdin", "-z", input=bytes(payload))

    # ---------------------------------------------------------------- staging
    def _slot_env(self, workspace: str, slot_dir: Path) -> dict[str, str]:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        return {
            "GIT_DIR": str(self.git_dir),
            "GIT_WORK_TREE": str(slot_dir),
            "GIT_INDEX_FILE": str(self.index_path(workspace)),
        }

    def _slot_config(self) -> tuple[str, ...]:
        # The user's global excludes file must not decide what a version holds.
        excludes = self.index_dir / ".no-excludes"
        if not excludes.exists():
            excludes.write_bytes(b"")
        return (*_SLOT_CONFIG, "-c", f"core.excludesFile={excludes}")

    def stage_slot(self, workspace: str, slot_dir: Path, max_file_mb: float) -> Staged:
        """Stage the slot into the workspace's index and return its tree id (nothing is committed).

        The slot's ``.gitignore`` files decide what is included; STATE.md and the mount file at
        the root, and files over ``max_file_mb``, are always left out.
        """
        if not slot_dir.is_dir():
            raise NotFound(f"Slot directory {slot_dir} is missing.", fix="Mount the workspace again.")
        env = self._slot_env(workspace, slot_dir)
        try:
            return self._stage(slot_dir, env, max_file_mb)
        except GitError as exc:
            if "index" not in exc.message.lower():
                raise
            # A damaged per-workspace index is only a cache of the slot: rebuild it once.
            self.index_path(workspace).unlink(missing_ok=True)
            return self._stage(slot_dir, env, max_file_mb)

    def _stage(self, slot_dir: Path, env: dict[str, str], max_file_mb: float) -> Staged:
        limit = int(max_file_mb * 1_000_000)
        config = self._slot_config()
        # Only new and modified files can be over the size cap or change the ignore rules: listing
        # just those (git compares stat data in C) keeps a sync of a large, mostly unchanged slot cheap.
        listing = git(slot_dir, *config, "ls-files", "-z", "-t", "-m", "-o", "--exclude-standard", env=env)
        reserved = {os.fsencode(name) for name in RESERVED_ROOT_FILES}
        skipped: list[SkippedFile] = []
        drop: list[bytes] = []
        large: list[bytes] = []
        ignores_changed = False
        for entry in listing.split(b"\0"):
            if len(entry) < 3:
                continue
            status, path = entry[:1], entry[2:]
            if path == b".gitignore" or path.endswith(b"/.gitignore"):
                ignores_changed = True
            if path in reserved or (path.startswith(b".") and path.endswith(b".tmp") and b"/" not in path
                                    and any(path.startswith(b"." + r + b".") for r in reserved)):
                if status != b"?":
                    drop.append(path)
                continue
            try:
                st = os.lstat(os.path.join(os.fsencode(slot_dir), path))
            except (FileNotFoundError, NotADirectoryError):
                continue  # deleted (or a parent became a file): add -A records the removal
            if stat.S_ISREG(st.st_mode) and st.st_size > limit:
                large.append(path)
                skipped.append(
                    SkippedFile(
                        path=path.decode("utf-8", "backslashreplace"),
                        size_mb=round(st.st_size / 1e6, 2),
                        reason=large_file_reason(st.st_size, max_file_mb),
                    )
                )
                if status != b"?":
                    drop.append(path)
        if ignores_changed and Path(env["GIT_INDEX_FILE"]).exists():
            # Files tracked earlier but now matched by a .gitignore leave the version too: a slot
            # is plain files, so its .gitignore alone decides what a version holds. Only a new,
            # changed or deleted .gitignore can cause that.
            ignored = git(slot_dir, *config, "ls-files", "-z", "-c", "-i", "--exclude-standard", env=env)
            drop += [p for p in ignored.split(b"\0") if p]
        if drop:
            # Index entries only (paths taken literally); the files themselves stay in the slot.
            git(slot_dir, "update-index", "--force-remove", "-z", "--stdin", input=b"\0".join(drop) + b"\0", env=env)
        specs = [b"."] + [b":(exclude,top,literal)" + p for p in (*reserved, *large)]
        specs += [b":(exclude,top,glob)." + p + b".*.tmp" for p in reserved]  # their atomic-write temp files
        git(
            slot_dir, *config, "add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul",
            input=b"\0".join(specs), env=env,
        )
        tree = git(slot_dir, "write-tree", env=env).decode().strip()
        return Staged(tree=tree, skipped=skipped)

    # ---------------------------------------------------------------- archive
    def archive_into(self, rev: str, dest: Path) -> list[str]:
        """Extract ``git archive rev`` into ``dest``; returns members refused as unsafe.

        Extraction uses tarfile's ``data`` filter: absolute paths, ``..``, links that point
        outside ``dest`` and device files are skipped (and reported), never written.
        """
        refused: list[str] = []

        def _filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
            try:
                return tarfile.data_filter(member, path)
            except tarfile.FilterError as exc:
                refused.append(f"{member.name}: {exc}")
                return None

        dest.mkdir(parents=True, exist_ok=True)
        try:
            with git_stream(self.path, "archive", "--format=tar", rev) as stream, tarfile.open(
                fileobj=stream, mode="r|"
            ) as tar:
                tar.extractall(dest, filter=_filter)
        except tarfile.ReadError as exc:
            # The archive of an empty tree is a lone header that tarfile cannot read.
            if self.tree_of(rev) != EMPTY_TREE:
                raise GitError(f"git archive of {rev[:10]} is unreadable: {exc}", fix="Run `goldfish doctor`.") from exc
        return refused

    # ------------------------------------------------------------------- diff
    def diff(self, left: str, right: str, max_chars: int) -> TreeDiff:
        """Name-status and a unified diff (cut at ``max_chars``) between two trees or commits."""
        result = TreeDiff()
        if left == right:
            return result
        base = ("diff", "--no-renames", "--no-ext-diff", "--no-textconv", "--no-color")
        out = self.run(*base, "--name-status", "-z", left, right)
        parts = out.split(b"\0")
        for status, path in zip(parts[0::2], parts[1::2], strict=False):
            if status:
                result.files.append((status.decode()[:1], path.decode("utf-8", "backslashreplace")))
        limit = max_chars * 4 + 4
        with git_stream(self.path, *base, "-U3", left, right) as stream:
            raw = stream.read(limit)
            more = bool(stream.read(1))
        text = raw.decode(errors="replace")
        if more or len(text) > max_chars:
            result.text = text[:max_chars]
            result.truncated = True
        else:
            result.text = text
        return result


class RefJournal:
    """Ref changes made while a store transaction is open, undone if it never commits.

    Store rows are written last, so an exception means no row refers to these refs; a hard
    crash instead leaves them for recovery (orphan version tags are adopted, a branch moved by
    this slot's own commits is fast-forwarded into the mount row).
    """

    def __init__(self, repo: DevRepo):
        self.repo = repo
        self.applied: list[RefOp] = []

    def apply(self, ops: Sequence[RefOp]) -> None:
        self.repo.update_refs(ops)
        self.applied.extend(ops)

    def undo(self) -> None:
        for op in reversed(self.applied):
            if op.action == "verify":
                continue
            if op.action == "create":
                inverse = RefOp("delete", op.ref, old=op.new)
            elif op.action == "update":
                inverse = RefOp("update", op.ref, new=op.old, old=op.new)
            else:
                inverse = RefOp("create", op.ref, new=op.old)
            try:
                self.repo.update_refs([inverse])
            except GitError:
                continue  # moved on since (compare-and-set failed): leave it to recovery
        self.applied.clear()
