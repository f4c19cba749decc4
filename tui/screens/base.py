"""What every screen shares: its loader worker reports failures to the app's one handler."""

from __future__ import annotations

import time
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
    # perf_counter() when the first frame was painted and the first load started (None before).
    painted_at: float | None = None

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
        # The frame is painted first (empty panels); the store is read after it, in the worker.
        self.call_after_refresh(self._first_load)

    def _first_load(self) -> None:
        self.painted_at = time.perf_counter()
        self.reload()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: hand it to the app's single handler.
        self.gapp.handle_worker_state(event)
