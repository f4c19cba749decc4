"""Failure patterns: learned from failed runs; approved ones are checked by every later review.

Listed by ``project.patterns.list`` (what ``manage_patterns(action="list")`` gives the agent),
curated through ``project.patterns`` with the reason the person types.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static

from tui.format import clock, shorten
from tui.messages import PatternsLoaded
from tui.screens.base import LiveScreen
from tui.viewmodels import PatternView
from tui.widgets.keyed_table import KeyedTable

COLUMNS = [("id", "id", 11), ("status", "status", 9), ("severity", "severity", 8), ("stage", "stage", 10),
           ("seen", "seen", 5), ("last seen (UTC)", "last", 16), ("symptom", "symptom", 70)]
STATUS_STYLE = {"pending": "yellow", "approved": "green", "rejected": "red", "archived": "dim"}
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "dim"}
STATUS_FILTERS: tuple[str | None, ...] = (None, "pending", "approved", "rejected", "archived")


class PatternsScreen(LiveScreen):
    CSS_PATH = "registry.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("a", "curate('approve')", "Approve"),
        Binding("x", "curate('reject')", "Reject"),
        Binding("z", "curate('archive')", "Archive"),
        Binding("f", "status_filter", "Status filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.patterns: tuple[PatternView, ...] = ()
        self.total = 0
        self.status: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(" Failure patterns ", style="bold reverse"), id="registry-title")
        table = KeyedTable(id="patterns")
        table.set_columns(COLUMNS)
        yield table
        yield Static("", id="detail")
        yield Footer()

    def reload(self) -> None:
        self._load(self.status)

    @work(thread=True, exclusive=True, group="patterns", name="patterns load", exit_on_error=False)
    def _load(self, status: str | None) -> None:
        from tui.app import cancelled
        from tui.data_registry import load_patterns

        patterns, total = load_patterns(self.project, status)
        if not cancelled():
            self.post_message(PatternsLoaded(patterns, total, status))

    def on_patterns_loaded(self, message: PatternsLoaded) -> None:
        if message.status != self.status:
            return  # the filter changed meanwhile; its own load is on its way
        self.patterns, self.total = message.patterns, message.total
        self.query_one("#patterns", KeyedTable).sync(pattern_rows(message.patterns))
        self.query_one("#registry-title", Static).update(title(message.patterns, message.total, message.status))
        self._detail()

    def on_data_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        self._detail()

    def selected(self) -> PatternView | None:
        key = self.query_one("#patterns", KeyedTable).selected_key
        return next((p for p in self.patterns if p.key == key), None)

    def _detail(self) -> None:
        p = self.selected()
        text = "" if p is None else (
            f"{p.pattern_id} ({p.status}, {p.severity}) from {p.source_run_id or 'unknown run'}\n"
            f"symptom: {p.symptom}\nroot cause: {p.root_cause}\nprevention: {p.prevention}"
        )
        self.query_one("#detail", Static).update(text)

    def action_curate(self, action: str) -> None:
        p = self.selected()
        if p is None:
            self.notify("Select a pattern first.", severity="warning")
            return
        from tui.modals.prompt import ask_pattern_action

        ask_pattern_action(self.gapp, p.pattern_id, action)

    def action_status_filter(self) -> None:
        self.status = STATUS_FILTERS[(STATUS_FILTERS.index(self.status) + 1) % len(STATUS_FILTERS)]
        self.reload()


def title(patterns: tuple[PatternView, ...], total: int, status: str | None) -> Text:
    text = Text(" Failure patterns ", style="bold reverse")
    shown = f"{len(patterns)} of {total}" if len(patterns) < total else str(total)
    text.append(f"  {shown} {status or 'known'}, newest sighting first")
    if status is None:
        pending = sum(1 for p in patterns if p.status == "pending")
        text.append(f", {pending} pending review")
    text.append(" · a approve · x reject · z archive · f status", style="dim")
    return text


def pattern_rows(patterns: tuple[PatternView, ...]) -> dict[str, tuple[Any, ...]]:
    return {
        p.key: (p.pattern_id, Text(p.status, style=STATUS_STYLE.get(p.status, "")),
                Text(p.severity, style=SEVERITY_STYLE.get(p.severity, "")), p.stage or "", str(p.occurrences),
                clock(p.last_seen)[:16], shorten(p.symptom, 120))
        for p in patterns
    }
