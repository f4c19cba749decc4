"""``goldfish serve``: the handler the CLI finds through the ``goldfish.commands`` entry point."""

from __future__ import annotations

import argparse


def main(args: argparse.Namespace) -> int:
    """Run the MCP server until its client goes away."""
    from mcp_server.server import serve

    serve(args.project, transport=args.transport, port=args.port)
    return 0
