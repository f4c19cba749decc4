"""How ``goldfish demo`` talks: numbered steps, what Goldfish did, and compact run summaries."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO


def _styled(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


class Narrator:
    """Prints the tour; bold headings on a terminal, plain text elsewhere (logs, tests)."""

    def __init__(self, total_steps: int, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.total = total_steps
        self.step_no = 0
        self.started = time.monotonic()
        self.style = _styled(self.stream)

    def _out(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def _bold(self, text: str) -> str:
        return f"\033[1m{text}\033[0m" if self.style else text

    def _dim(self, text: str) -> str:
        return f"\033[2m{text}\033[0m" if self.style else text

    def title(self, text: str) -> None:
        self._out(self._bold(text))
        self._out("=" * len(text))

    def step(self, title: str, why: str) -> None:
        self.step_no += 1
        self._out()
        self._out(self._bold(f"[{self.step_no}/{self.total}] {title}"))
        for line in textwrap.wrap(why, 96):
            self._out(self._dim(f"  {line}"))

    def call(self, text: str) -> None:
        """The MCP tool call an agent would make for this step (the demo calls the same service)."""
        self._out(f"  > {text}")

    def did(self, text: str) -> None:
        self._out(f"    - {text}")

    def block(self, text: str, indent: str = "    ") -> None:
        for line in text.rstrip("\n").splitlines():
            self._out(f"{indent}{line}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def short(text: str | None, width: int = 100) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return (datetime.fromisoformat(end.replace("Z", "+00:00"))
                - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return None


def human_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def metric_line(name: str, summary: Mapping[str, Any]) -> str:
    last, count = summary.get("last"), int(summary.get("count") or 0)
    if count <= 1:
        return f"{name} = {last:.4f}"
    trend = summary.get("trend") or "flat"
    return (f"{name}: last {last:.4f} (min {summary.get('min'):.4f}, max {summary.get('max'):.4f}, "
            f"{count} points, trend {trend})")


class StageProgress:
    """Prints each stage run as it starts running and when it ends (the ``progress`` of run(wait=True))."""

    def __init__(self, narrator: Narrator):
        self.narrator = narrator
        self.started = time.monotonic()
        self.seen: dict[str, str] = {}

    def __call__(self, result: Any) -> None:
        for stage_run in result.stage_runs:
            state = stage_run.state
            before = self.seen.get(stage_run.stage_run_id)
            if state == before:
                continue
            self.seen[stage_run.stage_run_id] = state
            at = f"+{time.monotonic() - self.started:.1f}s".rjust(6)
            if state == "running":
                self.narrator.did(f"{at}  {stage_run.stage:<10} running   ({stage_run.stage_run_id})")
            elif state in ("completed", "failed", "terminated", "canceled", "skipped"):
                cause = f" ({stage_run.cause})" if stage_run.cause else ""
                self.narrator.did(f"{at}  {stage_run.stage:<10} {state}{cause}")
