"""The finalize form: the person records the authoritative result of a run.

Every change re-runs ``goldfish.records.results_spec.validate_final_results`` (the validator
``finalize_run`` runs) on the document the form would submit, and every error it reports is
listed under the form; "Finalize" is enabled only when there are none. Defaults come from the
run's results_spec and its automatic result, and the outcome is suggested from the goal.

"Finalize" calls ``project.records.finalize_run`` in a worker. What only the service can refuse
(the run is still active, the metric or direction differs from the run's results_spec) is shown
in the form, which stays open; on success the form closes and ``FinalizeDone`` shows the
comparison (vs_previous, vs_best) and the warnings the service returned.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from goldfish.errors import GoldfishError
from goldfish.records.results_spec import DATASET_SPLITS, DIRECTIONS, ML_OUTCOMES, validate_final_results
from tui.modals.prompt import error_text

if TYPE_CHECKING:
    from goldfish.records.models import FinalizeResult
    from tui.app import GoldfishApp

TEXT_FIELDS = ("primary_metric", "value", "notes", "unit", "step", "epoch")
SELECT_FIELDS = ("direction", "dataset_split", "ml_outcome")
NULL = "null"


def parse_number(text: str) -> Any:
    """The typed text as the JSON value an agent would send: a number when it reads as one."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value


def form_defaults(run: dict[str, Any]) -> dict[str, str]:
    spec: dict[str, Any] = run.get("results_spec") or {}
    auto: dict[str, Any] = run.get("results_auto") or {}
    final: dict[str, Any] = run.get("results_final") or {}
    base = {**{k: spec.get(k) for k in ("primary_metric", "direction", "dataset_split")}, **auto, **final}
    value = base.get("value")
    out = {k: "" if base.get(k) is None else str(base.get(k)) for k in (*TEXT_FIELDS, *SELECT_FIELDS)}
    if isinstance(value, float) and math.isfinite(value):
        out["value"] = repr(value)
    if not final and spec and isinstance(value, (int, float)):
        from goldfish.records.results_spec import ml_outcome_hint, validate_results_spec

        with contextlib.suppress(GoldfishError):
            out["ml_outcome"] = ml_outcome_hint(validate_results_spec(spec), float(value))
    if not final and value is None and _produced_nothing(run):
        out["value"], out["ml_outcome"] = NULL, "miss"  # nothing to judge: say so, invent no number
    return out


def _produced_nothing(run: dict[str, Any]) -> bool:
    from goldfish.runs.gate import result_outcome

    return result_outcome(run) in ("crashed", "preempted")


