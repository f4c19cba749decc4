"""History: a workspace's experiment records from ``list_history`` (the MCP tool's filters, sorts
and pages), refreshed in place; mark two to compare."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input, Static

from tui import cells
from tui.data_history import FILTER_HELP, SORT_KEYS
from tui.format import clock, number, shorten
from tui.messages import HistoryLoaded
from tui.screens.base import LiveScreen
from tui.viewmodels import HistoryPage, HistoryQuery, HistoryRow
from tui.widgets.keyed_table import CellCache, KeyedTable

COLUMNS = [("", "mark", 1), ("record", "record", 26), ("stage", "stage", 13), ("ver", "version", 5),
           ("created (UTC)", "created", 16), ("state", "state", 10), ("results", "results", 9),
           ("outcome", "outcome", 8), ("metric", "metric", 14), ("value", "value", 9), ("tags", "tags", 12),
           ("reason", "reason", 40)]
PAGE = 200  # list_history's largest page
FILTER_FIELDS = ("record_type", "stage", "tagged", "metric", "min_value", "experiment_group", "finalized_only",
                 "include_pruned", "include_supporting")


class HistoryScreen(LiveScreen):
    CSS_PATH = "history.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Open run"),
        Binding("space", "mark", "Mark"),
        Binding("m", "compare", "Compare marked"),
        Binding("o", "sort", "Sort"),
        Binding("d", "direction", "Asc/desc"),
        Binding("F", "finalized", "Finalized only"),
        Binding("T", "tagged", "Tagged only"),
        Binding("right_square_bracket", "page(1)", "Next page"),
        Binding("left_square_bracket", "page(-1)", "Prev page"),
        Binding("w", "workspace", "Next workspace"),
        Binding("t", "tag", "Tag"),
        Binding("f", "finalize", "Finalize"),
        Binding("slash", "filter", "Filter"),
    ]

    def __init__(self, workspace: str) -> None:
        super().__init__()
        self.query_state = HistoryQuery(workspace=workspace, limit=PAGE)
        self.page: HistoryPage | None = None
        self.marked: list[str] = []
        self.cells = CellCache()

    def compose(self) -> ComposeResult:
        yield Static("", id="history-title")
        yield Input(placeholder=f"/ filter: {FILTER_HELP}", id="filter")
        yield Static("", id="filter-error")
        table = KeyedTable(id="history")
        table.set_columns(COLUMNS)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#history", KeyedTable).focus()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#history", KeyedTable)

    # ------------------------------------------------------------------ loading
    def reload(self) -> None:
        self._load(self.query_state)

    @work(thread=True, exclusive=True, group="history", name="history load", exit_on_error=False)
    def _load(self, query: HistoryQuery) -> None:
        from tui.app import cancelled
        from tui.data_history import load_history

        page = load_history(self.project, query)
        if not cancelled():
            self.post_message(HistoryLoaded(page))

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        if message.page.query != self.query_state:
            return  # a newer query is on its way
        self.apply(message.page)

    def apply(self, page: HistoryPage) -> None:
        self.page = page
        self.table.sync(history_rows(page.rows, self.marked, self.cells))
        self.query_one("#history-title", Static).update(title(page, self.marked))

    def set_query(self, **changes: Any) -> None:
        self.query_state = dataclasses.replace(self.query_state, **changes)
        self.reload()

    # ------------------------------------------------------------------ actions
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "filter":
            return
        from goldfish.errors import GoldfishError
        from tui.data_history import parse_filter

        error = self.query_one("#filter-error", Static)
        try:
            fields = parse_filter(event.value)
        except GoldfishError as exc:
            error.update(Text(f"{exc.message} {exc.fix or ''}".strip(), style="red"))
            error.add_class("shown")
            return  # the last valid filter stays applied
        error.update("")
        error.remove_class("shown")
        defaults = HistoryQuery(workspace=self.query_state.workspace)
        reset = {f: getattr(defaults, f) for f in FILTER_FIELDS}
        self.set_query(**{**reset, **fields}, text=event.value.strip(), offset=0)

    def _toggle_token(self, token: str, *others: str) -> None:
        """F / T edit the filter line, so the line always says what is applied."""
        box = self.query_one("#filter", Input)
        words = box.value.split()
        if token in words:
            words = [w for w in words if w != token]
        else:
            words = [w for w in words if w not in others] + [token]
        box.value = " ".join(words)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.table.focus()
        else:
            self.app.pop_screen()

    def action_sort(self) -> None:
        i = SORT_KEYS.index(self.query_state.sort_by)
        self.set_query(sort_by=SORT_KEYS[(i + 1) % len(SORT_KEYS)], offset=0)

    def action_direction(self) -> None:
        self.set_query(descending=not self.query_state.descending, offset=0)

    def action_finalized(self) -> None:
        self._toggle_token("finalized")

    def action_tagged(self) -> None:
        self._toggle_token("tagged", "untagged")

    def action_page(self, step: int) -> None:
        q = self.query_state
        offset = q.offset + step * q.limit
        total = self.page.total if self.page else 0
        if offset < 0 or (step > 0 and offset >= total):
            self.notify("No more pages that way.", severity="information")
            return
        self.set_query(offset=offset)

    def action_workspace(self) -> None:
        self._next_workspace()

    @work(thread=True, exclusive=True, group="history-ws", name="workspace list", exit_on_error=False)
    def _next_workspace(self) -> None:
        from tui.data import live_workspaces

        names = live_workspaces(self.project)
        if names:
            current = self.query_state.workspace
            nxt = names[(names.index(current) + 1) % len(names)] if current in names else names[0]
            self.app.call_from_thread(self._switch, nxt)

    def _switch(self, workspace: str) -> None:
        self.marked = []
        self.set_query(workspace=workspace, offset=0)  # the filter line carries over

    def selected(self) -> HistoryRow | None:
        key = self.table.selected_key
        rows = self.page.rows if self.page else ()
        return next((r for r in rows if r.key == key), None)

    def action_mark(self) -> None:
        row = self.selected()
        if row is None:
            return
        if row.key in self.marked:
            self.marked.remove(row.key)
        else:
            self.marked = [*self.marked, row.key][-2:]
        if self.page:
            self.apply(self.page)

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.notify("Mark two records with space, then press m.", severity="warning")
            return
        from tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.query_state.workspace, self.marked[0], self.marked[1]))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row is None or not row.run_id:
            return
        from tui.screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(row.run_id))

    def action_tag(self) -> None:
        row = self.selected()
        if row is not None:
            from tui.modals.tag import ask_tag

            ask_tag(self.gapp, row.record_id)

    def action_finalize(self) -> None:
        row = self.selected()
        if row is not None and row.run_id:
            from tui.modals.finalize_form import ask_finalize

            ask_finalize(self.gapp, row.run_id)


def title(page: HistoryPage, marked: list[str]) -> Text:
    q = page.query
    first = q.offset + 1 if page.rows else 0
    text = Text()
    text.append(f" History of {q.workspace} ", style="bold reverse")
    text.append(f"  {page.total} record(s), showing {first}–{q.offset + len(page.rows)}")
    text.append(f" · sort {q.sort_by} {'↓' if q.descending else '↑'}")
    if q.text:
        text.append(f" · filter {q.text}", style="cyan")
    if marked:
        text.append(f" · marked {len(marked)}/2", style="magenta")
    return text


def history_rows(rows: tuple[HistoryRow, ...], marked: list[str],
                 cache: CellCache | None = None) -> dict[str, tuple[Any, ...]]:
    cache = cache or CellCache()
    out = {r.key: cache.get((r, r.key in marked), lambda r=r: _cells(r, r.key in marked)) for r in rows}  # type: ignore[misc]
    cache.end_round()
    return out


def _cells(r: HistoryRow, marked: bool) -> tuple[Any, ...]:
    stage = Text(r.stage or "")
    if r.supporting:
        stage.append(f" +{r.supporting}", style="dim")  # supporting stages: the `supporting` filter lists them
    results = "supporting" if r.role == "supporting" else r.results_status or ""
    return (Text("●", style="magenta") if marked else "", r.record_id, stage, r.version or "",
            clock(r.created)[:16], cells.state(r.state), results, cells.outcome(r.ml_outcome),
            shorten(r.metric_name, 18), number(r.metric_value), shorten(",".join(r.tags), 20), shorten(r.reason, 80))
