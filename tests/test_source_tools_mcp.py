"""The data registry tools through `goldfish serve` and the real MCP client over stdio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from goldfish.init import init_project
from tests.source_helpers import REASON, npy_meta, write_npy

REPO = Path(__file__).resolve().parent.parent


async def test_source_tools_over_stdio(tmp_path: Path) -> None:
    init_project(tmp_path / "proj", "proj")
    data = tmp_path / "proj" / "data" / "x.npy"
    size = write_npy(data)
    params = StdioServerParameters(command=sys.executable, args=["-m", "goldfish", "serve"],
                                   cwd=str(tmp_path / "proj"), env={**os.environ, "PYTHONPATH": str(REPO)})
    async with Client(params) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        reg = tools["register_source"]
        assert reg.annotations is not None
        assert reg.annotations.read_only_hint is False and reg.annotations.destructive_hint is False
        assert reg.annotations.idempotent_hint is False
        assert '"format_params": {"delimiter": ","}' in (reg.description or "")
        assert '"kind": "tensor"' in (tools["promote_artifact"].description or "")
        manage = tools["manage_sources"]
        assert manage.annotations is not None and manage.annotations.destructive_hint is True
        assert manage.input_schema["properties"]["action"]["enum"] == ["list", "get", "lineage", "update", "delete"]
        assert "DESTRUCTIVE" in (manage.description or "")

        meta = npy_meta(size)
        ok = await client.call_tool("register_source", {
            "name": "x_v1", "gcs_path": "data/x.npy", "description": meta["description"], "reason": REASON,
            "metadata": meta, "format": "npy"})
        assert not ok.is_error, ok.content
        assert ok.structured_content["source"]["location"] == str(data.resolve())

        bad = await client.call_tool("register_source", {
            "name": "x_v2", "gcs_path": "data/x.npy", "description": meta["description"], "reason": REASON,
            "metadata": npy_meta(size + 1)})
        assert bad.is_error and f"set size_bytes to {size}" in bad.content[0].text

        listed = await client.call_tool("manage_sources", {"action": "list"})
        assert listed.structured_content["total"] == 1 and listed.structured_content["has_more"] is False
        got = await client.call_tool("manage_sources", {"action": "get", "name": "x_v1"})
        assert got.structured_content["source"]["integrity"] == "ok"
        missing = await client.call_tool("promote_artifact", {
            "job_id": "stage-12345678", "output_name": "x", "source_name": "y", "reason": REASON,
            "metadata": meta})
        assert missing.is_error and "not found" in missing.content[0].text
