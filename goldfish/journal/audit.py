"""The audit trail and the agent's thoughts: one append-only event log, ``audit``.

Every mutating call appends ``{ts, op, source, workspace, slot, reason, details}`` inside the
same store transaction as its change, so an audit row exists exactly when the change does.
Thoughts are audit rows with ``op == "thought"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from goldfish import names
from goldfish.errors import InvalidInput, NotFound
from goldfish.store import Transaction
from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.project import Project

AUDIT_LOG = "audit"
THOUGHT = "thought"


class AuditEntry(BaseModel):
    ts: str = Field(description="When (UTC, ISO 8601).")
    op: str = Field(description="Operation, e.g. mount, save_version, prune_versions, thought.")
    source: str = Field(description="Who acted: mcp, tui, cli, runner, reconciler or test.")
    workspace: str | None = Field(default=None, description="Workspace concerned, if any.")
    slot: str | None = Field(default=None, description="Slot concerned, if any.")
    reason: str | None = Field(default=None, description="The reason, message or thought given.")
    details: dict[str, Any] = Field(default_factory=dict, description="Operation-specific facts.")


class AuditLogResult(BaseModel):
    entries: list[AuditEntry] = Field(description="Newest first.")
    total: int = Field(description="Entries matching the filter.")
    limit: int
    offset: int
    has_more: bool = Field(description="True when more entries follow; raise offset to page.")


class ThoughtResult(BaseModel):
    logged: bool = Field(description="True once the thought is in the audit trail.")
    thought: str
    timestamp: str
    workspace: str | None = Field(default=None, description="Workspace it is filed under (slot resolved).")
    run_id: str | None = None


class Thought(BaseModel):
    timestamp: str
    thought: str
    run_id: str | None = None


class ThoughtsResult(BaseModel):
    workspace: str
    thoughts: list[Thought] = Field(description="Newest first.")
    total: int
    limit: int
    offset: int
    has_more: bool


def _entry(ev: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        ts=str(ev.get("ts", "")),
        op=str(ev.get("op", "")),
        source=str(ev.get("source", "")),
        workspace=ev.get("workspace"),
        slot=ev.get("slot"),
        reason=ev.get("reason"),
        details=ev.get("details") or {},
    )


class Journal:
    """Audit rows, thoughts and the audit log reader."""

    def __init__(self, project: Project):
        self.project = project

    def record(
        self,
        tx: Transaction,
        op: str,
        *,
        reason: str | None,
        workspace: str | None = None,
        slot: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append an audit row in ``tx`` (it lands exactly when the transaction commits)."""
        event = {
            "ts": now_iso(),
            "op": op,
            "source": self.project.source,
            "workspace": workspace,
            "slot": slot,
            "reason": reason,
            "details": details or {},
        }
        tx.append_event(AUDIT_LOG, event)
        return event

    # ----------------------------------------------------------------- reads
    def recent(self, limit: int, predicate: Callable[[dict[str, Any]], bool] | None = None) -> list[AuditEntry]:
        return [_entry(ev) for ev in self.project.store.tail_events(AUDIT_LOG, limit, predicate)]

    def _all(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        events, _ = self.project.store.read_events(AUDIT_LOG)
        return [ev for ev in events if predicate(ev)]

    def audit_log(self, limit: int = 50, workspace: str | None = None, offset: int = 0) -> AuditLogResult:
        _page_bounds(limit, offset)
        ws = self._workspace_filter(workspace) if workspace is not None else None
        matching = self._all(lambda ev: ws is None or ev.get("workspace") == ws)
        matching.reverse()
        page = matching[offset : offset + limit]
        return AuditLogResult(
            entries=[_entry(ev) for ev in page],
            total=len(matching),
            limit=limit,
            offset=offset,
            has_more=offset + len(page) < len(matching),
        )

    def _workspace_filter(self, name: str) -> str:
        """A slot or workspace name; deleted workspaces still have an audit trail."""
        if name in self.project.config.slots:
            return self.project.workspaces.resolve(name)[0]
        names.workspace_name(name)
        if self.project.store.table("workspaces").get_doc(name) is None:
            raise NotFound(
                f"Workspace {name!r} does not exist.{self.project.workspaces.suggest(name)}",
                fix="List workspaces with status() or check the spelling.",
            )
        return name

    # --------------------------------------------------------------- thoughts
    def log_thought(self, thought: str, workspace: str | None = None, run_id: str | None = None) -> ThoughtResult:
        text = names.reason(thought, self.project.config.audit.min_reason_length, what="thought",
                            max_length=names.MAX_THOUGHT)
        if run_id is not None and not (names.STAGE_RUN_RE.fullmatch(run_id) or names.PIPELINE_RUN_RE.fullmatch(run_id)):
            names.stage_run_id(run_id)  # raises with the expected format
        ws = self._workspace_filter(workspace) if workspace is not None else None
        if run_id is not None:
            indexed = self.project.store.table("run_index").get_doc(run_id)
            if indexed is None:
                raise NotFound(
                    f"Run {run_id!r} not found.",
                    fix="Use a run id from run() or list_history(), or log the thought without run_id.",
                )
            run_ws = indexed.get("workspace")
            if ws is None:
                ws = run_ws
            elif run_ws and run_ws != ws:
                raise InvalidInput(
                    f"Run {run_id} belongs to workspace {run_ws!r}, not {ws!r}.",
                    fix=f"Pass workspace={run_ws!r} or leave workspace out.",
                )
        with self.project.store.transaction() as tx:
            event = self.record(tx, THOUGHT, reason=text, workspace=ws, details={"run_id": run_id})
            tx.after_commit(self.project.state_md.regenerate_quietly)
        return ThoughtResult(logged=True, thought=text, timestamp=event["ts"], workspace=ws, run_id=run_id)

    def thoughts(self, workspace: str, limit: int = 50, offset: int = 0) -> ThoughtsResult:
        _page_bounds(limit, offset)
        ws = self._workspace_filter(workspace)
        matching = self._all(lambda ev: ev.get("op") == THOUGHT and ev.get("workspace") == ws)
        matching.reverse()
        page = matching[offset : offset + limit]
        return ThoughtsResult(
            workspace=ws,
            thoughts=[
                Thought(timestamp=ev["ts"], thought=ev.get("reason") or "", run_id=(ev.get("details") or {}).get("run_id"))
                for ev in page
            ],
            total=len(matching),
            limit=limit,
            offset=offset,
            has_more=offset + len(page) < len(matching),
        )


def _page_bounds(limit: int, offset: int) -> None:
    if not 1 <= limit <= 500:
        raise InvalidInput(f"limit must be between 1 and 500, got {limit}.", fix="Use limit=50 and page with offset.")
    if offset < 0:
        raise InvalidInput(f"offset must be 0 or more, got {offset}.", fix="Use offset=0 for the newest entries.")
