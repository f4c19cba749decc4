"""GoldfishApp: the dashboard a person keeps open beside the agent.

Threading model: the UI thread never touches the store or the disk. Every read runs in a
``@work(thread=True, exclusive=True, group=...)`` worker that posts a message with a view model
back; every action runs in a thread worker, started by the modal that asked for it, that calls the
service the MCP tool calls: a refusal is shown in that modal (which stays open), a success comes
here as ``ActionDone``. Worker failures of every screen come to one handler
(``handle_worker_state``): a notification and a log line, never a crash. Live updates: a ``watchfiles`` thread over the store directory posts
``StoreChanged`` (within ~0.1 s of a commit by any process), the slot watcher keeps dirty state
current, and a slow tick (2 s) refreshes ages and heartbeats.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState, get_current_worker

from tui.messages import ActionDone, StoreChanged

if TYPE_CHECKING:
    from goldfish.project import Project

Clock = Callable[[], float]
WATCH_DEBOUNCE_MS = 60
IGNORED_SUFFIXES = (".lock", ".tmp")


class GoldfishApp(App[int]):
    """``GoldfishApp(project)``; ``now`` injects the clock (snapshots), ``live`` the watchers."""

    CSS_PATH = "app.tcss"
    TITLE = "goldfish"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("r", "reload", "Refresh"),
        Binding("s", "sources", "Sources"),
        Binding("p", "patterns", "Patterns"),
    ]

    def __init__(self, project: Project, *, now: Clock | None = None, live: bool = True,
                 tick_seconds: float = 2.0, reconcile: bool = False) -> None:
        super().__init__()
        self.project = project
        self.reconcile = reconcile  # give dead runners new ones, after the first frame
        self.reconciled: list[str] | None = None  # pipeline runs that got a new runner (once done)
        self.now: Clock = now or time.time
        self.live = live
        self.tick_seconds = tick_seconds
        self.errors: list[str] = []  # every worker failure shown, for tests and --headless
        self.actions_done: list[str] = []
        self.store_events = 0
        self._stop_watch = threading.Event()
        self._slot_watcher: Any = None

    # ------------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        from tui.screens.dashboard import DashboardScreen

        self.push_screen(DashboardScreen())
        if self.reconcile:
            self.call_after_refresh(self._reconcile)
        if self.live:
            self._watch_store()
            self._start_slot_watcher()
            self._reconcile_loop()
            self.set_interval(self.tick_seconds, self._tick, name="tick")

    def on_unmount(self) -> None:
        self._stop_watch.set()
        if self._slot_watcher is not None:
            self._slot_watcher.stop()

    def _tick(self) -> None:
        self.reload_screen()

    def reload_screen(self) -> None:
        """Ask the current screen (and the dashboard under it) to reload its data."""
        for screen in self.screen_stack:
            reload = getattr(screen, "reload", None)
            if reload is not None and (screen is self.screen or getattr(screen, "always_live", False)):
                reload()

    def action_reload(self) -> None:
        self.reload_screen()

    def action_sources(self) -> None:
        from tui.screens.sources import SourcesScreen

        self.push_screen(SourcesScreen())

    def action_patterns(self) -> None:
        from tui.screens.patterns import PatternsScreen

        self.push_screen(PatternsScreen())

    # ------------------------------------------------------------------ live
    @work(thread=True, group="watch", name="store watcher", exit_on_error=False)
    def _watch_store(self) -> None:
        from watchfiles import watch

        store_dir = self.project.store_dir
        for changes in watch(store_dir, stop_event=self._stop_watch, debounce=WATCH_DEBOUNCE_MS, step=20,
                             recursive=True, raise_interrupt=False):
            paths = tuple(p for _, p in changes if not p.endswith(IGNORED_SUFFIXES))
            if paths:
                self.post_message(StoreChanged(paths))

    @work(thread=True, group="reconcile", name="reconcile", exit_on_error=False)
    def _reconcile(self) -> None:
        from goldfish.runs.reconciler import reconcile_quietly

        try:
            self.reconciled = reconcile_quietly(self.project)  # as when any process opens the project
        finally:
            if self.reconciled is None:  # it failed (reported by handle_worker_state): not due any more
                self.reconciled = []

    @work(thread=True, group="watch", name="slot watcher", exit_on_error=False)
    def _start_slot_watcher(self) -> None:
        from goldfish.workspaces.watcher import SlotWatcher

        watcher = SlotWatcher(self.project)
        watcher.start()
        self._slot_watcher = watcher
        if self._stop_watch.is_set():
            watcher.stop()

    @work(thread=True, group="watch", name="reconciler", exit_on_error=False)
    def _reconcile_loop(self) -> None:
        """Every lease interval: a run whose runner died is settled while the dashboard is open."""
        from goldfish.runs.reconciler import reconcile_quietly

        interval = float(self.project.config.jobs.runner_lease_seconds)
        while not self._stop_watch.wait(interval):
            try:
                reconcile_quietly(self.project)
            except Exception as exc:  # one bad pass must not end the loop for the session
                self.errors.append(f"reconcile: {exc}")

    def on_store_changed(self, event: StoreChanged) -> None:
        self.store_events += 1
        self.reload_screen()

    # ------------------------------------------------------------------ actions
    def on_action_done(self, event: ActionDone) -> None:
        self.actions_done.append(f"{event.action}: {event.message}")
        self.notify(event.message, title=event.action)
        self.reload_screen()

    # ------------------------------------------------------------------ errors
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.handle_worker_state(event)

    def handle_worker_state(self, event: Worker.StateChanged) -> None:
        """The one place worker failures land: notify + log, keep running."""
        if event.state != WorkerState.ERROR:
            return
        from goldfish.errors import GoldfishError

        error = event.worker.error
        if isinstance(error, GoldfishError):
            text = error.message + (f"\nFix: {error.fix}" if error.fix else "")
        else:
            text = f"{type(error).__name__}: {error}"
            self.log.error("".join(traceback.format_exception(error)) if error else text)
        self.errors.append(f"{event.worker.name}: {text}")
        self.log.error(f"worker {event.worker.name!r} failed: {text}")
        self.notify(text, title=f"{event.worker.name} failed", severity="error", timeout=8)

    # ------------------------------------------------------------------ tests / headless
    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every load and action worker finished and its message was handled."""
        import asyncio

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [w for w in self.workers if w.group != "watch" and not w.is_finished]
            if busy:
                # A superseded (cancelled) or failed worker is not an error here: failures reach
                # handle_worker_state like any other; settle only waits for quiet.
                await asyncio.gather(*(w.wait() for w in busy), return_exceptions=True)
                continue
            await asyncio.sleep(0.02)
            pumps = [self, *self.screen_stack]
            # A LiveScreen not painted yet, or the start-up reconcile not run yet: their work is due.
            first_load_due = getattr(self.screen, "painted_at", 0.0) is None or (
                self.reconcile and self.reconciled is None)
            if not first_load_due and not any(w.group != "watch" and not w.is_finished for w in self.workers) and all(
                p._message_queue.empty() for p in pumps
            ):
                return
        raise TimeoutError(f"workers still busy after {timeout}s")


def cancelled() -> bool:
    """True inside a worker that an exclusive newer one replaced: drop the stale result."""
    try:
        return get_current_worker().is_cancelled
    except RuntimeError:
        return False
