"""Failure patterns: learned from failed runs; approved ones are checked by every later review."""

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


class PatternsScreen(LiveScreen):
    CSS_PATH = "registry.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("a", "approve", "Approve"),
        Binding("x", "reject", "Reject"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.patterns: tuple[PatternView, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(Text(" Failure patterns ", style="bold reverse"), id="registry-title")
        table = KeyedTable(id="patterns")
        table.set_columns(COLUMNS)
        yield table
        yield Static("", id="detail")
        yield Footer()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="patterns", name="patterns load", exit_on_error=False)
    def _load(self) -> None:
        from tui.app import cancelled
        from tui.data_registry import load_patterns

        patterns = load_patterns(self.project)
        if not cancelled():
            self.post_message(PatternsLoaded(patterns))

    def on_patterns_loaded(self, message: PatternsLoaded) -> None:
        self.patterns = message.patterns
        self.query_one("#patterns", KeyedTable).sync(pattern_rows(message.patterns))
        pending = sum(1 for p in message.patterns if p.status == "pending")
        title = Text(" Failure patterns ", style="bold reverse")
        title.append(f"  {len(message.patterns)} known, {pending} pending review · a approve · x reject")
        self.query_one("#registry-title", Static).update(title)
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

    def action_approve(self) -> None:
        p = self.selected()
        if p is None:
            return
        from tui import actions

        self.gapp.perform("approve_pattern", actions.approve_pattern, p.pattern_id, "approved in the dashboard")

    def action_reject(self) -> None:
        p = self.selected()
        if p is None:
            return
        from tui.modals.prompt import ask_reject_pattern

        ask_reject_pattern(self.gapp, p.pattern_id)


def pattern_rows(patterns: tuple[PatternView, ...]) -> dict[str, tuple[Any, ...]]:
    return {
        p.key: (p.pattern_id, Text(p.status, style=STATUS_STYLE.get(p.status, "")),
                Text(p.severity, style=SEVERITY_STYLE.get(p.severity, "")), p.stage or "", str(p.occurrences),
                clock(p.last_seen)[:16], shorten(p.symptom, 120))
        for p in patterns
    }
