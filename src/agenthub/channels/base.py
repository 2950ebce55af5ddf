"""The channel plugin interface: what every messaging platform implements.

A platform module (``telegram``, ``slack``, ``discord``) provides one
``Channel`` per configured account. The registry supervises it (``connect``
with backoff, then ``serve`` until stopped), the conversation router turns its
``Inbound`` messages into runs, and replies go back through the ``Conversation``
the message came with. No channel imports a dialect or another channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aiohttp import web

from .options import AccessOptions, AccountOptions

__all__ = [
    "AccountStatus",
    "Channel",
    "ChannelError",
    "Conversation",
    "HttpRoute",
    "Inbound",
    "InboundHandler",
    "PeerKind",
    "RateLimited",
    "initial_status",
    "session_key",
]

PeerKind = Literal["direct", "group", "channel"]


class ChannelError(Exception):
    """A platform refused or failed a request (the message is safe to show: no secrets)."""


class RateLimited(ChannelError):
    """The platform asked us to slow down (HTTP 429); retry after ``retry_after_s``."""

    def __init__(self, retry_after_s: float, message: str = "rate limited") -> None:
        super().__init__(f"{message}; retry after {retry_after_s:g}s")
        self.retry_after_s = retry_after_s


class Conversation(Protocol):
    """One chat on one platform: where a reply is posted, edited, and typing is shown.

    Each call is one platform request; ``RateLimited`` means "wait and call again".
    """

    @property
    def max_chars(self) -> int:
        """The longest text one message may hold (a longer reply is split)."""
        ...

    async def send(self, text: str) -> str:
        """Post a new message; returns its platform id."""
        ...

    async def edit(self, message_id: str, text: str) -> None:
        """Replace the text of a message this bot posted."""
        ...

    async def typing(self) -> None:
        """Show "typing…" for a few seconds, where the platform has it (else a no-op)."""
        ...


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message a person sent to the bot, in platform-neutral terms."""

    channel: str
    account_id: str
    peer_kind: PeerKind
    peer_id: str  # the chat, DM channel or room the message is in
    sender_id: str
    text: str
    conversation: Conversation
    sender_name: str | None = None
    message_id: str | None = None
    thread_id: str | None = None  # Slack thread ts, Discord thread, Telegram forum topic
    mentioned: bool = False  # the bot was addressed (always true in a direct chat)


InboundHandler = Callable[[Inbound], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """An HTTP endpoint a channel needs on the gateway (Slack events, Telegram webhook)."""

    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class AccountStatus:
    """Runtime state of one account, reported by ``channels.status`` in OpenClaw's shape."""

    channel: str
    account_id: str
    configured: bool
    enabled: bool = True
    name: str | None = None
    running: bool = False
    connected: bool = False
    logged_out: bool = False
    last_error: str | None = None
    reconnect_attempts: int = 0
    last_start_at: int | None = None
    last_stop_at: int | None = None
    last_connected_at: int | None = None
    last_inbound_at: int | None = None
    last_outbound_at: int | None = None
    mode: str | None = None
    dm_policy: str | None = None
    allow_from: list[str] = field(default_factory=list)
    token_source: str | None = None
    base_url: str | None = None
    bot_username: str | None = None
    active_runs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "accountId": self.account_id,
            "enabled": self.enabled,
            "configured": self.configured,
            "running": self.running,
            "connected": self.connected,
            "reconnectAttempts": self.reconnect_attempts,
            "lastConnectedAt": self.last_connected_at,
            "lastError": self.last_error,
            "lastStartAt": self.last_start_at,
            "lastStopAt": self.last_stop_at,
            "lastInboundAt": self.last_inbound_at,
            "lastOutboundAt": self.last_outbound_at,
            "busy": self.active_runs > 0,
            "activeRuns": self.active_runs,
        }
        if self.name:
            out["name"] = self.name
        if self.logged_out:
            out["stateReason"] = "logged-out"
        if self.mode:
            out["mode"] = self.mode
        if self.dm_policy:
            out["dmPolicy"] = self.dm_policy
        if self.allow_from:
            out["allowFrom"] = list(self.allow_from)
        if self.token_source:
            out["tokenSource"] = self.token_source
        if self.base_url:
            out["baseUrl"] = self.base_url
        if self.bot_username:
            out["bot"] = {"username": self.bot_username}
        out.update(self.extra)
        return out


