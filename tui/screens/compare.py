"""Compare two records: outcomes, metric deltas, config diff and the code diff between versions."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Label, Static

from tui.format import delta, number, shorten
from tui.messages import CompareLoaded
from tui.screens.base import LiveScreen
from tui.viewmodels import CompareView
from tui.widgets.keyed_table import KeyedTable


class CompareScreen(LiveScreen):
    CSS_PATH = "compare.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, workspace: str, left: str, right: str) -> None:
        super().__init__()
        self.workspace, self.left, self.right = workspace, left, right
        self.view: CompareView | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="compare-title")
        with Horizontal(id="compare-top"):
            with Vertical():
                yield Label("Outcomes", classes="section")
                yield self._table("outcomes", [("", "field", 14), ("left", "left", 24), ("right", "right", 24)])
                yield Label("Metrics (last value)", classes="section")
                yield self._table("deltas", [("metric", "name", 22), ("left", "left", 10), ("right", "right", 10),
                                             ("Δ", "delta", 10)])
            with Vertical():
                yield Label("Config changes", classes="section")
                yield self._table("config", [("key", "key", 28), ("left", "left", 18), ("right", "right", 18)])
        yield Label("Code", classes="section")
        with VerticalScroll(id="code-scroll"):
            yield Static("", id="code")
        yield Footer()

    @staticmethod
    def _table(name: str, columns: list[tuple[str, str, int]]) -> KeyedTable:
        table = KeyedTable(id=name, cursor=False)
        table.set_columns(columns)
        return table

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="compare", name="compare load", exit_on_error=False)
    def _load(self) -> None:
        from tui.app import cancelled
        from tui.data_history import load_compare

        view = load_compare(self.project, self.workspace, self.left, self.right)
        if not cancelled():
            self.post_message(CompareLoaded(view))

    def on_compare_loaded(self, message: CompareLoaded) -> None:
        view = self.view = message.view
        for name, rows in compare_rows(view).items():
            self.query_one(f"#{name}", KeyedTable).sync(rows)
        title = Text()
        title.append(f" Compare in {view.workspace} ", style="bold reverse")
        title.append(f"  left {view.left.record_id} ({view.left.stage} {view.left.version})"
                     f"  →  right {view.right.record_id} ({view.right.stage} {view.right.version})")
        self.query_one("#compare-title", Static).update(title)
        code = self.query_one("#code", Static)
        summary = Text(view.code_summary or "No code difference.", style="dim")
        if view.code_diff:
            code.update(Group(summary, Syntax(view.code_diff, "diff", theme="ansi_dark", word_wrap=False)))
        else:
            code.update(summary)


def _show(value: Any) -> str:
    return "(absent)" if value is None else shorten(value, 40)


def compare_rows(view: CompareView) -> dict[str, dict[str, tuple[Any, ...]]]:
    deltas = {}
    for d in view.metric_deltas:
        change = d.delta
        style = "" if change is None or change == 0 else ("green" if change > 0 else "red")
        deltas[d.name] = (shorten(d.name, 30), number(d.left), number(d.right), Text(delta(change), style=style))
    return {
        "outcomes": {f: (f, shorten(a, 40), shorten(b, 40)) for f, a, b in view.outcomes},
        "deltas": deltas,
        "config": {c.key: (shorten(c.key, 40), _show(c.left), _show(c.right)) for c in view.config_changes},
    }
