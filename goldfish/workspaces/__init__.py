"""Workspaces: create, mount, hibernate, save and roll back workspaces; slots, dirty detection, the
slot watcher and versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.workspaces.service import Workspaces, SyncOutcome
    from goldfish.workspaces.models import FileChange, RunVersion, CreateWorkspaceResult, MountResult, HibernateResult, SaveVersionResult, DiffResult, RollbackResult, DeleteWorkspaceResult, TagInfo, Lineage, InspectWorkspaceResult, SlotInfo
    from goldfish.workspaces.watcher import SlotWatcher
    from goldfish.workspaces.dirty import DirtyChecker
    from goldfish.workspaces.versions import Versions

__all__ = [
    "CreateWorkspaceResult",
    "DeleteWorkspaceResult",
    "DiffResult",
    "DirtyChecker",
    "FileChange",
    "HibernateResult",
    "InspectWorkspaceResult",
    "Lineage",
    "MountResult",
    "RollbackResult",
    "RunVersion",
    "SaveVersionResult",
    "SlotInfo",
    "SlotWatcher",
    "SyncOutcome",
    "TagInfo",
    "Versions",
    "Workspaces",
]

__getattr__ = lazy_face(__name__, {
    "Workspaces": "service",
    "SyncOutcome": "service",
    "FileChange": "models",
    "RunVersion": "models",
    "CreateWorkspaceResult": "models",
    "MountResult": "models",
    "HibernateResult": "models",
    "SaveVersionResult": "models",
    "DiffResult": "models",
    "RollbackResult": "models",
    "DeleteWorkspaceResult": "models",
    "TagInfo": "models",
    "Lineage": "models",
    "InspectWorkspaceResult": "models",
    "SlotInfo": "models",
    "SlotWatcher": "watcher",
    "DirtyChecker": "dirty",
    "Versions": "versions",
})
