"""Configuration tools: validate_config, reload_config."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from goldfish.pipelines.config_check import ConfigCheckResult
from goldfish.pipelines.config_check import validate_config as check_config
from mcp_server.context import ServerContext, guarded


class ReloadConfigResult(BaseModel):
    reloaded: bool = Field(description="True when the new goldfish.yaml is now in effect")
    message: str = Field(description="What changed, in one line")
    project_name: str = Field(description="project_name from goldfish.yaml")
    backend: str = Field(description="jobs.backend now in effect")
    changed_sections: list[str] = Field(
        default_factory=list, description="Top-level goldfish.yaml sections whose values changed"
    )
    gcs_configured: bool = Field(description="A gcs.bucket is configured")
    gce_configured: bool = Field(description="A gce section is configured")


def register(server: MCPServer, ctx: ServerContext) -> None:
    @server.tool(annotations=ToolAnnotations(
        title="Validate config", read_only_hint=True, idempotent_hint=True, open_world_hint=False,
    ))
    @guarded
    def validate_config(
        workspace: Annotated[str | None, Field(
            min_length=1, max_length=64,
            description="A slot (w1) or mounted workspace to check; default: every mounted workspace.",
        )] = None,
    ) -> ConfigCheckResult:
        """Check goldfish.yaml and a workspace's pipeline.yaml, configs/*.yaml and modules before run().

        Reports every problem at once with its location and fix: YAML syntax, unknown goldfish.yaml
        keys (did-you-mean), pipeline and contract errors, missing modules or compute profiles, the
        pre-run review of every stage's code (e.g. load_input('X_trian') for an input the pipeline
        does not declare, with file:line), a saved results_spec metric no stage logs, and config
        keys that look like typos of common ones (learnig_rate, batchsize). Nothing is changed.
        Use it after editing; run(dry_run=True) also checks inputs, overrides and the gate.
        """
        project = ctx.project()
        return check_config(project, workspace, review=project.runs.review_slot)

    @server.tool(annotations=ToolAnnotations(
        title="Reload config", read_only_hint=False, destructive_hint=False, idempotent_hint=True,
        open_world_hint=False,
    ))
    @guarded
    def reload_config() -> ReloadConfigResult:
        """Re-read goldfish.yaml after editing it, without restarting the server.

        If the file is invalid, the running config stays in effect and the error lists each problem.
        Moving the dev repo, workspaces or object store needs a server restart and is refused.
        """
        project = ctx.project()
        old = project.config
        new = project.reload_config()
        before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        return ReloadConfigResult(
            reloaded=True,
            message=(f"Reloaded goldfish.yaml; changed: {', '.join(changed)}." if changed
                     else "Reloaded goldfish.yaml; nothing changed."),
            project_name=new.project_name,
            backend=new.jobs.backend,
            changed_sections=changed,
            gcs_configured=new.gcs is not None,
            gce_configured=new.gce is not None,
        )