class FinalizeForm(ModalScreen["FinalizeResult | None"]):
    """Dismisses with the service's ``FinalizeResult`` once finalize_run accepted, None when closed."""

    DEFAULT_CSS = """
    FinalizeForm { align: center middle; }
    FinalizeForm > Vertical { width: 96; height: auto; max-height: 95%; border: thick $accent;
                              background: $panel; padding: 1 2; }
    FinalizeForm .title { text-style: bold; }
    FinalizeForm Grid { grid-size: 2; grid-columns: 18 1fr; grid-rows: auto; height: auto; grid-gutter: 1 1;
                        margin-top: 1; }
    FinalizeForm #errors { color: $error; height: auto; margin-top: 1; }
    FinalizeForm #ok-note { color: $success; height: auto; margin-top: 1; }
    FinalizeForm #buttons { height: auto; margin-top: 1; align-horizontal: right; }
    FinalizeForm Button { margin-left: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, run: dict[str, Any]) -> None:
        super().__init__()
        self.run = run
        self.defaults = form_defaults(run)
        self.errors: list[dict[str, str]] = []
        self.refusal: str | None = None  # what finalize_run refused, as shown
        self.busy = False

    def compose(self) -> ComposeResult:
        d = self.defaults
        spec = self.run.get("results_spec") or {}
        with Vertical():
            yield Label(f"Finalize {self.run.get('stage')} run {self.run['id']}", classes="title")
            goal = (f"Goal: {spec.get('direction')} {spec.get('primary_metric')} to {spec.get('goal_value')} "
                    f"(min {spec.get('min_value')}, tolerance {spec.get('tolerance')})" if spec else "No results_spec.")
            yield Static(goal, classes="hint")
            with Grid():
                yield Label("primary_metric")
                yield Input(d["primary_metric"], id="primary_metric", compact=True)
                yield Label("direction")
                yield Select([(v, v) for v in DIRECTIONS], value=d["direction"] or Select.NULL, id="direction",
                             compact=True)
                yield Label("value")
                yield Input(d["value"], id="value", placeholder="number (null: the run produced none)", compact=True)
                yield Label("dataset_split")
                yield Select([(v, v) for v in DATASET_SPLITS], value=d["dataset_split"] or Select.NULL,
                             id="dataset_split", compact=True)
                yield Label("ml_outcome")
                yield Select([(v, v) for v in ML_OUTCOMES], value=d["ml_outcome"] or Select.NULL, id="ml_outcome",
                             compact=True)
                yield Label("notes")
                yield Input(d["notes"], id="notes", placeholder="what happened and why (15+ characters)", compact=True)
                yield Label("unit (optional)")
                yield Input(d["unit"], id="unit", compact=True)
                yield Label("step (optional)")
                yield Input(d["step"], id="step", placeholder="integer ≥ 0", compact=True)
                yield Label("epoch (optional)")
                yield Input(d["epoch"], id="epoch", placeholder="integer ≥ 0", compact=True)
            yield Static("", id="errors")
            yield Static("", id="ok-note")
            with Horizontal(id="buttons"):
                yield Button("Back", id="back")
                yield Button("Finalize", id="ok", variant="success", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#value", Input).focus()
        self.revalidate()

    def results(self) -> dict[str, Any]:
        """The document the form would send to finalize_run (blank optional fields left out)."""
        out: dict[str, Any] = {}
        for name in SELECT_FIELDS:
            value = self.query_one(f"#{name}", Select).value
            if value is not Select.NULL and value is not None:
                out[name] = value
        for name in TEXT_FIELDS:
            text = self.query_one(f"#{name}", Input).value
            if not text.strip():
                continue  # a blank required field is named by the validator as missing
            if name == "value" and text.strip().lower() in (NULL, "none"):
                out[name] = None  # the run produced no value
                continue
            out[name] = parse_number(text) if name in ("value", "step", "epoch") else text.strip()
        return out

    def revalidate(self) -> list[dict[str, str]]:
        try:
            validate_final_results(self.results())
            self.errors = []
        except GoldfishError as exc:
            self.errors = list(exc.details.get("errors") or [{"field": "results", "message": exc.message}])
        self.refusal = None  # the input changed: an earlier refusal no longer describes it
        text = "\n".join(f"• {e['field']}: {e['message']}" for e in self.errors)
        self.query_one("#errors", Static).update(text)
        self.query_one("#ok-note", Static).update("" if self.errors else "Valid: finalize_run will check it "
                                                                         "against the run and its results_spec.")
        self.query_one("#ok", Button).disabled = bool(self.errors) or self.busy
        return self.errors

    def on_input_changed(self, event: Input.Changed) -> None:
        self.revalidate()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.revalidate()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok" and not self.revalidate():
            self.submit()
        elif event.button.id == "back":
            self.dismiss(None)

    def submit(self) -> None:
        """finalize_run through the records service, in a worker; the outcome comes back below."""
        if self.busy:
            return
        from tui import actions

        self.busy = True
        self.query_one("#ok", Button).disabled = True
        self.query_one("#ok-note", Static).update("Finalizing…")
        project, run_id, results = self.app.project, self.run["id"], self.results()  # type: ignore[attr-defined]
        self.run_worker(lambda: actions.finalize_run(project, run_id, results), name="action finalize",
                        group="actions", thread=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        from tui import actions
        from tui.messages import ActionDone

        if event.worker.group != "actions" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.busy = False
        if event.state == WorkerState.SUCCESS:
            result: FinalizeResult = event.worker.result  # type: ignore[assignment]
            self.app.post_message(ActionDone("finalize", actions.finalize_summary(result)))
            self.dismiss(result)
            return
        error = event.worker.error
        self.refusal = refusal_text(error)
        self.query_one("#errors", Static).update(self.refusal)
        self.query_one("#ok-note", Static).update("")
        self.query_one("#ok", Button).disabled = False
        if not isinstance(error, GoldfishError):
            self.app.handle_worker_state(event)  # type: ignore[attr-defined]

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def refusal_text(error: BaseException | None) -> str:
    """finalize_run's refusal: every field error or spec mismatch it listed, then its fix."""
    if isinstance(error, GoldfishError):
        items = [f"• {e['field']}: {e['message']}" for e in error.details.get("errors") or []
                 if isinstance(e, dict)] or [f"• {p}" for p in error.details.get("problems") or []]
        if items:
            return "finalize_run refused:\n" + "\n".join(items) + (f"\nFix: {error.fix}" if error.fix else "")
    return "finalize_run refused: " + error_text(error)


class FinalizeDone(ModalScreen[None]):
    """What finalize_run recorded: the comparison with the previous and best runs, and its warnings."""

    DEFAULT_CSS = """
    FinalizeDone { align: center middle; }
    FinalizeDone > Vertical { width: 110; height: auto; max-height: 90%; border: thick $success;
                              background: $panel; padding: 1 2; }
    FinalizeDone .title { text-style: bold; margin-bottom: 1; }
    FinalizeDone VerticalScroll { height: auto; max-height: 30; }
    FinalizeDone #buttons { height: auto; margin-top: 1; align-horizontal: right; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close"), Binding("enter", "close", "Close")]

    def __init__(self, result: FinalizeResult) -> None:
        super().__init__()
        self.result = result

    def compose(self) -> ComposeResult:
        from tui.actions import finalize_report

        with Vertical():
            yield Label("Finalized", classes="title")
            with VerticalScroll():
                yield Static("\n".join(finalize_report(self.result)), id="report")
            with Horizontal(id="buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


def ask_finalize(app: GoldfishApp, run_id: str) -> None:
    """Read the run in a worker, then open the form; after a finalization, show its report."""
    from tui.data_runs import run_doc

    def done(result: FinalizeResult | None) -> None:
        if result is not None:
            app.push_screen(FinalizeDone(result))

    def load() -> None:
        run = run_doc(app.project, run_id)
        app.call_from_thread(app.push_screen, FinalizeForm(run), done)

    app.run_worker(load, name="finalize form", group="forms", thread=True, exit_on_error=False)
