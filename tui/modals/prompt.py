"""A one-field prompt (reason, message, tag) validated as the service will validate it, which
performs its action itself and keeps itself open when the service refuses.

The same validator the service runs (``goldfish.names.reason``, ``goldfish.names.tag_name``)
runs on every keystroke, so the person sees most problems before submitting and the submit
button stays disabled until the text would be accepted. What only the service can know (a tag
already taken, a run that ended meanwhile) comes back from the submit and is shown in the same
place, with its fix; the text stays for the person to correct.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState

from goldfish.errors import GoldfishError

if TYPE_CHECKING:
    from tui.app import GoldfishApp

Check = Callable[[str], object]
# (project, text) -> one-line summary; runs in a worker thread.
Submit = Callable[[Any, str], str]


def error_text(error: BaseException | None) -> str:
    """A refusal as the person reads it: the message, then the fix."""
    if isinstance(error, GoldfishError):
        return error.message + (f"\nFix: {error.fix}" if error.fix else "")
    return f"{type(error).__name__}: {error}"


class ServiceValidator(Validator):
    """Runs a goldfish validator; its error message (and fix) is the failure description."""

    def __init__(self, check: Check) -> None:
        super().__init__()
        self.check = check

    def validate(self, value: str) -> ValidationResult:
        try:
            self.check(value)
        except GoldfishError as exc:
            return self.failure(exc.message + (f" {exc.fix}" if exc.fix else ""), value)
        return self.success()


class PromptModal(ModalScreen[str | None]):
    """Ask for one line of text, then run ``submit`` with it.

    Dismisses with the text once ``submit`` succeeded (its summary goes to the app as
    ``ActionDone``), or with None when closed. Without ``submit`` it dismisses with the text.
    """

    DEFAULT_CSS = """
    PromptModal { align: center middle; }
    PromptModal > Vertical { width: 84; height: auto; border: thick $accent; background: $panel; padding: 1 2; }
    PromptModal .title { text-style: bold; margin-bottom: 1; }
    PromptModal .error { color: $error; height: auto; min-height: 1; }
    PromptModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    PromptModal Button { margin-left: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, title: str, prompt: str, check: Check, *, submit: Submit | None = None, action: str = "",
                 confirm: str = "OK", placeholder: str = "", value: str = "", variant: str = "primary") -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.check = check
        self.submit = submit
        self.action_name = action
        self.confirm = confirm
        self.placeholder = placeholder
        self.initial = value
        self.variant = variant
        self.busy = False
        self.refusal: str | None = None  # the service's last refusal, as shown

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title")
            yield Static(self.prompt)
            yield Input(value=self.initial, placeholder=self.placeholder, id="text",
                        validators=[ServiceValidator(self.check)], validate_on=["changed", "submitted"])
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Back", id="back")
                yield Button(self.confirm, id="ok", variant=self.variant, disabled=True)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._show(self.query_one(Input).validate(self.initial))

    def _show(self, result: ValidationResult | None) -> None:
        ok = result is None or result.is_valid
        self.refusal = None
        self.query_one("#error", Static).update("" if ok else "\n".join(result.failure_descriptions))  # type: ignore[union-attr]
        self.query_one("#ok", Button).disabled = not ok or self.busy

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show(event.validation_result)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._show(event.validation_result)
        if event.validation_result is None or event.validation_result.is_valid:
            self._confirm(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._confirm(self.query_one(Input).value.strip())
        else:
            self.dismiss(None)

    def _confirm(self, text: str) -> None:
        if self.submit is None:
            self.dismiss(text)
            return
        if self.busy:
            return
        self.busy = True
        self.query_one("#ok", Button).disabled = True
        self.query_one("#error", Static).update("")
        submit, project = self.submit, self._gapp.project
        self.run_worker(lambda: submit(project, text), name=f"action {self.action_name}", group="actions",
                        thread=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        from tui.messages import ActionDone

        if event.worker.group != "actions" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.busy = False
        if event.state == WorkerState.SUCCESS:
            self._gapp.post_message(ActionDone(self.action_name, str(event.worker.result)))
            self.dismiss(self.query_one(Input).value.strip())
            return
        error = event.worker.error
        self.refusal = error_text(error)
        self.query_one("#error", Static).update(self.refusal)
        self.query_one("#ok", Button).disabled = False
        if not isinstance(error, GoldfishError):
            self._gapp.handle_worker_state(event)  # a bug, not a refusal: log it where every failure goes

    @property
    def _gapp(self) -> GoldfishApp:
        return self.app  # type: ignore[return-value]

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def reason_check(app: GoldfishApp, what: str = "reason") -> Check:
    from goldfish import names

    minimum = app.project.config.audit.min_reason_length
    return lambda text: names.reason(text, minimum, what=what)


def ask_save_version(app: GoldfishApp, slot: str) -> None:
    from tui import actions

    app.push_screen(PromptModal(
        f"Save a version of slot {slot}", "Message for this version (what changed and why):",
        reason_check(app, "message"), confirm="Save version", placeholder="e.g. tuned the learning rate schedule",
        submit=lambda project, message: actions.save_version(project, slot, message), action="save_version",
    ))


PATTERN_ACTIONS: dict[str, tuple[str, str, str, str]] = {
    # action: (question, confirm label, button variant, placeholder)
    "approve": ("Why is this a real failure pattern that later reviews should check?", "Approve", "success",
                "e.g. seen twice, the detection rule matches the failing line"),
    "reject": ("Why is this not a real failure pattern?", "Reject", "error",
               "e.g. one-off network error, not a code problem"),
    "archive": ("Why should reviews stop checking it?", "Archive", "warning",
                "e.g. the code it guarded against was removed in v7"),
}


def ask_pattern_action(app: GoldfishApp, pattern_id: str, action: str) -> None:
    """Approve, reject or archive a failure pattern, with the reason the person gives."""
    from goldfish import names
    from goldfish.svs.patterns import MIN_REASON
    from tui import actions

    question, confirm, variant, placeholder = PATTERN_ACTIONS[action]
    call = {"approve": actions.approve_pattern, "reject": actions.reject_pattern,
            "archive": actions.archive_pattern}[action]
    app.push_screen(PromptModal(
        f"{confirm} failure pattern {pattern_id}", question, lambda text: names.reason(text, MIN_REASON),
        confirm=confirm, variant=variant, placeholder=placeholder, action=f"{action}_pattern",
        submit=lambda project, reason: call(project, pattern_id, reason),
    ))


def ask_acknowledge(app: GoldfishApp, key: str, message: str) -> None:
    """Set an alert aside with the reason the person gives (audited; --fail-on-alerts stops counting it)."""
    from tui import actions

    app.push_screen(PromptModal(
        f"Acknowledge alert {key}", f"{message[:160]}\nWhy does it need no more attention?",
        reason_check(app), confirm="Acknowledge", variant="warning", action="acknowledge",
        placeholder="e.g. known typo, fixed in the next version",
        submit=lambda project, reason: actions.acknowledge_alert(project, key, reason),
    ))
