"""validate_config and reload_config through the MCP client, on a real project with a mounted slot."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from mcp import Client

from goldfish.init import init_project
from mcp_server.server import build_server

REASON = "testing the config tools end to end"
STAGE = {
    "name": "train",
    "inputs": {},
    "outputs": {"model": {"type": "file", "schema": None}},
}
# A stage the pre-run review (part of validate_config) accepts: it logs its loss and writes its output.
MODULE = """\
from goldfish.io import get_output_path
from goldfish.metrics import log_metric


def main():
    for step in range(3):
        log_metric("train/loss", 1.0 / (step + 1), step=step)
    get_output_path("model").write_text("weights")
"""


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


async def _settled(*roots: Path) -> tuple[dict[str, str], ...]:
    """Snapshot once the server's slot watcher has recorded the edits (two equal reads 0.3 s apart):
    its bookkeeping is not the tool's doing."""
    import asyncio

    previous = tuple(_tree(r) for r in roots)
    for _ in range(50):
        await asyncio.sleep(0.3)
        current = tuple(_tree(r) for r in roots)
        if current == previous:
            return current
        previous = current
    return previous


class Env:
    def __init__(self, client: Client, root: Path):
        self.client = client
        self.root = root
        self.slot = root / "workspaces" / "w1"

    async def call(self, tool: str, **args: Any) -> Any:
        return await self.client.call_tool(tool, args)

    def write(self, rel: str, text: str) -> None:
        path = self.slot / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def good_workspace(self) -> None:
        self.write("pipeline.yaml", yaml.safe_dump({"stages": [STAGE]}, sort_keys=False))
        self.write("configs/train.yaml", "compute:\n  profile: local\nlearning_rate: 0.01\nepochs: 3\n")
        self.write("modules/train.py", MODULE)


@asynccontextmanager
async def open_env(tmp_path: Path) -> AsyncIterator[Env]:
    # A context manager, not an async yield fixture: the client's task group must be entered and
    # exited in the same task.
    init_project(tmp_path / "proj", "proj")
    server, _ctx = build_server(str(tmp_path / "proj"))
    async with Client(server) as client:
        e = Env(client, tmp_path / "proj")
        res = await e.call("create_workspace", name="exp", goal="config tool tests", reason=REASON, template="none")
        assert not res.is_error, res.content
        res = await e.call("mount", workspace="exp", slot="w1", reason=REASON)
        assert not res.is_error, res.content
        yield e


async def test_valid_workspace(tmp_path: Path) -> None:
    async with open_env(tmp_path) as env:
        env.good_workspace()
        res = await env.call("validate_config", workspace="w1")
        sc = res.structured_content
        assert not res.is_error and sc["valid"] is True, sc
        assert sc["errors"] == []
        assert {"goldfish.yaml", "w1/pipeline.yaml", "w1/configs/train.yaml", "w1/modules/train.py"} <= set(
            sc["files_checked"]
        )
        assert sc["workspaces"] == ["exp"]
        by_name = await env.call("validate_config", workspace="exp")
        assert by_name.structured_content["files_checked"] == sc["files_checked"]
        every = await env.call("validate_config")
        assert every.structured_content["workspaces"] == ["exp"]


async def test_every_problem_at_once_and_nothing_written(tmp_path: Path) -> None:
    async with open_env(tmp_path) as env:
        env.write("pipeline.yaml", yaml.safe_dump({"stages": [STAGE]}, sort_keys=False))
        env.write("configs/train.yaml", "compute:\n  profile: local\nlearnig_rate: 0.01\nbatchsize: 32\nepochs: 3\n")
        env.write("configs/trian.yaml", "compute:\n  profil: local\n")
        env.write("configs/eval.yaml", "lr: [1, 2\n")
        before = await _settled(env.root, env.root.parent / "proj-dev")
        res = await env.call("validate_config", workspace="w1")
        sc = res.structured_content
        assert sc["valid"] is False
        errors = {e["location"]: e for e in sc["errors"]}
        assert any("modules/train.py" in loc for loc in errors), errors
        eval_err = [e for loc, e in errors.items() if loc.startswith("w1/configs/eval.yaml")]
        assert eval_err and "line" in eval_err[0]["location"] and eval_err[0]["fix"]
        warnings = {w["location"]: w for w in sc["warnings"]}
        assert "'learning_rate'" in warnings["w1/configs/train.yaml: learnig_rate"]["message"]
        assert "'batch_size'" in warnings["w1/configs/train.yaml: batchsize"]["message"]
        assert "Did you mean 'train'" in warnings["w1/configs/trian.yaml"]["message"]
        assert "Did you mean 'profile'" in warnings["w1/configs/trian.yaml: compute.profil"]["message"]
        assert not any("epochs" in loc for loc in warnings)
        assert (_tree(env.root), _tree(env.root.parent / "proj-dev")) == before


async def test_broken_goldfish_yaml_is_reported(tmp_path: Path) -> None:
    async with open_env(tmp_path) as env:
        env.good_workspace()
        cfg = env.root / "goldfish.yaml"
        cfg.write_text(cfg.read_text() + "\njobz:\n  backend: local\n")
        sc = (await env.call("validate_config", workspace="w1")).structured_content
        assert sc["valid"] is False
        [err] = [e for e in sc["errors"] if e["location"].startswith("goldfish.yaml")]
        assert "jobz" in err["location"] + err["message"] and "jobs" in err["message"] + (err["fix"] or "")


async def test_bad_workspace_arguments(tmp_path: Path) -> None:
    async with open_env(tmp_path) as env:
        empty = await env.call("validate_config", workspace="w2")
        assert empty.is_error and "mount" in empty.content[0].text
        unknown = await env.call("validate_config", workspace="exq")
        assert unknown.is_error and '"exp"' in unknown.content[0].text
        traversal = await env.call("validate_config", workspace="../x")
        assert traversal.is_error and "workspace name" in traversal.content[0].text
        nopipe = await env.call("validate_config", workspace="w1")
        assert nopipe.structured_content["errors"][0]["location"] == "w1/pipeline.yaml"


async def test_reload_config(tmp_path: Path) -> None:
    async with open_env(tmp_path) as env:
        cfg = env.root / "goldfish.yaml"
        original = cfg.read_text()
        cfg.write_text(original.replace("max_parallel_stages: 2", "max_parallel_stages: 3"))
        res = await env.call("reload_config")
        assert not res.is_error, res.content
        assert res.structured_content["changed_sections"] == ["jobs"]
        assert "jobs" in res.structured_content["message"]

        cfg.write_text(original.replace("max_parallel_stages: 2", "max_parallel_stages: lots"))
        broken = await env.call("reload_config")
        assert broken.is_error and "max_parallel_stages" in broken.content[0].text
        cfg.write_text(original.replace("max_parallel_stages: 2", "max_parallel_stages: 3"))
        again = await env.call("reload_config")
        assert again.structured_content["changed_sections"] == [], "the broken file must not have been applied"

        cfg.write_text(original.replace("dev_repo_path: proj-dev", "dev_repo_path: elsewhere-dev"))
        moved = await env.call("reload_config")
        assert moved.is_error and "Restart the server" in moved.content[0].text
        cfg.write_text(original)
        back = await env.call("reload_config")
        assert back.structured_content["changed_sections"] == ["jobs"]
        status = await env.call("status")
        assert status.structured_content["initialized"] is True