def initial_status(channel: str, options: AccountOptions, mode: str, missing: str | None) -> AccountStatus:
    """An account's status before it first connects; ``missing`` names an absent credential, if any."""
    status = AccountStatus(
        channel=channel,
        account_id=options.account_id,
        configured=options.error is None and missing is None,
        enabled=options.enabled,
        name=options.name,
        mode=mode,
        dm_policy=options.access.dm_policy,
        allow_from=list(options.access.allow_from),
        token_source=options.token_source,
        base_url=options.api_base_url,
    )
    status.last_error = options.error or (f"no {missing}" if missing else None)
    return status


class Channel(Protocol):
    """One account of one platform, supervised by the registry.

    ``connect`` checks credentials and opens the transport (raises on failure,
    and the registry retries with backoff); ``serve`` runs until ``stop`` (or
    raises when the transport breaks, and the registry reconnects).
    """

    id: str
    label: str
    account_id: str

    @property
    def status(self) -> AccountStatus:
        """The live state; the registry and router update its fields."""
        ...

    @property
    def access(self) -> AccessOptions: ...

    def bind(self, handler: InboundHandler) -> None:
        """Where inbound messages go (the conversation router)."""
        ...

    async def connect(self) -> None: ...

    async def serve(self) -> None: ...

    async def stop(self) -> None:
        """Make ``serve`` return and release the transport; safe to call twice."""
        ...

    async def probe(self, timeout_s: float) -> dict[str, Any]:
        """A live credentials check for ``channels.status {probe:true}``: ``{ok, error?, bot?}``."""
        ...

    def conversation(self, to: str, thread_id: str | None = None) -> Conversation:
        """The conversation ``send`` posts to (``to`` is the platform's chat/channel id)."""
        ...

    def routes(self) -> list[HttpRoute]:
        """HTTP endpoints this account needs on the main listener."""
        ...


def session_key(
    agent_id: str,
    channel: str,
    account_id: str,
    peer_kind: PeerKind,
    peer_id: str,
    *,
    dm_scope: str = "per-channel-peer",
    thread_id: str | None = None,
    sender_id: str | None = None,
) -> str:
    """OpenClaw's session key for a channel conversation (its ``buildAgentPeerSessionKey``).

    Direct messages follow ``dm_scope`` (``agent:main:main`` when shared,
    ``agent:main:telegram:direct:<id>`` per channel and peer, ...); groups and
    channels are ``agent:<agent>:<channel>:<kind>:<id>``; a thread appends
    ``:thread:<id>`` (a Telegram forum topic ``:topic:<id>``). Ids are lowercased.
    """
    agent = agent_id.strip().lower() or "main"
    chan = channel.strip().lower() or "unknown"
    if peer_kind == "direct":
        peer = (sender_id or peer_id).strip().lower()
        if dm_scope == "per-account-channel-peer" and peer:
            base = f"agent:{agent}:{chan}:{account_id.strip().lower() or 'default'}:direct:{peer}"
        elif dm_scope == "per-channel-peer" and peer:
            base = f"agent:{agent}:{chan}:direct:{peer}"
        elif dm_scope == "per-peer" and peer:
            base = f"agent:{agent}:direct:{peer}"
        else:
            base = f"agent:{agent}:main"
    else:
        base = f"agent:{agent}:{chan}:{peer_kind}:{peer_id.strip().lower() or 'unknown'}"
    if thread_id:
        marker = "topic" if chan == "telegram" and peer_kind != "direct" else "thread"
        base += f":{marker}:{thread_id.strip().lower()}"
    return base
