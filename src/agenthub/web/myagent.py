"""MyAgent edge (seed 003): placeholder mount, filled in below."""

from __future__ import annotations

from .edge import Edge

__all__ = ["mount"]


def mount(edge: Edge) -> None:
    """Serve MyAgent on ``--myagent-port`` when configured."""
