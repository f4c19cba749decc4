"""Sources: the data registry (what stages can read as ``dataset`` inputs)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static

from tui.format import clock, shorten
from tui.messages import SourcesLoaded
from tui.screens.base import LiveScreen
from tui.screens.run_detail import _size
from tui.viewmodels import SourceView
from tui.widgets.keyed_table import KeyedTable

COLUMNS = [("name", "name", 20), ("format", "format", 8), ("size", "size", 9), ("created (UTC)", "created", 16),
           ("by", "by", 14), ("location", "location", 44), ("description", "description", 40)]


class SourcesScreen(LiveScreen):
    CSS_PATH = "registry.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self) -> None:
        super().__init__()
        self.sources: tuple[SourceView, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(Text(" Sources ", style="bold reverse"), id="registry-title")
        table = KeyedTable(id="sources")
        table.set_columns(COLUMNS)
        yield table
        yield Static("", id="detail")
        yield Footer()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="sources", name="sources load", exit_on_error=False)
    def _load(self) -> None:
        from tui.app import cancelled
        from tui.data_registry import load_sources

        sources = load_sources(self.project)
        if not cancelled():
            self.post_message(SourcesLoaded(sources))

    def on_sources_loaded(self, message: SourcesLoaded) -> None:
        self.sources = message.sources
        self.query_one("#sources", KeyedTable).sync(source_rows(message.sources))
        title = Text(" Sources ", style="bold reverse")
        title.append(f"  {len(message.sources)} registered" if message.sources else
                     "  none registered yet (register_source / promote_artifact)")
        self.query_one("#registry-title", Static).update(title)
        self._detail()

    def on_data_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        self._detail()

    def _detail(self) -> None:
        key = self.query_one("#sources", KeyedTable).selected_key
        src = next((s for s in self.sources if s.key == key), None)
        text = "" if src is None else "\n".join(
            [f"{src.name}: {src.description or ''}", f"location: {src.location or ''}"]
            + [f"{k}: {shorten(v, 120)}" for k, v in sorted(src.extra.items())]
        )
        self.query_one("#detail", Static).update(text)


def source_rows(sources: tuple[SourceView, ...]) -> dict[str, tuple[Any, ...]]:
    return {
        s.key: (s.name, s.format or "", _size(s.size_bytes), clock(s.created)[:16], shorten(s.created_by, 20),
                shorten(s.location, 60), shorten(s.description, 60))
        for s in sources
    }
