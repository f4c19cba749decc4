"""``goldfish tui --headless``: render the dashboard once without a terminal, then exit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tui.viewmodels import DashboardView

if TYPE_CHECKING:
    from goldfish.project import Project
    from tui.app import Clock


@dataclass
class HeadlessResult:
    view: DashboardView
    svg: str
    errors: list[str] = field(default_factory=list)


async def render_once(project: Project, *, size: tuple[int, int] = (180, 50), now: Clock | None = None) -> HeadlessResult:
    from tui.app import GoldfishApp
    from tui.screens.dashboard import DashboardScreen

    app = GoldfishApp(project, now=now, live=False)
    async with app.run_test(size=size) as pilot:
        await app.settle()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        if screen.view is None:
            raise RuntimeError("the dashboard did not load: " + "; ".join(app.errors))
        svg = app.export_screenshot(title=f"goldfish · {project.config.project_name}")
        return HeadlessResult(view=screen.view, svg=svg, errors=list(app.errors))


def run_headless(project: Project, *, screenshot: Path | None, text: bool, fail_on_alerts: bool,
                 size: tuple[int, int] = (180, 50), now: Clock | None = None) -> int:
    """Exit code: 0 ok, 1 unacknowledged alerts within their window (with fail_on_alerts), 3 a load failed."""
    result = asyncio.run(render_once(project, size=size, now=now))
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_text(result.svg, encoding="utf-8")
    if text:
        from tui.text_render import render_text

        print(render_text(result.view), end="")
    for error in result.errors:
        print(f"goldfish tui: {error}", flush=True)
    if result.errors:
        return 3
    if fail_on_alerts and result.view.alert_count:
        return 1
    return 0
