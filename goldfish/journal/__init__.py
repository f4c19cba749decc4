"""Journal: the audit trail, the agent's thoughts, and STATE.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.journal.audit import Journal, AuditEntry, AuditLogResult, Thought, ThoughtResult, ThoughtsResult
    from goldfish.journal.state_md import StateMd

__all__ = [
    "AuditEntry",
    "AuditLogResult",
    "Journal",
    "StateMd",
    "Thought",
    "ThoughtResult",
    "ThoughtsResult",
]

__getattr__ = lazy_face(__name__, {
    "Journal": "audit",
    "AuditEntry": "audit",
    "AuditLogResult": "audit",
    "Thought": "audit",
    "ThoughtResult": "audit",
    "ThoughtsResult": "audit",
    "StateMd": "state_md",
})
