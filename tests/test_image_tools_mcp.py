"""manage_base_images (every action) and get_build_status through the real MCP client, with a push
to a registry on 127.0.0.1 (Debian's docker-registry, started here) and a pull back by digest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from goldfish.images import recipes, records
from mcp_server.server import build_server
from tests.docker_helpers import daemon, fresh_images, registry, require_base_image
from tests.run_helpers import make_env

__all__ = ["registry"]  # fixture used by name
pytestmark = pytest.mark.slow


def sc(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


def error_text(result: Any) -> str:
    assert result.is_error
    return str(result.content[0].text)


async def test_every_action_a_push_to_a_local_registry_and_a_pull_by_digest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: str) -> None:
    require_base_image()
    env = make_env(tmp_path, monkeypatch)
    env.configure(jobs={"backend": "docker"}, docker={"extra_packages": {"cpu": []}})
    (env.root / "Dockerfile.cpu").write_text(f"FROM goldfish-base-cpu\nRUN echo {tmp_path.name} > /opt/marker\n")
    server, _ctx = build_server(str(env.root))
    with fresh_images():
        async with Client(server) as client:
            listed = sc(await client.call_tool("manage_base_images", {"action": "list"}))
            assert [i["name"] for i in listed["base_images"]] == ["goldfish-base-cpu", "goldfish-base-gpu"]
            assert [i["name"] for i in listed["project_images"]] == ["proj-cpu", "proj-gpu"]
            base_cpu = listed["base_images"][0]
            assert base_cpu["present"] and base_cpu["tag"] == recipes.base_tag("cpu")
            assert listed["project_images"][0]["present"] is False  # never built

            assert "image_type" in error_text(await client.call_tool("manage_base_images", {"action": "build"}))
            unknown = error_text(await client.call_tool("manage_base_images", {"action": "inspect",
                                                                               "image_type": "tpu"}))
            assert "Unknown image_type 'tpu'" in unknown and "'cpu' or 'gpu'" in unknown
            cloud = error_text(await client.call_tool("manage_base_images", {
                "action": "build", "image_type": "cpu", "backend": "cloud"}))
            assert "Cloud Build" in cloud and "backend='local'" in cloud
            no_registry = error_text(await client.call_tool("manage_base_images", {
                "action": "push", "image_type": "cpu", "target": "base"}))
            assert "No registry is configured" in no_registry and "docker.registry" in no_registry

            inspected = sc(await client.call_tool("manage_base_images", {"action": "inspect", "image_type": "cpu"}))
            assert "FROM goldfish-base-cpu:r" in inspected["dockerfile"] and "/opt/marker" in inspected["dockerfile"]
            assert inspected["config_paths"]["Dockerfile.cpu"] == str(env.root / "Dockerfile.cpu")
            base_inspected = sc(await client.call_tool("manage_base_images", {
                "action": "inspect", "image_type": "cpu", "target": "base"}))
            assert "debootstrap" in base_inspected["dockerfile"] and "python3-numpy" in base_inspected["packages"]

            progress: list[tuple[float, float | None, str | None]] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                progress.append((done, total, message))

            built = sc(await client.call_tool("manage_base_images", {
                "action": "build", "image_type": "cpu", "wait": True}, progress_callback=on_progress))
            assert built["success"] and built["build"]["status"] == "completed", built
            build_id = built["build"]["build_id"]
            assert progress and progress[-1][0] == 100
            status = sc(await client.call_tool("get_build_status", {"build_id": build_id}))
            assert status["status"] == "completed" and status["image_tag"].startswith("proj-cpu:c")
            assert any("/opt/marker" in line for line in status["logs_tail"]) or status["logs_tail"]
            assert status["trigger"] == "manage_base_images"

            # async build: returns at once with a build id; the detached builder finishes it.
            started = sc(await client.call_tool("manage_base_images", {
                "action": "build", "image_type": "cpu", "target": "project"}))
            second = started["build"]["build_id"]
            assert started["build"]["status"] in ("pending", "building", "completed")
            deadline = time.monotonic() + 120
            while True:
                polled = sc(await client.call_tool("get_build_status", {"build_id": second}))
                if polled["status"] in ("completed", "failed") or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert polled["status"] == "completed", polled

            gpu = sc(await client.call_tool("manage_base_images", {
                "action": "build", "image_type": "gpu", "target": "base", "wait": True}))
            assert gpu["success"] is False and gpu["build"]["status"] == "failed"
            assert "public registries" in (gpu["build"]["fix"] or "") and gpu["build"]["failed_step"]

            assert "not a build id" in error_text(await client.call_tool("get_build_status", {"build_id": "nope"}))
            assert "No build" in error_text(await client.call_tool("get_build_status", {"build_id": "build-00000000"}))

            checked = sc(await client.call_tool("manage_base_images", {"action": "check"}))
            proj = next(i for i in checked["project_images"] if i["image_type"] == "cpu")
            assert proj["needs_rebuild"] is False and proj["needs_push"] is None  # no registry yet

            env.configure(docker={"registry": f"{registry}/goldfish"})
            await client.call_tool("reload_config", {})
            checked = sc(await client.call_tool("manage_base_images", {"action": "check"}))
            proj = next(i for i in checked["project_images"] if i["image_type"] == "cpu")
            assert proj["needs_push"] is True

            pushed = sc(await client.call_tool("manage_base_images", {"action": "push", "image_type": "cpu"}))
            digest, remote = pushed["digest"], pushed["registry_tag"]
            assert digest.startswith("sha256:") and remote.startswith(f"{registry}/goldfish/proj-cpu:c")
            checked = sc(await client.call_tool("manage_base_images", {"action": "check"}))
            assert next(i for i in checked["project_images"] if i["image_type"] == "cpu")["needs_push"] is False

            nxt = sc(await client.call_tool("manage_base_images", {"action": "next_version", "image_type": "cpu"}))
            assert nxt["next_version"] == "v1"
            set_v = sc(await client.call_tool("manage_base_images", {
                "action": "set_version", "image_type": "cpu", "version": "v1"}))
            assert set_v["versions"][0]["version"] == "v1" and set_v["versions"][0]["digest"] == digest
            assert sc(await client.call_tool("manage_base_images", {
                "action": "next_version", "image_type": "cpu"}))["next_version"] == "v2"
            versions = sc(await client.call_tool("manage_base_images", {"action": "list_versions", "image_type": "cpu"}))
            assert [(v["version"], v["is_current"]) for v in versions["versions"]] == [("v1", True)]
            listed = sc(await client.call_tool("manage_base_images", {"action": "list"}))
            assert next(i for i in listed["project_images"] if i["image_type"] == "cpu")["current_version"] == "v1"
            bad_version = error_text(await client.call_tool("manage_base_images", {
                "action": "set_version", "image_type": "cpu", "version": "eleven"}))
            assert "v<N>" in bad_version

        # Pull back by digest: the registry holds exactly what was built.
        client_ = daemon()
        local_id = client_.images.get(remote).id
        client_.images.remove(remote)
        pulled = client_.images.pull(f"{registry}/goldfish/proj-cpu@{digest}")
        assert pulled.id == local_id
        project = env.project
        assert {b["status"] for b in records.builds(project)} == {"completed", "failed"}
