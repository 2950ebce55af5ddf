"""What every method family shares: the node, the store, and the idempotency helpers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ...protocol.errors import ErrorCode, RpcError
from ..node import Node
from ..rpc import Call
from ..runs import Run, RunManager, now_ms
from ..sessions import canonical_session_key
from ..store import Store
from ..transcripts import TranscriptCache
from ._final import agent_final
from ._subscriptions import SessionSubscriptions

if TYPE_CHECKING:
    from ..scheduler import Scheduler
    from .channels import ChannelControl

__all__ = ["ApiContext", "ConfigService"]


class ConfigService(Protocol):
    """The settings owner (outside core): validates, persists and applies config."""

    def public(self) -> dict[str, Any]: ...

    def agent_model(self) -> tuple[str, str | None]:
        """``(provider, model or None)`` as configured: cheap, unlike ``public()`` (read per request)."""
        ...

    def describe(self) -> dict[str, Any]:
        """``{"config", "sources", "warnings"}``: what ``config.get`` answers."""
        ...

    async def replace(self, config: dict[str, Any], *, actor: str = "") -> dict[str, Any]: ...

    async def patch(self, patch: dict[str, Any], *, actor: str = "") -> dict[str, Any]: ...

    def parse_raw(self, raw: str) -> dict[str, Any]: ...

    def schema(self) -> dict[str, Any]:
        """JSON Schema of the settings document (``config.schema``)."""
        ...


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
    subscriptions: SessionSubscriptions = field(init=False)

    def __post_init__(self) -> None:
        self.subscriptions = SessionSubscriptions(self.node)

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
    def session_key(raw: str | None, agent_id: str | None = None, *, default: str = "main") -> str:
        """The canonical key for a key a client sent (``core.sessions``); a bad key is INVALID_REQUEST."""
        try:
            return canonical_session_key(raw if raw and raw.strip() else default, agent_id)
        except ValueError as exc:
            raise RpcError(ErrorCode.INVALID_REQUEST, f"invalid params: sessionKey: {exc}") from None

    def model_ref(self) -> tuple[str, str]:
        """``(provider, model)`` of the configured agent, as the settings name them."""
        provider, model = self.config.agent_model()
        provider = provider or self.node.provider_name()
        return provider, model or provider

    @staticmethod
    def final_reply(call: Call) -> Callable[[Run], None]:
        """The second ``agent`` response: OpenClaw's final shape, ``result.payloads`` included."""
        return lambda run: call.late_reply(agent_final(run))

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
            # ...and across the gateway's processes (a Redis lock; nothing when alone).
            async with self.node.cluster.lock(f"idem:{key}"):
                yield
        finally:
            del accepting[key]
            done.set_result(None)

    async def idempotent_replay(self, key: str) -> dict[str, Any] | None:
        """The first response for ``key`` if it is still within the TTL."""
        stored = await self.store.get_idempotent(key, now_ms() - self.node.limits.idempotency_ttl_s * 1000)
        return stored[1] if stored else None
