"""Backup result models, shared by the MCP tools and the CLI."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Tier = Literal["event", "daily", "weekly", "manual"]
TIERS: tuple[Tier, ...] = ("event", "daily", "weekly", "manual")


class BackupInfo(BaseModel):
    backup_id: str = Field(description="bk-… id; `goldfish restore <id>` restores it.")
    tier: Tier = Field(description="event | daily | weekly | manual; retention is per tier.")
    trigger: str = Field(description="What took it: manual, an operation (save_version, …), daily or weekly.")
    details: str | None = Field(default=None, description="Free text given with create_backup.")
    created_at: str = Field(description="When the snapshot was taken (UTC, ISO 8601).")
    location: str = Field(description="Where its manifest is stored.")
    size_bytes: int = Field(description="Bytes of every part it needs (compressed; parts are shared between backups).")
    new_bytes: int = Field(description="Bytes this backup added to the target (the rest was already there).")
    deleted_at: str | None = Field(default=None, description="When cleanup deleted it (include_deleted only).")


class CreateBackupResult(BaseModel):
    backup_id: str = Field(description="The new backup's id.")
    tier: Tier = Field(description="Its tier.")
    location: str = Field(description="Where it is stored.")
    size_bytes: int = Field(description="Bytes of every part it needs.")
    new_bytes: int = Field(description="Bytes written for it (incremental against the previous backup).")
    seconds: float = Field(description="How long it took.")
    warning: str | None = Field(default=None, description="Set when the target does not survive losing this disk.")


class ListBackupsResult(BaseModel):
    backups: list[BackupInfo] = Field(description="Newest first (at most 100; total counts them all).")
    counts: dict[str, int] = Field(description="Live backups per tier.")
    total: int = Field(description="Number of backups that match (the list may be shorter).")
    has_more: bool = Field(default=False, description="True when more matched than are listed here.")
    target: str = Field(description="Where backups are stored.")


class CleanupBackupsResult(BaseModel):
    deleted_expired: list[str] = Field(description="Daily and weekly backups past their tier's count.")
    deleted_excess: list[str] = Field(description="Event and manual backups beyond their tier's count.")
    kept: dict[str, int] = Field(description="Live backups per tier after cleanup.")
    freed_bytes: int = Field(description="Bytes of parts no live backup needs any more, now deleted.")


class LastBackup(BaseModel):
    backup_id: str
    tier: Tier
    trigger: str
    created_at: str


class BackupStatus(BaseModel):
    enabled: bool = Field(description="Whether automatic (event/daily/weekly) backups are on (backups.auto).")
    target: str = Field(description="Where backups go.")
    survives_disk_loss: bool = Field(description="False when the target is on the same disk as the project.")
    advice: str | None = Field(default=None, description="How to make backups survive losing this disk.")
    counts: dict[str, int] = Field(description="Live backups per tier.")
    last_backup: LastBackup | None = Field(description="The newest backup, if any.")
    expired_pending_cleanup: int = Field(description="Backups cleanup_backups() would delete now.")
    retention: dict[str, int | None] = Field(description="How many backups each tier keeps (null: all).")
    last_auto_error: str | None = Field(default=None, description="The last automatic backup's error, if it failed.")
