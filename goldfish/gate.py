"""The finalization gate predicate (DESIGN §4.7).

Placeholder until the run engine's gate module lands on main (it owns this file; the same names
are used here, so the merge takes its version).
"""

from __future__ import annotations

from typing import Any

BLOCKING_OUTCOMES = frozenset({"completed", "preempted", "crashed"})


def blocks_gate(run: dict[str, Any]) -> bool:
    return run.get("infra_outcome") in BLOCKING_OUTCOMES and run.get("results_status") != "finalized"
