"""SVS tools: manage_patterns (the failure-pattern knowledge base) and get_run_svs_findings."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from goldfish.errors import InvalidInput
from goldfish.svs.patterns import FailurePattern, LibrarianReport
from goldfish.svs.run_findings import RunSvsFindings, run_svs_findings
from mcp_server.budget import fit_page
from mcp_server.context import ServerContext, guarded


class ManagePatternsResult(BaseModel):
    action: str = Field(description="The action performed")
    message: str = Field(description="What happened, in one sentence")
    patterns: list[FailurePattern] | None = Field(default=None, description="list: this page of patterns")
    total: int | None = Field(default=None, description="list: patterns matching the filters")
    has_more: bool | None = Field(default=None, description="list: more patterns follow; raise offset to page")
    pattern: FailurePattern | None = Field(default=None, description="get/approve/reject/archive: the pattern")
    review: LibrarianReport | None = Field(default=None, description="review: the librarian's proposals")


def register(server: MCPServer, ctx: ServerContext) -> None:
    # open world: action='review' asks the Anthropic API when svs.agent_provider is anthropic.
    @server.tool(annotations=ToolAnnotations(title="Manage failure patterns", read_only_hint=False,
                                             destructive_hint=False, idempotent_hint=True, open_world_hint=True))
    @guarded
    def manage_patterns(
        action: Annotated[Literal["list", "get", "approve", "reject", "archive", "review"], Field(
            description="list, get, approve, reject (needs reason), archive, or review (librarian over pending ones)")],
        pattern_id: Annotated[str | None, Field(max_length=32, description=(
            "fp-xxxxxxxx; needed by get/approve/reject/archive"))] = None,
        stage_type: Annotated[str | None, Field(max_length=64, description=(
            "list: only patterns first seen in this stage"))] = None,
        # Plain strings, checked by the service case-insensitively (CRITICAL and critical both work).
        status: Annotated[str | None, Field(max_length=16, description=(
            "list: pending, approved, rejected or archived"))] = None,
        severity: Annotated[str | None, Field(max_length=16, description="list: critical, high, medium or low")] = None,
        reason: Annotated[str | None, Field(max_length=2000, description="Why (required for reject, ≥15 chars)")] = None,
        dry_run: Annotated[bool, Field(description="review: only propose (default); false applies the proposals")] = True,
        limit: Annotated[int, Field(ge=1, le=500, description="list: page size")] = 50,
        offset: Annotated[int, Field(ge=0, le=1_000_000, description="list: items to skip")] = 0,
    ) -> ManagePatternsResult:
        """Curate the failure-pattern knowledge base learned from failed runs.

        Approved patterns are checked by every later pre-run review: code matching one (its
        detection rule) is flagged with the pattern's severity (critical/high block the run).
        Patterns are learned as 'pending' when svs.auto_learn_failures is on. Use list to see them,
        get for one, approve/reject/archive to curate, review to let the librarian propose actions
        (dry_run=True proposes only).
        """
        patterns = ctx.project().patterns
        if action == "list":
            page, total = patterns.list(status=status, stage=stage_type, severity=severity, limit=limit, offset=offset)
            return fit_page(ManagePatternsResult(action=action, patterns=page, total=total,
                                                 has_more=offset + len(page) < total,
                                                 message=f"{len(page)} of {total} pattern(s)."), "patterns")
        if action == "review":
            report = patterns.review(dry_run=dry_run)
            verb = "Proposed" if dry_run else "Applied"
            return ManagePatternsResult(action=action, review=report,
                                        message=f"{verb} actions for {len(report.actions)} pending pattern(s).")
        if pattern_id is None:
            raise InvalidInput(f"action {action!r} needs pattern_id.",
                               fix="Pass pattern_id='fp-…' (manage_patterns(action='list') lists them).")
        if action == "get":
            pattern = patterns.get(pattern_id)
        elif action == "approve":
            pattern = patterns.approve(pattern_id, reason)
        elif action == "reject":
            pattern = patterns.reject(pattern_id, reason)
        else:
            pattern = patterns.archive(pattern_id, reason)
        return ManagePatternsResult(action=action, pattern=pattern,
                                    message=f"Pattern {pattern.id} is {pattern.status}.")

    @server.tool(annotations=ToolAnnotations(title="SVS findings of a run", read_only_hint=True,
                                             open_world_hint=False))
    @guarded
    def get_run_svs_findings(
        stage_run_id: Annotated[str, Field(max_length=64, description="Stage run id, stage-xxxxxxxx")],
    ) -> RunSvsFindings:
        """Everything SVS recorded about one stage run: preflight errors/warnings, the pre-run review
        (verdict, provider, findings, or that skip_review bypassed it), during-run monitor findings,
        the post-run review, the contract/stats findings and output statistics the stage wrote, and
        failure patterns learned from it."""
        return run_svs_findings(ctx.project(), stage_run_id)
