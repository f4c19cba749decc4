"""The four backup tools through `goldfish serve` and the real MCP client over stdio, with the backups
in a GCS bucket (gcp-storage-emulator), then a restore from gs:// onto a new path."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from goldfish.cli import main as cli
from goldfish.project import Project
from tests.backup_helpers import memory, set_backups
from tests.source_helpers import gcs, gcs_emulator
from tests.ws_helpers import REASON, make_project

__all__ = ["gcs", "gcs_emulator"]  # fixtures used by name
REPO = Path(__file__).resolve().parent.parent


async def test_backup_tools_over_stdio_with_a_gcs_target(tmp_path: Path, gcs: Any) -> None:
    project = make_project(tmp_path)
    set_backups(project.root, target="gs://test-bucket/team/backups/", keep_event=2)
    project = Project.open(project.root, source="test")
    project.workspaces.create("exp", goal="backups in a bucket", reason=REASON)
    for _ in range(3):  # event backups, as the automatic ones are recorded
        project.backups.create(tier="event", trigger="save_version")
    params = StdioServerParameters(command=sys.executable, args=["-m", "goldfish", "serve"], cwd=str(project.root),
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
    async with Client(params) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ("create_backup", "list_backups", "cleanup_backups", "get_backup_status"):
            assert tools[name].annotations is not None, name
        assert tools["cleanup_backups"].annotations.destructive_hint is True  # type: ignore[union-attr]
        assert tools["list_backups"].annotations.read_only_hint is True  # type: ignore[union-attr]

        made = await client.call_tool("create_backup", {"trigger": "before-refactor",
                                                         "details": "before the big refactor"})
        assert not made.is_error, made.content
        backup = made.structured_content
        assert backup["tier"] == "manual" and backup["location"].startswith("gs://test-bucket/team/backups/manifests/")
        assert backup["size_bytes"] > 0 and backup["warning"] is None

        bad = await client.call_tool("create_backup", {"trigger": "no spaces allowed"})
        assert bad.is_error

        status = (await client.call_tool("get_backup_status", {})).structured_content
        assert status["enabled"] is False and status["survives_disk_loss"] is True and status["advice"] is None
        assert status["counts"] == {"event": 3, "daily": 0, "weekly": 0, "manual": 1}
        assert status["last_backup"]["backup_id"] == backup["backup_id"]
        assert status["expired_pending_cleanup"] == 1 and status["target"] == "gs://test-bucket/team/backups/"

        listed = (await client.call_tool("list_backups", {"tier": "event"})).structured_content
        assert listed["total"] == 3 and listed["counts"]["manual"] == 1

        cleaned = (await client.call_tool("cleanup_backups", {})).structured_content
        assert len(cleaned["deleted_excess"]) == 1 and cleaned["deleted_expired"] == []
        assert cleaned["kept"] == {"event": 2, "daily": 0, "weekly": 0, "manual": 1}

        everything = (await client.call_tool("list_backups", {"include_deleted": True})).structured_content
        assert everything["total"] == 4
        assert [b["deleted_at"] is not None for b in everything["backups"]].count(True) == 1

        audit = (await client.call_tool("get_audit_log", {"limit": 5})).structured_content
        assert {"create_backup", "cleanup_backups"} <= {e["op"] for e in audit["entries"]}

    names = [b.name for b in gcs.list_blobs("test-bucket", prefix="team/backups/manifests/")]
    assert len(names) == 3
    before = memory(project)
    shutil.rmtree(project.root)
    shutil.rmtree(project.dev_path)
    dest = tmp_path / "restored" / "proj"
    assert cli(["restore", backup["backup_id"], "--from", "gs://test-bucket/team/backups/", "--to", str(dest)]) == 0
    after = memory(Project.open(dest, source="test"))
    # the restored audit log ends where the backup's snapshot was taken (before its own audit entry)
    assert {k: v for k, v in after.items() if k != "events:audit"} == {
        k: v for k, v in before.items() if k != "events:audit"}
    assert after["events:audit"] == [e for e in before["events:audit"]
                                     if e["op"] not in ("create_backup", "cleanup_backups")]
