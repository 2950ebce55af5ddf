"""Who may message the bot through a channel: the storage interface for DM pairing.

``channels.pairing.PairingService`` holds the rules (codes, expiry, limits);
this module holds what it stores and the interface a store implements, with
the in-memory default beside it (``storage.channels.SqlChannelStore`` is the
SQL one), as the bus keeps ``EventBus`` and ``MemoryBus`` together.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

__all__ = ["MemoryPairingStore", "PairingRequest", "PairingStore"]


@dataclass(frozen=True, slots=True)
class PairingRequest:
    request_id: str
    channel: str
    account_id: str
    sender_id: str
    code_hash: str
    created_ms: int
    last_seen_ms: int
    meta: dict[str, str] = field(default_factory=dict)


class PairingStore(Protocol):
    """Where requests and approvals live (``storage.channels`` implements it on SQL)."""

    async def allowed_senders(self, channel: str, account_id: str) -> set[str]: ...

    async def add_allowed(self, channel: str, account_id: str, sender_id: str, now_ms: int) -> None: ...

    async def pending(self, channel: str | None, account_id: str | None) -> list[PairingRequest]: ...

    async def put_pending(self, request: PairingRequest) -> None:
        """Insert, or replace the request of the same (channel, account, sender)."""
        ...

    async def touch_pending(self, request_id: str, now_ms: int) -> None: ...

    async def take_pending(self, request_id: str) -> PairingRequest | None:
        """Delete a request and return it (None if it was not there)."""
        ...

    async def purge_pending(self, before_ms: int) -> int: ...


class MemoryPairingStore:
    """A ``PairingStore`` in memory, for gateways embedded without a SQL store."""

    def __init__(self) -> None:
        self._allowed: set[tuple[str, str, str]] = set()
        self._pending: dict[str, PairingRequest] = {}

    async def allowed_senders(self, channel: str, account_id: str) -> set[str]:
        return {s for c, a, s in self._allowed if c == channel and a == account_id}

    async def add_allowed(self, channel: str, account_id: str, sender_id: str, now_ms: int) -> None:
        self._allowed.add((channel, account_id, sender_id))

    async def pending(self, channel: str | None, account_id: str | None) -> list[PairingRequest]:
        return sorted(
            (
                r
                for r in self._pending.values()
                if (channel is None or r.channel == channel) and (account_id is None or r.account_id == account_id)
            ),
            key=lambda r: r.created_ms,
        )

    async def put_pending(self, request: PairingRequest) -> None:
        for rid, other in list(self._pending.items()):
            if (other.channel, other.account_id, other.sender_id) == (
                request.channel,
                request.account_id,
                request.sender_id,
            ):
                del self._pending[rid]
        self._pending[request.request_id] = request

    async def touch_pending(self, request_id: str, now_ms: int) -> None:
        found = self._pending.get(request_id)
        if found is not None:
            self._pending[request_id] = replace(found, last_seen_ms=now_ms)

    async def take_pending(self, request_id: str) -> PairingRequest | None:
        return self._pending.pop(request_id, None)

    async def purge_pending(self, before_ms: int) -> int:
        old = [rid for rid, r in self._pending.items() if r.created_ms < before_ms]
        for rid in old:
            del self._pending[rid]
        return len(old)


if TYPE_CHECKING:
    _check: PairingStore = MemoryPairingStore()
