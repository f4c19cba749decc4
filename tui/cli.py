"""``goldfish tui``: the handler the CLI finds through the ``goldfish.commands`` entry point."""

from __future__ import annotations

import argparse

def main(args: argparse.Namespace) -> int:
    """Open the dashboard, or render it once with ``--headless``."""
    from goldfish.errors import InvalidInput
    from goldfish.project import Project

    if not args.headless and (args.screenshot or args.text or args.fail_on_alerts):
        raise InvalidInput("--screenshot, --text and --fail-on-alerts need --headless.",
                           fix="Add --headless, e.g. `goldfish tui --headless --text`.")
    cols, _, rows = str(args.size).partition("x")
    if not (cols.isdigit() and rows.isdigit() and 40 <= int(cols) <= 1000 and 10 <= int(rows) <= 1000):
        raise InvalidInput(f"--size {args.size!r} is not COLSxROWS.", fix="Use e.g. --size 180x50.")
    project = Project.open(args.project, source="tui")
    from goldfish.logsearch.jsonlog import configure_project

    configure_project(project, "tui", stderr_level=None)  # the terminal belongs to the dashboard
    if args.headless:
        from goldfish.runs.reconciler import reconcile

        reconcile(project)  # a run whose runner died gets a new one, as when any process opens the project
        from tui.headless import run_headless

        return run_headless(project, screenshot=args.screenshot, text=args.text,
                            fail_on_alerts=args.fail_on_alerts, size=(int(cols), int(rows)))
    from tui.app import GoldfishApp

    return GoldfishApp(project, reconcile=True).run() or 0  # reconciles after the first frame
