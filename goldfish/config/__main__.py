"""`python -m goldfish.config docs` prints docs/configuration.md; `check [PATH]` validates a goldfish.yaml."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from goldfish.config.loader import CONFIG_FILENAME, load_config
from goldfish.config.reference import config_reference_markdown
from goldfish.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goldfish.config")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("docs", help="print the goldfish.yaml reference (docs/configuration.md)")
    check = commands.add_parser("check", help="validate a goldfish.yaml and report every problem")
    check.add_argument("path", nargs="?", default=CONFIG_FILENAME, type=Path)
    args = parser.parse_args(argv)
    if args.command == "docs":
        sys.stdout.write(config_reference_markdown())
        return 0
    try:
        load_config(args.path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"{args.path}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
