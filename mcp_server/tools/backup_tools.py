"""Backup tools: create_backup, list_backups, cleanup_backups, get_backup_status."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from goldfish.backups.models import BackupStatus, CleanupBackupsResult, CreateBackupResult, ListBackupsResult, Tier
from mcp_server.budget import fit_page
from mcp_server.context import ServerContext, guarded


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(annotations=ToolAnnotations(
        title="Create backup", read_only_hint=False, destructive_hint=False, idempotent_hint=False,
        open_world_hint=True,
    ))
    @guarded
    def create_backup(
        trigger: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                                      description="Why, as a short label (default 'manual').")] = "manual",
        details: Annotated[str | None, Field(max_length=2000, description="Free text kept with the backup.")] = None,
    ) -> CreateBackupResult:
        """Back up the experiment memory now: the store (workspaces, versions, records, results, sources,
        lineage, audit, thoughts), the dev repo and goldfish.yaml, as one consistent snapshot.

        Incremental: only what changed since the previous backup is written. Manual backups are kept
        until you delete them (backups.keep_manual). Take one before a risky change; Goldfish also backs
        up by itself after high-value operations and daily/weekly. Returns the id to restore with
        `goldfish restore <id>`. Run outputs are not included (they stay in object storage).
        """
        return ctx.project().backups.create(tier="manual", trigger=trigger, details=details)

    @server.tool(annotations=ToolAnnotations(title="List backups", read_only_hint=True, open_world_hint=True))
    @guarded
    def list_backups(
        tier: Annotated[Tier | None, Field(description="Only this tier: event, daily, weekly or manual.")] = None,
        include_deleted: Annotated[bool, Field(description="Also list backups cleanup removed.")] = False,
    ) -> ListBackupsResult:
        """The project's backups, newest first (at most 100, and within the result budget: has_more says
        when some were left out), with counts per tier and where they are stored."""
        return fit_page(ctx.project().backups.list_backups(tier, include_deleted), "backups")

    @server.tool(annotations=ToolAnnotations(
        title="Clean up backups", read_only_hint=False, destructive_hint=True, idempotent_hint=True,
        open_world_hint=True,
    ))
    @guarded
    def cleanup_backups() -> CleanupBackupsResult:
        """Apply the retention policy: keep the newest backups.keep_event event, keep_daily daily and
        keep_weekly weekly backups (and keep_manual manual, if set); delete the rest and every stored
        part no kept backup needs. Returns what was deleted and what is kept.
        """
        return ctx.project().backups.cleanup()

    @server.tool(annotations=ToolAnnotations(title="Backup status", read_only_hint=True, open_world_hint=True))
    @guarded
    def get_backup_status() -> BackupStatus:
        """Whether automatic backups are on, where backups go (and whether they survive losing this disk),
        counts per tier, the last backup, how many cleanup would delete now, and the last automatic
        backup's error if it failed.
        """
        return ctx.project().backups.status()
