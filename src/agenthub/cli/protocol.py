"""``agenthub protocol schema``: print the JSON Schema generated from the frame models."""

from __future__ import annotations

import argparse
from typing import Any

from ..protocol import _json
from ..protocol.schema import protocol_schema

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("protocol", help="protocol tools")
    psub = p.add_subparsers(dest="protocol_command", required=True)
    schema = psub.add_parser("schema", help="print the protocol's JSON Schema")
    schema.set_defaults(func=run_schema)


def run_schema(args: argparse.Namespace) -> int:
    print(_json.dumps_pretty(protocol_schema()))
    return 0
