"""Rich cells for tables: colour carries state, severity and outcome at a glance."""

from __future__ import annotations

from rich.text import Text

from tui.format import OUTCOME_STYLE, SEVERITY_STYLE, STATE_STYLE

SEVERITY_MARK = {"error": "✖", "warning": "▲", "info": "·"}


def state(value: str | None, *, cancel_requested: bool = False) -> Text:
    if not value:
        return Text("")
    label = value + (" (cancel requested)" if cancel_requested and value not in ("canceled",) else "")
    return Text(label, style=STATE_STYLE.get(value, ""))


def severity(value: str) -> Text:
    return Text(f"{SEVERITY_MARK.get(value, '?')} {value}", style=SEVERITY_STYLE.get(value, ""))


def outcome(value: str | None) -> Text:
    return Text(value or "", style=OUTCOME_STYLE.get(value or "", ""))


def dirty(value: bool | None, count: int) -> Text:
    if value is None:
        return Text("?", style="dim")
    if value:
        return Text(f"● {count} changed", style="yellow")
    return Text("clean", style="green")


def heartbeat(age: float | None, stalled: bool, text: str) -> Text:
    if age is None:
        return Text("—", style="dim")
    return Text(text, style="bold red" if stalled else ("yellow" if age > 30 else "green"))


def dim(value: str) -> Text:
    return Text(value, style="dim")


INFRA_STYLE = {"completed": "green", "preempted": "yellow", "crashed": "red", "canceled": "yellow",
               "blocked": "red", "skipped": "dim"}


def outcome_infra(value: str | None) -> Text:
    return Text(value or "", style=INFRA_STYLE.get(value or "", ""))
