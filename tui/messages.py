"""Messages workers post back to the UI thread, and the live-update signal."""

from __future__ import annotations

from textual.message import Message

from tui.viewmodels import (
    CompareView,
    DashboardView,
    HistoryPage,
    LogChunk,
    PatternView,
    RunDetailView,
    SourceView,
)


class StoreChanged(Message):
    """Something under the store or the slots changed on disk (from the file watcher)."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        super().__init__()
        self.paths = paths


class DashboardLoaded(Message):
    def __init__(self, view: DashboardView) -> None:
        super().__init__()
        self.view = view


class RunDetailLoaded(Message):
    def __init__(self, view: RunDetailView) -> None:
        super().__init__()
        self.view = view


class LogRead(Message):
    def __init__(self, run_id: str, chunk: LogChunk) -> None:
        super().__init__()
        self.run_id = run_id
        self.chunk = chunk


class HistoryLoaded(Message):
    def __init__(self, page: HistoryPage) -> None:
        super().__init__()
        self.page = page


class CompareLoaded(Message):
    def __init__(self, view: CompareView) -> None:
        super().__init__()
        self.view = view


class SourcesLoaded(Message):
    def __init__(self, sources: tuple[SourceView, ...]) -> None:
        super().__init__()
        self.sources = sources


class PatternsLoaded(Message):
    def __init__(self, patterns: tuple[PatternView, ...], total: int, status: str | None) -> None:
        super().__init__()
        self.patterns = patterns
        self.total = total
        self.status = status


class ActionDone(Message):
    """An action (cancel, finalize, tag, ...) returned; ``message`` says what happened."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__()
        self.action = action
        self.message = message
