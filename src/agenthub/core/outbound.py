"""The seam between the core and messaging channels: how a reply leaves the gateway.

The core (``send``, cron deliveries, heartbeats) knows channels only through
this protocol; ``channels`` implements it and the composition root hands the
implementation to the node (``Node.outbound``). With no channels configured the
node has none, and a delivery to a channel fails with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Delivery", "Outbound", "OutboundError"]


class OutboundError(Exception):
    """A delivery could not be made: unknown or stopped channel, refused by the platform."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a platform put a delivered message (for ``send``'s answer and later edits)."""

    channel: str
    to: str
    message_id: str
    account: str | None = None


class Outbound(Protocol):
    def has_channel(self, channel: str) -> bool:
        """Whether ``channel`` is configured (running or not)."""
        ...

    async def deliver(self, channel: str, to: str, text: str, *, account: str | None = None) -> Delivery:
        """Post ``text`` to conversation ``to`` on ``channel``; raises ``OutboundError``."""
        ...
