"""The ``goldfish`` command line. Subcommands import what they need lazily."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from goldfish import __version__
from goldfish.errors import GoldfishError


PROJECT_HELP = "project directory (default: the current directory or a parent holding goldfish.yaml)"


def _project_option() -> argparse.ArgumentParser:
    """``--project`` for every subcommand, so it works before or after the subcommand's name. SUPPRESS
    keeps a value given before the subcommand when the subcommand's own copy is absent."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--project", metavar="PATH", default=argparse.SUPPRESS, help=PROJECT_HELP)
    return parent


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="goldfish", description="ML experiments with perfect recall.")
    p.add_argument("--version", action="version", version=f"goldfish {__version__}")
    p.add_argument("--project", metavar="PATH", help=PROJECT_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    common = [_project_option()]

    def command(name: str, summary: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description or summary[:1].upper() + summary[1:] + ".",
                              parents=common)

    s = command("init", "create a Goldfish project (idempotent)",
                "Create a Goldfish project in PATH: goldfish.yaml, workspaces/ and the hidden dev repo. "
                "Running it again on a project changes nothing.")
    s.add_argument("path", nargs="?", default=".", help="project directory (default: .)")
    s.add_argument("--name", help="project name (default: the directory name)")

    s = command("skill", "install the agent guide as a Claude Code skill in the project",
                "Write .claude/skills/goldfish/SKILL.md (the agent guide) into the project; with --mcp-json also "
                "add this goldfish to the project's .mcp.json so `claude` there finds the server.")
    s.add_argument("action", choices=["install"], help="install: write .claude/skills/goldfish/SKILL.md")
    s.add_argument("--mcp-json", action="store_true", help="also add this goldfish to the project's .mcp.json")

    s = command("status", "slots, active runs, runs awaiting finalization and the best result per workspace",
                "Show each slot, the active runs, the runs awaiting finalize_run and the best result per "
                "workspace. Dead runners are reconciled first.")
    s.add_argument("--json", action="store_true", help="print the status as one JSON object (for scripts)")
    s = command("doctor", "check git, python, the store and optional pieces (docker, cargo, cloud, API key)",
                "Check what Goldfish needs (git, python, an undamaged store) and what optional features need "
                "(docker, cargo, cloud credentials, API key); each problem comes with its fix. Exit 1 when a "
                "required piece is missing or the store is damaged.")
    s.add_argument("--repair", action="store_true",
                   help="repair a damaged store: restore damaged files from the latest backup, replay the event logs")

    s = command("restore", "rebuild a project (goldfish.yaml, dev repo, store) from a backup",
                "Rebuild a project from a backup: verify every part's checksum, then write goldfish.yaml, the dev "
                "repo and the store. --project (or the current directory) finds the backups of a project that "
                "still exists; --from names them when it doesn't.")
    s.add_argument("backup", nargs="?", default="latest", help="backup id (bk-…) or 'latest' (default)")
    s.add_argument("--from", dest="from_target", metavar="TARGET",
                   help="where the backups are (a directory or gs://bucket/prefix/); default: the project's backups.target")
    s.add_argument("--to", metavar="PATH", type=Path, help="project directory to restore into (default: the project found)")
    s.add_argument("--force", action="store_true", help="replace a live project (its files are moved aside, not deleted)")
    s.add_argument("--dry-run", action="store_true", help="verify the backup and list what would be written; write nothing")

    s = command("demo", "create a demo project and run a real experiment end to end")
    s.add_argument("--dir", default="demo-project", help="where to create the demo project (default: ./demo-project)")

    s = command("runner", "(internal) drive one pipeline run; started by run() and the reconciler")
    s.add_argument("pipeline_run_id", help="prun-… id")
    s.add_argument("--runner-id", required=True, help="lease id reserved for this runner")

    s = command("images", "build the Goldfish base images (scripts/setup-docker.sh calls this)")
    s.add_argument("action", choices=["build-base", "run-build"],
                   help="build-base: build goldfish-base-<type> on the daemon; run-build: (internal) a recorded build")
    s.add_argument("--build-id", help="with run-build: the build-… id to run")
    s.add_argument("--type", choices=["cpu", "gpu"], default="cpu", help="image type (default: cpu)")
    s.add_argument("--if-missing", action="store_true", help="do nothing when the recipe's image exists")

    s = command("serve", "run the MCP server (stdio by default)",
                "Run the Goldfish MCP server for an agent: over stdio (what MCP clients start) or streamable "
                "HTTP on 127.0.0.1.")
    s.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio",
                   help="stdio (default): the client starts this process; streamable-http: serve on --port")
    s.add_argument("--port", type=int, default=8765, help="port for streamable-http (bound to 127.0.0.1)")

    s = command("tui", "open the live dashboard (runs, findings, finalization queue)")
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
    except BrokenPipeError:
        # The reader went away (`goldfish status | head -1`): what it wanted was printed. Point stdout
        # at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except GoldfishError as exc:
        print(f"goldfish: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from goldfish.fsutil import as_disk_error

        disk = as_disk_error(exc, Path.cwd())
        if disk is None:
            raise
        print(f"goldfish: {disk}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "init":
        from goldfish.init import init_project

        path = args.project if args.project and args.path == "." else args.path
        result = init_project(Path(path), args.name)
        print(result.message)
        if result.created:
            print(f"  project:  {result.project_root}")
            print(f"  config:   {result.config_file}")
            print(f"  dev repo: {result.dev_repo}")
        return _agent_files(Path(result.project_root), mcp_json=True)
    if cmd == "skill":
        from goldfish.project import find_project_root

        return _agent_files(find_project_root(args.project), mcp_json=args.mcp_json)
    if cmd == "status":
        from goldfish.project import Project
        from goldfish.runs.reconciler import reconcile_quietly
        from goldfish.status import project_status, render_text

        project = Project.open(args.project)
        from goldfish.logsearch.jsonlog import configure_project

        configure_project(project, "cli")
        reconcile_quietly(project)
        status = project_status(project)
        print(status.model_dump_json(indent=2) if args.json else render_text(status), flush=True)
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


def _agent_files(root: Path, *, mcp_json: bool) -> int:
    from goldfish.guide import install_agent_files

    files = install_agent_files(root, mcp_json=mcp_json)
    if files.skill_file:
        print(f"  skill:    {files.skill_file}" + ("" if files.skill_written else " (already current)"))
    if files.mcp_json:
        print(f"  mcp:      {files.mcp_json}" + ("" if files.mcp_json_written else " (already names this server)"))
        print(f"Next: run `claude` in {root}; it starts `{' '.join(files.command)} serve` from .mcp.json.")
        print(f"Other MCP clients: have them start `{' '.join(files.command)} serve --project {root}` (stdio).")
    for note in files.notes:
        print(f"goldfish: {note}", file=sys.stderr)
    return 0


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
