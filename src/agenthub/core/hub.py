"""Local subscribers and fan-out.

The hub hands every publication to every local subscriber without awaiting.
Subscribers encode through ``Publication.encoded``, a cache keyed by wire
format, so N clients of one dialect cost one JSON encode (centrifuge's
``preparedKey``), and each subscriber only appends bytes to its own buffer.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from .bus import Publication

__all__ = ["Hub", "Subscriber"]

log = logging.getLogger(__name__)


class Subscriber(Protocol):
    def deliver(self, pub: Publication) -> None:
        """Queue the publication's bytes for this peer; never await, never raise."""
        ...


class Hub:
    def __init__(self) -> None:
        self._subscribers: dict[Subscriber, None] = {}
        self.delivered = 0

    def __len__(self) -> int:
        return len(self._subscribers)

    def add(self, sub: Subscriber) -> None:
        self._subscribers[sub] = None

    def remove(self, sub: Subscriber) -> None:
        self._subscribers.pop(sub, None)

    def subscribers(self) -> list[Subscriber]:
        return list(self._subscribers)

    def handle_publication(self, pub: Publication) -> None:
        for sub in list(self._subscribers):
            try:
                sub.deliver(pub)
            except Exception:  # one broken peer must not stop the fan-out
                log.exception("delivery failed")

    def broadcast(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        droppable: bool = False,
        state_version: dict[str, int] | None = None,
    ) -> None:
        """Deliver an event that has no stream history (tick, presence, shutdown)."""
        self.handle_publication(Publication("system", 0, "", event, payload, droppable, state_version))
