"""The project context: where things live, the loaded config, the store, the services.

One ``Project`` is built per process (MCP server, TUI, runner, CLI). Services
(``project.workspaces``, ``project.runs``, ...) are created lazily and share
the same config, store and dev repo, so the TUI and the MCP tools run the
same code.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from goldfish.errors import NotInitialized
from goldfish.store import Store, Transaction

if TYPE_CHECKING:
    from goldfish.backups.service import Backups
    from goldfish.config import GoldfishConfig
    from goldfish.git.devrepo import DevRepo
    from goldfish.images.service import Images
    from goldfish.issues import Issue
    from goldfish.workspaces.dirty import DirtyChecker
    from goldfish.journal.audit import Journal
    from goldfish.records.service import Records
    from goldfish.runs.service import Runs
    from goldfish.sources.service import Sources
    from goldfish.storage import GcsStorage, ObjectStorage
    from goldfish.journal.state_md import StateMd
    from goldfish.svs.patterns import Patterns
    from goldfish.workspaces.versions import Versions
    from goldfish.workspaces.service import Workspaces

CONFIG_FILE = "goldfish.yaml"

# Who is acting: recorded on every audit entry and state transition.
Source = Literal["mcp", "tui", "cli", "runner", "reconciler", "test"]


def find_project_root(explicit: Path | str | None = None, start: Path | None = None) -> Path:
    """``--project PATH`` if given, else the current directory and its parents."""
    if explicit is not None:
        root = Path(explicit).expanduser().resolve()
        if not (root / CONFIG_FILE).is_file():
            raise NotInitialized(
                f"No {CONFIG_FILE} in {root}.",
                fix=f"Run `goldfish init {root}` (or initialize_project) to create a Goldfish project there.",
            )
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise NotInitialized(
        f"No {CONFIG_FILE} in {here} or any parent directory.",
        fix="Run `goldfish init` in your ML project directory, or pass --project PATH.",
    )


def _history_index_hook(tx: Transaction) -> None:
    """The history index is updated in the transaction that changes a record or its run (its module is
    imported only once a workspace partition is written)."""
    if any(partition.startswith("ws/") and storage.dirty for partition, storage in tx._parts.items()):
        from goldfish.records.index import maintain

        maintain(tx)


class Project:
    """Config + store + dev repo of one Goldfish project, and its services."""

    def __init__(self, root: Path, config: GoldfishConfig, *, source: Source = "cli"):
        self.root = Path(root).resolve()
        self.source: Source = source
        self.config = config
        self.config_path = self.root / CONFIG_FILE
        self.dev_path = config.dev_repo(self.root)
        self.gf_dir = self.dev_path / ".goldfish"
        self.store_dir = self.gf_dir / "store"
        self.runs_dir = self.gf_dir / "runs"
        self.objects_dir = config.objects_root(self.root)
        self.backups_dir = self.gf_dir / "backups"
        self.cache_dir = self.gf_dir / "cache"
        self.workspaces_dir = config.workspaces_root(self.root)
        self.state_md_path = config.state_md_path(self.root)

    @classmethod
    def open(cls, path: Path | str | None = None, *, start: Path | None = None, source: Source = "cli") -> Project:
        from goldfish.config import load_config

        root = find_project_root(path, start)
        config = load_config(root / CONFIG_FILE)
        project = cls(root, config, source=source)
        if not (project.dev_path / ".git").exists() or not project.gf_dir.is_dir():
            raise NotInitialized(
                f"{root / CONFIG_FILE} points at dev repo {project.dev_path}, which is missing or not initialized.",
                fix=f"Restore {project.dev_path}, fix dev_repo_path in goldfish.yaml, or run `goldfish init {root}`.",
            )
        return project

    @cached_property
    def store(self) -> Store:
        store = Store(self.store_dir)
        store.on_commit.append(self._after_commit)
        store.commit_hooks.append(_history_index_hook)
        return store

    def _after_commit(self, tx: Transaction) -> None:
        """Automatic backups after high-value operations (never slows or fails them)."""
        from goldfish.backups.auto import after_operation

        after_operation(self, tx)

    @cached_property
    def backups(self) -> Backups:
        """create_backup, list_backups, cleanup_backups, get_backup_status (docs/backups.md)."""
        from goldfish.backups.service import Backups

        return Backups(self)

    @cached_property
    def runs(self) -> Runs:
        from goldfish.runs.service import Runs

        return Runs(self)

    @cached_property
    def records(self) -> Records:
        from goldfish.records.service import Records

        return Records(self)

    @cached_property
    def sources(self) -> Sources:
        from goldfish.sources.service import Sources

        return Sources(self)

    @cached_property
    def images(self) -> Images:
        """Base and project images (manage_base_images, get_build_status)."""
        from goldfish.images.service import Images

        return Images(self)

    @cached_property
    def patterns(self) -> Patterns:
        """Failure-pattern knowledge base (SVS)."""
        from goldfish.svs.patterns import Patterns

        return Patterns(self)

    @cached_property
    def storage(self) -> ObjectStorage:
        """The object store ``storage.backend`` names (sources, artifacts, checkpoints, backups)."""
        from goldfish.storage import project_storage

        return project_storage(self.config, self.objects_dir)

    @cached_property
    def bucket(self) -> GcsStorage | None:
        """The ``gcs.bucket`` store (cloud runs' outputs and checkpoints), or None without a bucket."""
        from goldfish.storage import bucket_storage

        return bucket_storage(self.config)

    def slot_path(self, slot: str) -> Path:
        return self.workspaces_dir / slot

    # Services: one per concern, created on first use.
    @cached_property
    def dev_repo(self) -> DevRepo:
        from goldfish.git.devrepo import DevRepo

        return DevRepo(self.dev_path, self.gf_dir)

    @cached_property
    def workspaces(self) -> Workspaces:
        from goldfish.workspaces.service import Workspaces

        def checkpoint_record(tx: Transaction, workspace: str, version: str, message: str) -> str | None:
            from goldfish.records.service import checkpoint_record

            return checkpoint_record(tx, workspace, version, message)

        return Workspaces(self, on_version_saved=checkpoint_record)

    @cached_property
    def versions(self) -> Versions:
        from goldfish.workspaces.versions import Versions

        return Versions(self)

    @cached_property
    def journal(self) -> Journal:
        from goldfish.journal.audit import Journal

        return Journal(self)

    @cached_property
    def state_md(self) -> StateMd:
        from goldfish.journal.state_md import StateMd

        return StateMd(self)

    @cached_property
    def dirty(self) -> DirtyChecker:
        from goldfish.workspaces.dirty import DirtyChecker

        return DirtyChecker(self)

    def reload_config(self) -> GoldfishConfig:
        """Re-read goldfish.yaml; on error the running config stays and the error is raised.

        Settings that decide where things live (dev repo, workspaces, object store, STATE.md) are
        fixed for the life of the process: services and the store already point there.
        """
        from goldfish.config import load_config
        from goldfish.errors import ConfigError

        new = load_config(self.config_path)
        moved = [
            f"{key} ({old} -> {now})"
            for key, old, now in (
                ("dev_repo_path", self.dev_path, new.dev_repo(self.root)),
                ("workspaces_dir", self.workspaces_dir, new.workspaces_root(self.root)),
                ("storage.local.root", self.objects_dir, new.objects_root(self.root)),
                ("state_md.path", self.state_md_path, new.state_md_path(self.root)),
            )
            if old != now
        ]
        if moved:
            raise ConfigError(
                f"goldfish.yaml moves {', '.join(moved)}; the running config was kept.",
                fix="Restart the server (and the TUI) to use the new locations, after moving the files there.",
            )
        self.config = new
        for derived in ("storage", "bucket", "backups"):  # built from the config on next use
            self.__dict__.pop(derived, None)
        return new

    def backend_issue(self, *, gpus: int = 0) -> Issue | None:
        """Why ``jobs.backend`` cannot run stages here (None when it can); see runs/availability.py."""
        from goldfish.runs.availability import backend_issue

        return backend_issue(self, gpus=gpus)

    @property
    def pid(self) -> int:
        return os.getpid()
