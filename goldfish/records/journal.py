"""Audit rows and STATE.md refreshes for the experiment-memory writes.

The workspaces journal (``project.journal``) and STATE.md (``project.state_md``) own both; until a
project has them, audit rows go straight to the ``audit`` event log in the same shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.project import Project
    from goldfish.store import Transaction

AUDIT_LOG = "audit"


def audit(tx: Transaction, project: Project, op: str, *, workspace: str | None, reason: str | None,
          details: dict[str, Any], slot: str | None = None) -> None:
    """One audit row, written when ``tx`` commits."""
    journal = getattr(project, "journal", None)
    if journal is not None:
        journal.record(tx, op, reason=reason, workspace=workspace, slot=slot, details=details)
        return
    tx.append_event(AUDIT_LOG, {"ts": now_iso(), "op": op, "source": project.source, "workspace": workspace,
                                "slot": slot, "reason": reason, "details": details})


def refresh_state_md(tx: Transaction, project: Project) -> None:
    """Regenerate STATE.md once ``tx`` is durable (never fails the write that caused it)."""
    state_md = getattr(project, "state_md", None)
    if state_md is not None:
        tx.after_commit(state_md.regenerate_quietly)
