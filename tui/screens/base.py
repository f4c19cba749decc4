"""What every screen shares: its loader worker reports failures to the app's one handler."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen
from textual.worker import Worker

if TYPE_CHECKING:
    from goldfish.project import Project
    from tui.app import GoldfishApp


class LiveScreen(Screen[None]):
    """A screen that reloads its data in a thread worker on every store change and tick."""

    # True for screens that keep refreshing while another screen is on top of them.
    always_live = False

    @property
    def gapp(self) -> GoldfishApp:
        return cast("GoldfishApp", self.app)

    @property
    def project(self) -> Project:
        return self.gapp.project

    def now(self) -> float:
        return self.gapp.now()

    def reload(self) -> None:
        """Start this screen's loader worker (exclusive: a newer load replaces an older one)."""

    def on_mount(self) -> None:
        self.reload()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: hand it to the app's single handler.
        self.gapp.handle_worker_state(event)
