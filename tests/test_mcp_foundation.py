"""`goldfish serve` driven by the real mcp client over stdio: the uninitialized path and initialize_project."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parent.parent


def _params(cwd: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "goldfish", "serve"],
        cwd=str(cwd),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def test_uninitialized_status_then_initialize(tmp_path: Path) -> None:
    async with Client(_params(tmp_path)) as client:
        status = await client.call_tool("status", {})
        assert not status.is_error
        assert status.structured_content["initialized"] is False
        assert "initialize_project" in status.structured_content["message"]

        version = await client.call_tool("goldfish_version", {})
        assert version.structured_content["version"]

        bad = await client.call_tool("initialize_project", {"project_name": "bad name!", "project_root": str(tmp_path / "x")})
        assert bad.is_error
        assert "--name" in bad.content[0].text or "letters" in bad.content[0].text
        assert not (tmp_path / "x").exists()

        res = await client.call_tool(
            "initialize_project", {"project_name": "demo", "project_root": str(tmp_path / "demo")}
        )
        assert not res.is_error, res.content
        assert res.structured_content["created"] is True
        status = await client.call_tool("status", {})
        sc = status.structured_content
        assert sc["initialized"] is True and sc["project_name"] == "demo"
        assert [s["slot"] for s in sc["slots"]] == ["w1", "w2", "w3"]
        assert "# demo" in sc["state_md"]
    assert (tmp_path / "demo" / "goldfish.yaml").is_file()
    assert (tmp_path / "demo-dev" / ".goldfish" / "store").is_dir()
