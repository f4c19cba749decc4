"""The ``goldfish`` command line. Subcommands import what they need lazily."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from goldfish import __version__
from goldfish.errors import GoldfishError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="goldfish", description="ML experiments with perfect recall.")
    p.add_argument("--version", action="version", version=f"goldfish {__version__}")
    p.add_argument("--project", metavar="PATH", help="project directory (default: cwd or a parent with goldfish.yaml)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("init", help="create a Goldfish project (idempotent)")
    s.add_argument("path", nargs="?", default=".", help="project directory (default: .)")
    s.add_argument("--name", help="project name (default: the directory name)")

    sub.add_parser("status", help="human-readable project summary")
    s = sub.add_parser("doctor", help="check git, python, the store and optional pieces (docker, cargo, cloud, API key)")
    s.add_argument("--repair", action="store_true",
                   help="repair a damaged store: restore damaged files from the latest backup, replay the event logs")
    s.add_argument("--project", metavar="PATH", default=argparse.SUPPRESS, help="project directory")

    s = sub.add_parser("restore", help="rebuild a project (goldfish.yaml, dev repo, store) from a backup")
    s.add_argument("backup", nargs="?", default="latest", help="backup id (bk-…) or 'latest' (default)")
    s.add_argument("--from", dest="from_target", metavar="TARGET",
                   help="where the backups are (a directory or gs://bucket/prefix/); default: the project's backups.target")
    s.add_argument("--to", metavar="PATH", type=Path, help="project directory to restore into (default: the project found)")
    s.add_argument("--force", action="store_true", help="replace a live project (its files are moved aside, not deleted)")
    s.add_argument("--dry-run", action="store_true", help="verify the backup and list what would be written; write nothing")
    s.add_argument("--project", metavar="PATH", default=argparse.SUPPRESS, help="the project whose backups to use")

    s = sub.add_parser("demo", help="create a demo project and run a real experiment end to end")
    s.add_argument("--dir", default="demo-project", help="where to create the demo project (default: ./demo-project)")

    s = sub.add_parser("runner", help="(internal) drive one pipeline run; started by run() and the reconciler")
    s.add_argument("pipeline_run_id", help="prun-… id")
    s.add_argument("--runner-id", required=True, help="lease id reserved for this runner")

    s = sub.add_parser("images", help="build the Goldfish base images (scripts/setup-docker.sh calls this)")
    s.add_argument("action", choices=["build-base", "run-build"],
                   help="build-base: build goldfish-base-<type> on the daemon; run-build: (internal) a recorded build")
    s.add_argument("--build-id", help="with run-build: the build-… id to run")
    s.add_argument("--type", choices=["cpu", "gpu"], default="cpu", help="image type (default: cpu)")
    s.add_argument("--if-missing", action="store_true", help="do nothing when the recipe's image exists")

    s = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    s.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    s.add_argument("--port", type=int, default=8765, help="port for streamable-http (bound to 127.0.0.1)")
    # Also accepted after the subcommand (`goldfish serve --project PATH`), as MCP client configs write it.
    s.add_argument("--project", metavar="PATH", default=argparse.SUPPRESS, help="project directory")

    s = sub.add_parser("tui", help="open the live dashboard (runs, findings, finalization queue)")
    s.add_argument("--project", metavar="PATH", default=argparse.SUPPRESS, help="project directory")
    s.add_argument("--headless", action="store_true", help="render the dashboard once without a terminal and exit")
    s.add_argument("--screenshot", metavar="FILE.svg", type=Path, help="with --headless: write an SVG screenshot")
    s.add_argument("--text", action="store_true", help="with --headless: print a plain-text rendering")
    s.add_argument("--fail-on-alerts", action="store_true", help="with --headless: exit 1 when there are alerts")
    s.add_argument("--size", default="180x50", metavar="COLSxROWS", help="with --headless: terminal size")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(_dispatch(args) or 0)
    except GoldfishError as exc:
        print(f"goldfish: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "init":
        from goldfish.init import init_project

        result = init_project(Path(args.path), args.name)
        print(result.message)
        if result.created:
            print(f"  project:  {result.project_root}")
            print(f"  config:   {result.config_file}")
            print(f"  dev repo: {result.dev_repo}")
            print("Next: connect Claude Code with `claude mcp add goldfish -- goldfish serve`")
        return 0
    if cmd == "status":
        from goldfish.project import Project
        from goldfish.runs.reconciler import reconcile_quietly
        from goldfish.status import render_status_text

        project = Project.open(args.project)
        reconcile_quietly(project)
        print(render_status_text(project))
        return 0
    if cmd == "runner":
        from goldfish.runs.runner import main as runner_main

        return runner_main(args.pipeline_run_id, args.runner_id, args.project)
    if cmd == "doctor":
        from goldfish.doctor import run_doctor

        if args.repair:
            from goldfish.backups.repair import run_repair

            return run_repair(args.project)
        return run_doctor(args.project)
    if cmd == "restore":
        from goldfish.backups.restore import restore

        plan = restore(args.backup, from_target=args.from_target, to=args.to, project=args.project,
                       force=args.force, dry_run=args.dry_run)
        print(plan.render())
        return 0
    if cmd == "demo":
        from goldfish.demo.tour import run_demo

        return run_demo(Path(args.dir))
    if cmd == "images":
        if args.action == "run-build":
            from goldfish.images.jobs import run_build
            from goldfish.project import Project

            return run_build(Project.open(args.project, source="runner"), str(args.build_id))
        from goldfish.images.base import build_base_cli

        return build_base_cli(args.type, if_missing=args.if_missing)
    if cmd in ("serve", "tui"):
        return _interface(cmd)(args)
    raise AssertionError(f"unhandled command {cmd}")


def _interface(name: str) -> Callable[[argparse.Namespace], int]:
    """The handler an interface package registers for ``goldfish <name>`` (entry point group
    ``goldfish.commands``): the domain never imports the MCP server or the TUI itself."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        found = distribution("goldfish-ml").entry_points.select(group="goldfish.commands", name=name)
    except PackageNotFoundError:
        found = None
    for ep in found or ():
        handler: Callable[[argparse.Namespace], int] = ep.load()
        return handler
    raise GoldfishError(
        f"`goldfish {name}` is not installed in this environment.",
        fix="Install Goldfish with its interfaces: `pip install -e .` in the Goldfish checkout (or `make demo`).",
    )


if __name__ == "__main__":
    raise SystemExit(main())
