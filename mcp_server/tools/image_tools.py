"""Image tools: manage_base_images (base and project images) and get_build_status."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from goldfish.images.service import BuildStatus, ManageImagesResult
from mcp_server.context import ServerContext, guarded, tool_errors


def register(server: MCPServer, ctx: ServerContext) -> None:
    # open world: push talks to a registry; build may reach package indexes.
    @server.tool(annotations=ToolAnnotations(title="Manage Docker images", read_only_hint=False,
                                             destructive_hint=False, idempotent_hint=False, open_world_hint=True))
    @guarded
    async def manage_base_images(
        action: Annotated[Literal["list", "inspect", "check", "build", "push", "set_version", "list_versions",
                                  "next_version"], Field(description=(
            "list (both layers), inspect (effective Dockerfile, packages, config paths), check (local vs registry:"
            " needs_rebuild/needs_push), build (async: returns build_id), push (to docker.registry), set_version,"
            " list_versions, next_version"))],
        # A plain string so that a wrong value gets Goldfish's own error with the fix.
        image_type: Annotated[str | None, Field(max_length=16, description=(
            "cpu or gpu; required except for list and check"))] = None,
        target: Annotated[str, Field(max_length=16, description=(
            "project (default): <project>-cpu/gpu; base: goldfish-base-cpu/gpu"))] = "project",
        backend: Annotated[str, Field(max_length=16, description=(
            "local (default): the local Docker daemon; cloud (Cloud Build) is not available yet"))] = "local",
        version: Annotated[str | None, Field(max_length=32, description="set_version: v<N>, e.g. v3")] = None,
        no_cache: Annotated[bool, Field(description="build: ignore the daemon's layer cache")] = False,
        wait: Annotated[bool, Field(description="build: block until it ends, reporting progress")] = False,
        context: Context | None = None,
    ) -> ManageImagesResult:
        """Manage the Docker images stages run in (jobs.backend: docker, and gce).

        Two layers: base images goldfish-base-cpu/gpu (Goldfish's recipes) and project images
        <project>-cpu/gpu = base + docker.extra_packages + Dockerfile.cpu/gpu (+ at run time each
        version's requirements.txt). Tags are content hashes: an unchanged environment is never
        rebuilt, and runs build what they need themselves. build returns a build_id at once (poll
        get_build_status) unless wait=True. After a push, set_version(version=next_version) names
        the image so it can be pinned (docker.base_image_version / project_image_version).
        """
        images = ctx.project().images
        with tool_errors():
            if action != "build" or not wait:
                return await anyio.to_thread.run_sync(lambda: images.manage(
                    action, image_type, target=target, backend=backend, version=version, no_cache=no_cache))
            started = await anyio.to_thread.run_sync(lambda: images.manage(
                action, image_type, target=target, backend=backend, version=version, no_cache=no_cache))
            assert started.build is not None
            build_id = started.build.build_id
            while True:
                status = await anyio.to_thread.run_sync(lambda: images.build_status(build_id))
                if context is not None:
                    done = round((status.progress or 0.0) * 100)
                    await context.report_progress(done, 100, f"{build_id} {status.status}: {status.step or ''}"[:200])
                if status.status in ("completed", "failed", "cancelled"):
                    break
                await anyio.sleep(0.5)
            message = (f"Built {status.image_tag}." if status.status == "completed"
                       else f"Build {build_id} {status.status} at {status.failed_step!r}: {status.error}")
            return ManageImagesResult(action="build", success=status.status == "completed", message=message,
                                      build=status)

    @server.tool(annotations=ToolAnnotations(title="Image build status", read_only_hint=True,
                                             destructive_hint=False, idempotent_hint=True, open_world_hint=False))
    @guarded
    def get_build_status(
        build_id: Annotated[str, Field(min_length=1, max_length=32, description="build-xxxxxxxx from manage_base_images")],
    ) -> BuildStatus:
        """State of an image build: status, progress, the step running (or that failed) and its
        error, and the last 20 log lines. Builds run detached, so this works after a restart; a
        build whose process died is reported failed."""
        return ctx.project().images.build_status(build_id)
