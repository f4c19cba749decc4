"""The dashboard: slots, active runs, the finalization queue, alerts, SVS findings, audit and thoughts."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Label, Static

from tui import cells
from tui.format import age, clock, duration, number, shorten, spark
from tui.messages import DashboardLoaded
from tui.screens.base import LiveScreen
from tui.viewmodels import DashboardView, ResultsView
from tui.widgets.keyed_table import KeyedTable

SLOT_COLUMNS = [("slot", "slot", 4), ("workspace", "workspace", 14), ("ver", "version", 4),
                ("changes", "dirty", 11), ("goal", "goal", 50)]
RESULTS_COLUMNS = [("workspace", "workspace", 14), ("metric", "metric", 12), ("best", "best", 10),
                   ("value vs goal", "goal", 22), ("last results", "last", 24), ("trend", "spark", 10)]
ACTIVE_COLUMNS = [("run", "run", 14), ("workspace", "workspace", 10), ("stage", "stage", 9), ("state", "state", 10),
                  ("elapsed", "elapsed", 7), ("beat", "heartbeat", 5), ("metric", "metric", 10),
                  ("value", "value", 7), ("trend", "spark", 14)]
QUEUE_COLUMNS = [("workspace", "workspace", 12), ("run", "run", 14), ("stage", "stage", 10),
                 ("outcome", "outcome", 9), ("metric", "metric", 12), ("auto value", "value", 10),
                 ("ended", "ended", 8)]
ALERT_COLUMNS = [("sev", "severity", 9), ("kind", "kind", 8), ("age", "age", 7), ("message", "message", 120)]
FINDING_COLUMNS = [("sev", "severity", 9), ("run", "run", 14), ("check", "check", 14), ("message", "message", 100)]
AUDIT_COLUMNS = [("time", "time", 8), ("by", "source", 4), ("op", "op", 12), ("workspace", "workspace", 10),
                 ("text", "text", 100)]
POOL_COLUMNS = [("worker", "instance", 13), ("state", "state", 10), ("since", "since", 7), ("zone", "zone", 14),
                ("machine", "machine", 14), ("gpus", "gpus", 4), ("run", "run", 14)]

class DashboardScreen(LiveScreen):
    """What the agent is doing now, and what needs the person."""

    CSS_PATH = "dashboard.tcss"
    always_live = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", show=True),
        Binding("c", "cancel", "Cancel run"),
        Binding("f", "finalize", "Finalize"),
        Binding("t", "tag", "Tag"),
        Binding("v", "save_version", "Save version"),
        Binding("h", "history", "History"),
        Binding("a", "acknowledge", "Acknowledge alert"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: DashboardView | None = None
        self.loads = 0

    def compose(self) -> ComposeResult:
        yield Static("goldfish", id="topbar")
        with Horizontal(id="columns"):
            with Vertical(id="left"):
                yield Label("Slots", classes="section")
                yield self._table("slots", SLOT_COLUMNS)
                yield Label("Results", classes="section", id="results-title")
                yield self._table("results", RESULTS_COLUMNS)
                yield Label("Active runs", classes="section")
                yield self._table("active", ACTIVE_COLUMNS)
                yield Label("Awaiting finalization", classes="section", id="queue-title")
                yield self._table("queue", QUEUE_COLUMNS)
            with Vertical(id="right"):
                yield Label("Alerts", classes="section")
                yield self._table("alerts", ALERT_COLUMNS)
                yield Label("SVS findings", classes="section")
                yield self._table("findings", FINDING_COLUMNS)
                yield Label("Audit and thoughts", classes="section")
                yield self._table("audit", AUDIT_COLUMNS)
        yield Footer()

    @staticmethod
    def _table(name: str, columns: list[tuple[str, str, int]]) -> KeyedTable:
        table = KeyedTable(id=name)
        table.set_columns(columns)
        return table

    def table(self, name: str) -> KeyedTable:
        return self.query_one(f"#{name}", KeyedTable)

    # ------------------------------------------------------------------ loading
    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="dashboard", name="dashboard load", exit_on_error=False)
    def _load(self) -> None:
        from tui.app import cancelled
        from tui.data import load_dashboard

        view = load_dashboard(self.project, self.now())
        if not cancelled():
            self.post_message(DashboardLoaded(view))

    def on_dashboard_loaded(self, message: DashboardLoaded) -> None:
        self.apply(message.view)

    def apply(self, view: DashboardView) -> None:
        """Update the tables from a view: only changed rows and cells are touched."""
        self.view = view
        self.loads += 1
        for name, rows in dashboard_rows(view).items():
            self.table(name).sync(rows)
        self.query_one("#topbar", Static).update(topbar(view))
        self.query_one("#queue-title", Label).update(
            f"Awaiting finalization ({len(view.queue)})" if view.queue else "Awaiting finalization")
        if view.pool is not None:
            self.show_pool(view)

    def show_pool(self, view: DashboardView) -> None:
        """The warm pool panel appears only in projects that use (or used) the pool."""
        assert view.pool is not None
        rows = {w.key: (w.instance, cells.state(w.state), age(view.now - w.since if w.since else None), w.zone,
                        w.machine_type,
                        str(w.gpus), w.run) for w in view.pool.workers}
        title = f"Warm pool: {view.pool.summary}"
        if self.query("#pool"):
            self.query_one("#pool-title", Label).update(title)
            self.table("pool").sync(rows)
            return
        table = self._table("pool", POOL_COLUMNS)
        self.query_one("#left", Vertical).mount(Label(title, classes="section", id="pool-title"), table)
        self.call_after_refresh(table.sync, rows)

    # ------------------------------------------------------------------ selection
    def _focused(self) -> tuple[str | None, str | None]:
        focused = self.focused
        if isinstance(focused, KeyedTable) and focused.id:
            return focused.id, focused.selected_key
        return None, None

    def selected_run(self) -> str | None:
        """The run under the cursor of the focused table (active, queue, alerts, findings)."""
        name, key = self._focused()
        view = self.view
        if view is None or key is None:
            return None
        if name in ("active", "queue"):
            return key
        if name == "alerts":
            return next((a.run_id for a in view.alerts if a.key == key), None)
        if name == "findings":
            return next((f.run_id for f in view.findings if f.key == key), None)
        return None

    def selected_workspace(self) -> str | None:
        name, key = self._focused()
        view = self.view
        if view is None:
            return None
        if name == "slots" and key:
            return next((s.workspace for s in view.slots if s.key == key), None)
        run = self.selected_run()
        for a in view.active:
            if a.run_id == run:
                return a.workspace
        for q in view.queue:
            if q.run_id == run:
                return q.workspace
        if name == "alerts" and key:
            return next((a.workspace for a in view.alerts if a.key == key), None)
        mounted = [s.workspace for s in view.slots if s.workspace]
        return mounted[0] if mounted else (view.workspaces[0] if view.workspaces else None)

    # ------------------------------------------------------------------ actions
    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        # The focused table consumes enter (DataTable's select_cursor) and reports the row here.
        self.action_open()

    def action_open(self) -> None:
        name, _key = self._focused()
        if name == "slots":
            self.action_history()
            return
        run = self.selected_run()
        if run:
            from tui.screens.run_detail import RunDetailScreen

            self.app.push_screen(RunDetailScreen(run))

    def action_history(self) -> None:
        ws = self.selected_workspace()
        if ws is None:
            self.notify("No workspace yet: create one (create_workspace) first.", severity="warning")
            return
        from tui.screens.history import HistoryScreen

        self.app.push_screen(HistoryScreen(ws))

    def action_cancel(self) -> None:
        run = self.selected_run()
        active = {a.run_id: a for a in (self.view.active if self.view else ())}
        if run not in active:
            self.notify("Select an active run to cancel (tab to the Active runs table).", severity="warning")
            return
        from tui.modals.confirm_cancel import ask_cancel

        ask_cancel(self.gapp, run, active[run].stage)

    def action_finalize(self) -> None:
        run = self.selected_run()
        if run is None:
            self.notify("Select a run to finalize (tab to Awaiting finalization).", severity="warning")
            return
        from tui.modals.finalize_form import ask_finalize

        ask_finalize(self.gapp, run)

    def action_tag(self) -> None:
        run = self.selected_run()
        if run is None:
            self.notify("Select a run to tag.", severity="warning")
            return
        from tui.modals.tag import ask_tag

        ask_tag(self.gapp, run)

    def action_acknowledge(self) -> None:
        name, key = self._focused()
        view = self.view
        alert = next((a for a in view.alerts if a.key == key), None) if view and name == "alerts" else None
        if alert is None or alert.kind == "pattern":
            self.notify("Select an alert to acknowledge (tab to the Alerts table).", severity="warning")
            return
        from tui.modals.prompt import ask_acknowledge

        ask_acknowledge(self.gapp, alert.key, alert.message)

    def action_save_version(self) -> None:
        name, key = self._focused()
        slot = key if name == "slots" else None
        view = self.view
        if slot is None or view is None or not any(s.key == slot and s.workspace for s in view.slots):
            self.notify("Select a mounted slot to save (tab to the Slots table).", severity="warning")
            return
        from tui.modals.prompt import ask_save_version

        ask_save_version(self.gapp, slot)


# ----------------------------------------------------------------------------- rows (pure)


def topbar(view: DashboardView) -> Text:
    text = Text()
    text.append(" goldfish ", style="bold black on #f5a623")
    text.append(f" {view.project_name} ", style="bold")
    text.append(f"· {len(view.active)} active ", style="green" if view.active else "dim")
    text.append(f"· {len(view.queue)} to finalize ", style="yellow" if view.queue else "dim")
    alerts = view.alert_count
    text.append(f"· {alerts} alert{'s' if alerts != 1 else ''} ", style="bold red" if alerts else "dim")
    if view.pending_patterns:
        text.append(f"· {view.pending_patterns} pattern(s) to review ", style="cyan")
    text.append(f"· {clock(view.now)} UTC", style="dim")
    return text


def dashboard_rows(view: DashboardView) -> dict[str, dict[str, tuple[Any, ...]]]:
    """Every table's rows (key → cells) for a view; pure, so tests and benchmarks can call it."""
    return {
        "slots": {
            s.key: (s.slot, s.workspace or cells.dim("(empty)"), s.version or "",
                    cells.dirty(s.dirty, s.changed_count) if s.workspace else Text(""), shorten(s.goal or s.note, 60))
            for s in view.slots
        },
        "results": {r.key: result_cells(r) for r in view.results},
        "active": {
            a.key: (a.run_id, a.workspace, a.stage, cells.state(a.state, cancel_requested=a.cancel_requested),
                    duration(a.elapsed), cells.heartbeat(a.heartbeat_age, a.stalled, duration(a.heartbeat_age)),
                    shorten(a.metric_name, 16), number(a.metric_value),
                    Text(spark(a.spark), style="cyan") + Text(_trend_mark(a.trend)))
            for a in view.active
        },
        "queue": {
            q.key: (q.workspace, q.run_id, q.stage, cells.outcome_infra(q.infra_outcome), shorten(q.metric_name, 16),
                    number(q.metric_value), age(q.finished_age))
            for q in view.queue
        },
        "alerts": {
            a.key: (cells.severity(a.severity), a.kind, age(a.age).removesuffix(" ago"),
                    shorten((f"{a.workspace}: " if a.workspace else "") + a.message, 160))
            for a in view.alerts
        },
        "findings": {
            f.key: (cells.severity(f.severity), f.run_id, shorten(f.check, 20),
                    shorten(f"{f.stage}: {f.message}", 140))
            for f in view.findings
        },
        "audit": {
            e.key: (clock(e.ts)[11:] if e.ts else "", e.source, Text(e.op, style="magenta" if e.thought else ""),
                    e.workspace or "", Text(e.text, style="italic" if e.thought else ""))
            for e in reversed(view.audit)  # oldest first: new entries append at the bottom, like a log
        },
    }


def result_cells(r: ResultsView) -> tuple[Any, ...]:
    """One workspace's results row: best tag, value vs goal, the last results, a sparkline."""
    best = Text(f"@{r.best_tag}", style="bold") if r.best_tag else cells.dim("no tag")
    goal = Text("")
    if r.best_value is not None:
        goal = Text(number(r.best_value))
        if r.goal_value is not None:
            reached = (r.best_value >= r.goal_value) if r.direction != "minimize" else (r.best_value <= r.goal_value)
            goal.append(f" / goal {number(r.goal_value)} ", style="dim")
            goal.append("✓" if reached else "✗", style="green" if reached else "yellow")
    last = Text()
    for i, point in enumerate(r.last):
        if i:
            last.append(" · ", style="dim")
        last.append(number(point.value))
        last.append(" ")
        last.append_text(cells.outcome(point.ml_outcome))
    return (r.workspace, shorten(r.metric, 16), best, goal, last, Text(spark(r.spark), style="cyan"))


def _trend_mark(trend: str | None) -> str:
    return {"up": " ↑", "down": " ↓", "flat": " →"}.get(trend or "", "")
