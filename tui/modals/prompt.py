"""A one-field prompt (reason, message, tag) validated as the service will validate it.

The same validator the service runs (``goldfish.names.reason``, ``goldfish.names.tag_name``)
runs on every keystroke, so the person sees the problem before submitting, and the submit button
stays disabled until the text would be accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Static

from goldfish.errors import GoldfishError

if TYPE_CHECKING:
    from tui.app import GoldfishApp

Check = Callable[[str], object]


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
    """Ask for one line of text; dismisses with the text, or None when dismissed."""

    DEFAULT_CSS = """
    PromptModal { align: center middle; }
    PromptModal > Vertical { width: 84; height: auto; border: thick $accent; background: $panel; padding: 1 2; }
    PromptModal .title { text-style: bold; margin-bottom: 1; }
    PromptModal .error { color: $error; height: auto; min-height: 1; }
    PromptModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    PromptModal Button { margin-left: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, title: str, prompt: str, check: Check, *, confirm: str = "OK", placeholder: str = "",
                 value: str = "", variant: str = "primary") -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.check = check
        self.confirm = confirm
        self.placeholder = placeholder
        self.initial = value
        self.variant = variant

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
        self.query_one("#error", Static).update("" if ok else "\n".join(result.failure_descriptions))  # type: ignore[union-attr]
        self.query_one("#ok", Button).disabled = not ok

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show(event.validation_result)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._show(event.validation_result)
        if event.validation_result is None or event.validation_result.is_valid:
            self.dismiss(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.dismiss(self.query_one(Input).value.strip())
        else:
            self.dismiss(None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def reason_check(app: GoldfishApp, what: str = "reason") -> Check:
    from goldfish import names

    minimum = app.project.config.audit.min_reason_length
    return lambda text: names.reason(text, minimum, what=what)


def ask_save_version(app: GoldfishApp, slot: str) -> None:
    from tui import actions

    def done(message: str | None) -> None:
        if message:
            app.perform("save_version", actions.save_version, slot, message)

    app.push_screen(PromptModal(
        f"Save a version of slot {slot}", "Message for this version (what changed and why):",
        reason_check(app, "message"), confirm="Save version", placeholder="e.g. tuned the learning rate schedule",
    ), done)


def ask_reject_pattern(app: GoldfishApp, pattern_id: str) -> None:
    from goldfish import names
    from tui import actions

    def done(reason: str | None) -> None:
        if reason:
            app.perform("reject_pattern", actions.reject_pattern, pattern_id, reason)

    app.push_screen(PromptModal(
        f"Reject failure pattern {pattern_id}", "Why is this not a real failure pattern?",
        lambda text: names.reason(text, 15), confirm="Reject", variant="error",
        placeholder="e.g. one-off network error, not a code problem",
    ), done)
