"""Run detail: summary, live log tail, metric plots, state timeline, outputs, lineage, review."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Log, Static, TabbedContent, TabPane

from tui import cells
from tui.format import clock, duration, number, shorten
from tui.messages import LogRead, RunDetailLoaded
from tui.screens.base import LiveScreen
from tui.viewmodels import LogChunk, RunDetailView
from tui.widgets.keyed_table import KeyedTable
from tui.widgets.metric_plot import MetricPlot

LOG_POLL_SECONDS = 0.5


class RunDetailScreen(LiveScreen):
    CSS_PATH = "run_detail.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "cancel", "Cancel run"),
        Binding("f", "finalize", "Finalize"),
        Binding("t", "tag", "Tag"),
        Binding("l", "toggle_follow", "Follow log"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.view: RunDetailView | None = None
        self.cursor: int | None = None
        self.follow = True
        self.log_lines = 0
        self.log_done = False

    def compose(self) -> ComposeResult:
        yield Static(f"Run {self.run_id}", id="summary")
        with TabbedContent(id="tabs"):
            with TabPane("Log", id="tab-log"):
                yield Log(id="log", max_lines=20_000, auto_scroll=True)
            with TabPane("Metrics", id="tab-metrics"), Horizontal():
                yield self._table("metrics", [("metric", "name", 18), ("last", "last", 10), ("min", "min", 10),
                                              ("max", "max", 10), ("points", "points", 7)])
                yield MetricPlot(id="plot")
            with TabPane("Timeline", id="tab-timeline"):
                yield self._table("timeline", [("time (UTC)", "time", 19), ("from", "from", 10), ("to", "to", 11),
                                               ("cause", "cause", 16), ("by", "source", 10)])
            with TabPane("Outputs", id="tab-outputs"):
                yield self._table("outputs", [("output", "name", 14), ("format", "format", 8), ("exists", "exists", 6),
                                              ("size", "size", 9), ("stats", "stats", 52), ("contract", "contract", 24)])
            with TabPane("Lineage", id="tab-lineage"):
                yield self._table("inputs", [("input", "name", 14), ("kind", "kind", 8), ("upstream run", "run", 15),
                                             ("signal / source", "signal", 16), ("location", "location", 50)])
            with TabPane("Review", id="tab-review"), Vertical():
                yield Static("", id="review")
                yield self._table("findings", [("sev", "severity", 9), ("source", "source", 10),
                                               ("check", "check", 22), ("message", "message", 80)])
        yield Footer()

    @staticmethod
    def _table(name: str, columns: list[tuple[str, str, int]]) -> KeyedTable:
        table = KeyedTable(id=name)
        table.set_columns(columns)
        return table

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(LOG_POLL_SECONDS, self._poll_log, name="log poll")

    # ------------------------------------------------------------------ loading
    def reload(self) -> None:
        self._load()
        self._read_log()

    def _poll_log(self) -> None:
        if self.gapp.live and not self.log_done:
            self._read_log()

    @work(thread=True, exclusive=True, group="run-detail", name="run detail load", exit_on_error=False)
    def _load(self) -> None:
        from tui.app import cancelled
        from tui.data_runs import load_run_detail

        view = load_run_detail(self.project, self.run_id, self.now())
        if not cancelled():
            self.post_message(RunDetailLoaded(view))

    @work(thread=True, exclusive=True, group="run-log", name="log read", exit_on_error=False)
    def _read_log(self) -> None:
        from tui.app import cancelled
        from tui.data_runs import read_log

        chunk = read_log(self.project, self.run_id, self.cursor)
        if not cancelled():
            self.post_message(LogRead(self.run_id, chunk))

    def on_log_read(self, message: LogRead) -> None:
        self.append_log(message.chunk)

    def append_log(self, chunk: LogChunk) -> None:
        log = self.query_one("#log", Log)
        if chunk.reset:
            log.clear()
            self.log_lines = 0
        if chunk.lines:
            log.write_lines(chunk.lines, scroll_end=self.follow)
            self.log_lines += len(chunk.lines)
        self.cursor = chunk.cursor
        self.log_done = chunk.done

    def on_run_detail_loaded(self, message: RunDetailLoaded) -> None:
        self.apply(message.view)

    def apply(self, view: RunDetailView) -> None:
        self.view = view
        if not view.terminal:
            self.log_done = False
        self.query_one("#summary", Static).update(summary(view))
        for name, rows in detail_rows(view).items():
            self.query_one(f"#{name}", KeyedTable).sync(rows)
        self.query_one("#review", Static).update(review_text(view))
        plot = self.query_one("#plot", MetricPlot)
        chosen = self.query_one("#metrics", KeyedTable).selected_key
        plot.show([m for m in view.metrics if m.name == chosen] or list(view.metrics[:1]))
        if view.attempts:
            self.show_attempts(view)

    def show_attempts(self, view: RunDetailView) -> None:
        """The Attempts tab exists only for runs on a cloud backend (VMs and capacity search)."""
        rows = attempt_rows(view)
        found = self.query("#attempts")
        if found:
            found.first(KeyedTable).sync(rows)
            return
        table = self._table("attempts", [("attempt", "attempt", 7), ("try", "n", 4), ("zone", "zone", 15),
                                         ("machine", "machine", 15), ("model", "model", 9), ("outcome", "outcome", 10),
                                         ("instance", "instance", 16), ("error", "error", 60)])
        self.query_one("#tabs", TabbedContent).add_pane(TabPane("Attempts", table, id="tab-attempts"))
        self.call_after_refresh(table.sync, rows)

    def on_data_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        if event.data_table.id == "metrics" and self.view is not None:
            key = str(event.row_key.value)
            self.query_one("#plot", MetricPlot).show([m for m in self.view.metrics if m.name == key])

    # ------------------------------------------------------------------ actions
    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.query_one("#log", Log).auto_scroll = self.follow
        self.notify("Following the log." if self.follow else "Stopped following the log.")

    def action_cancel(self) -> None:
        if self.view is None or self.view.terminal:
            self.notify(f"{self.run_id} is not active; nothing to cancel.", severity="warning")
            return
        from tui.modals.confirm_cancel import ask_cancel

        ask_cancel(self.gapp, self.run_id, self.view.stage)

    def action_finalize(self) -> None:
        from tui.modals.finalize_form import ask_finalize

        ask_finalize(self.gapp, self.run_id)

    def action_tag(self) -> None:
        from tui.modals.tag import ask_tag

        ask_tag(self.gapp, self.run_id)


# ----------------------------------------------------------------------------- pure rendering


def summary(view: RunDetailView) -> Text:
    text = Text()
    text.append(f" {view.run_id} ", style="bold reverse")
    text.append(f"  {view.workspace}@{view.version or '?'} · stage {view.stage} · ")
    text.append_text(cells.state(view.state, cancel_requested=view.cancel_requested))
    if view.cause:
        text.append(f" ({view.cause})", style="dim")
    if view.elapsed is not None:
        text.append(f" · {duration(view.elapsed)}")
    if view.heartbeat_age is not None:
        text.append(f" · heartbeat {duration(view.heartbeat_age)} ago")
    text.append("\n")
    metric = view.results_final or view.results_auto or {}
    text.append(f" results: {view.results_status or 'missing'}")
    if view.ml_outcome and view.ml_outcome != "unknown":
        text.append(" · ")
        text.append_text(cells.outcome(view.ml_outcome))
    if metric.get("value") is not None:
        text.append(f" · {metric.get('primary_metric') or view.primary_metric} = {number(metric.get('value'))}")
    if view.record_id:
        text.append(f" · record {view.record_id}", style="dim")
    text.append("\n")
    if view.reason:
        text.append(f" why: {shorten(view.reason, 150)}", style="italic")
    if view.error:
        text.append(f"\n error: {shorten(view.error, 300)}", style="red")
    return text


def _stats_text(stats: dict[str, Any]) -> str:
    if not stats:
        return ""
    if all(isinstance(v, dict) for v in stats.values()) and "mean" not in stats:
        first = next(iter(stats.items()))
        return f"{first[0]}: {_stats_text(first[1])}" + (f" (+{len(stats) - 1})" if len(stats) > 1 else "")
    parts = [f"{k}={number(stats[k], 3)}" for k in ("mean", "std", "min", "max", "entropy", "null_ratio")
             if isinstance(stats.get(k), (int, float))]
    if stats.get("shape"):
        parts.insert(0, "×".join(str(s) for s in stats["shape"]))
    return " ".join(parts)


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return str(n)


def detail_rows(view: RunDetailView) -> dict[str, dict[str, tuple[Any, ...]]]:
    return {
        "metrics": {
            m.name: (m.name, number(_last(m.values)), number(_min(m.values)), number(_max(m.values)), str(m.total_points))
            for m in view.metrics
        },
        "timeline": {
            str(i): (clock(t.ts), t.from_state or "", cells.state(t.to_state), t.cause or "", t.source or "")
            for i, t in enumerate(view.transitions)
        },
        "outputs": {
            o.name: (o.name, o.format or "", "yes" if o.exists else ("no" if o.exists is False else "?"),
                     _size(o.size_bytes), _stats_text(o.stats),
                     Text(o.contract, style="red" if o.contract.startswith("error") else
                          ("yellow" if o.contract.startswith("warning") else "green")))
            for o in view.outputs
        },
        "inputs": {
            i.name: (i.name, i.kind or "", i.upstream_run or "", i.signal or i.source or "", shorten(i.location, 80))
            for i in view.inputs
        },
        "findings": {
            f.key: (cells.severity(f.severity), f.source, shorten(f.check, 28), shorten(f.message, 160))
            for f in view.findings
        },
    }


def attempt_rows(view: RunDetailView) -> dict[str, tuple[Any, ...]]:
    style = {"launched": "green", "exited": "green", "running": "cyan", "stockout": "yellow", "quota": "red",
             "preempted": "yellow", "lost": "red"}
    return {
        a.key: (str(a.attempt), str(a.n), a.zone, a.machine_type, a.provisioning,
                Text(a.outcome, style=style.get(a.outcome, "")), a.instance, shorten(a.error, 120))
        for a in view.attempts
    }


def review_text(view: RunDetailView) -> Text:
    style = {"approved": "green", "warned": "yellow", "blocked": "bold red", "skipped": "dim"}.get(view.review or "", "")
    text = Text(" Pre-run review: ")
    text.append(view.review or "not run yet", style=style)
    if view.review_summary:
        text.append(f" — {shorten(view.review_summary, 200)}")
    text.append(f"\n {len(view.findings)} finding(s) from preflight, review, monitor and post-run checks.")
    return text


def _finite(values: tuple[float | None, ...]) -> list[float]:
    return [v for v in values if v is not None]


def _last(values: tuple[float | None, ...]) -> float | None:
    vals = _finite(values)
    return vals[-1] if vals else None


def _min(values: tuple[float | None, ...]) -> float | None:
    vals = _finite(values)
    return min(vals) if vals else None


def _max(values: tuple[float | None, ...]) -> float | None:
    vals = _finite(values)
    return max(vals) if vals else None
