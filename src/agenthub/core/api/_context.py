"""What every method family shares: the node, the store, and the idempotency helpers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..node import Node
from ..rpc import Call
from ..runs import Run, RunManager, now_ms
from ..store import Store
from ..transcripts import TranscriptCache

if TYPE_CHECKING:
    from ..scheduler import Scheduler
    from .channels import ChannelControl

__all__ = ["ApiContext", "ConfigService"]


class ConfigService(Protocol):
    """The settings owner (outside core): validates, persists and applies config."""

    def public(self) -> dict[str, Any]: ...

    def describe(self) -> dict[str, Any]:
        """``{"config", "sources", "warnings"}``: what ``config.get`` answers."""
        ...

    async def replace(self, config: dict[str, Any], *, actor: str = "") -> dict[str, Any]: ...

    async def patch(self, patch: dict[str, Any], *, actor: str = "") -> dict[str, Any]: ...

    def parse_raw(self, raw: str) -> dict[str, Any]: ...


@dataclass(slots=True)
class ApiContext:
    """Built once per gateway and handed to each family's ``register``."""

    node: Node
    config: ConfigService
    # Cron jobs and heartbeats (core.scheduler); None when the composition root runs none.
    scheduler: Scheduler | None = None
    # Set by the composition root when channels are wired (``channels.*`` methods answer UNAVAILABLE without).
    channels: ChannelControl | None = None
    # The chat's slash commands, ``(session key, text) -> reply or None``; set by ``chat.register``.
    slash_command: Callable[[str, str], Awaitable[str | None]] | None = None
    _accepting: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    @property
    def runs(self) -> RunManager:
        return self.node.runs

    @property
    def store(self) -> Store:
        return self.node.store

    @property
    def transcripts(self) -> TranscriptCache | None:
        """The composition root puts a TranscriptCache in front of the store; chat.history reuses its views."""
        store = self.node.store
        return store if isinstance(store, TranscriptCache) else None

    @staticmethod
    def final_reply(call: Call) -> Callable[[Run], None]:
        return lambda run: call.late_reply(run.result())

    @staticmethod
    def reply_after_first(call: Call, payload: Any) -> None:
        """Send a second response once the handler's own (first) response has been written."""
        call.after_response(lambda: call.late_reply(payload))

    @contextlib.asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        """One call per idempotency key at a time, so a concurrent retry sees what the first did."""
        accepting = self._accepting
        while (busy := accepting.get(key)) is not None:
            await asyncio.shield(busy)
        accepting[key] = done = asyncio.get_running_loop().create_future()
        try:
            yield
        finally:
            del accepting[key]
            done.set_result(None)

    async def idempotent_replay(self, key: str) -> dict[str, Any] | None:
        """The first response for ``key`` if it is still within the TTL."""
        stored = await self.store.get_idempotent(key, now_ms() - self.node.limits.idempotency_ttl_s * 1000)
        return stored[1] if stored else None
