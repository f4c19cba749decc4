"""Confirm a cancel, with the reason ``cancel(run_id, reason)`` requires."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.modals.prompt import PromptModal, reason_check

if TYPE_CHECKING:
    from tui.app import GoldfishApp


class ConfirmCancel(PromptModal):
    def __init__(self, app: GoldfishApp, run_id: str, stage: str) -> None:
        from tui import actions

        super().__init__(
            f"Cancel {stage} run {run_id}?",
            "The stage is stopped (SIGTERM, then SIGKILL after the grace period). The reason goes to the audit "
            "trail and the run's history, where the agent will see it.",
            reason_check(app), confirm="Cancel run", variant="error",
            placeholder="e.g. wrong learning rate, loss is diverging", action="cancel",
            submit=lambda project, reason: actions.cancel_run(project, run_id, reason),
        )
        self.run_id = run_id


def ask_cancel(app: GoldfishApp, run_id: str, stage: str) -> None:
    app.push_screen(ConfirmCancel(app, run_id, stage))
