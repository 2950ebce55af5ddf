"""``agenthub protocol schema``: print the JSON Schema generated from the frame models."""

from __future__ import annotations

import click

from ..protocol import _json
from ..protocol.schema import protocol_schema

__all__ = ["protocol"]


@click.group()
def protocol() -> None:
    """Protocol tools."""


@protocol.command()
def schema() -> int:
    """Print the protocol's JSON Schema."""
    print(_json.dumps_pretty(protocol_schema()))
    return 0
