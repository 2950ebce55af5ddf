"""The ``agenthub`` command: argparse sub-commands, each in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import call, channels, chat, devices, gateway, keys, node, pipelines, protocol, serve_agent, ws_test

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agenthub", description="A real-time gateway for AI agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    gateway.add_parser(sub)
    chat.add_parser(sub)
    call.add_parser(sub)
    protocol.add_parser(sub)
    pipelines.add_parser(sub)
    ws_test.add_parser(sub)
    serve_agent.add_parser(sub)
    keys.add_parser(sub)
    devices.add_parser(sub)
    channels.add_parser(sub)
    node.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
