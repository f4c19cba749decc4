"""Backups and restore (docs/backups.md): consistent snapshots of the store, the dev repo (git bundles,
incremental along a chain), goldfish.yaml and STATE.md, stored content-addressed in a directory or a
bucket; tiers event/daily/weekly/manual with retention; restore and repair of a damaged store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.backups.auto import after_operation
    from goldfish.backups.models import (
        BackupInfo,
        BackupStatus,
        CleanupBackupsResult,
        CreateBackupResult,
        ListBackupsResult,
    )
    from goldfish.backups.repair import RepairReport, repair
    from goldfish.backups.restore import RestorePlan, restore
    from goldfish.backups.service import Backups
    from goldfish.backups.target import BackupError

__all__ = [
    "BackupError", "BackupInfo", "BackupStatus", "Backups", "CleanupBackupsResult", "CreateBackupResult",
    "ListBackupsResult", "RepairReport", "RestorePlan", "after_operation", "repair", "restore",
]

__getattr__ = lazy_face(__name__, {
    "after_operation": "auto",
    "BackupInfo": "models", "BackupStatus": "models", "CleanupBackupsResult": "models",
    "CreateBackupResult": "models", "ListBackupsResult": "models",
    "RepairReport": "repair", "repair": "repair",
    "RestorePlan": "restore", "restore": "restore",
    "Backups": "service", "BackupError": "target",
})
