"""Discord, on discord.py: the gateway WebSocket with the message content intent.

``connect`` logs in over REST (``GET /users/@me``: a bad token fails here);
``serve`` runs discord.py's gateway connection (HELLO, IDENTIFY, READY, then
dispatches), which resumes and reconnects by itself. Direct messages always
reach the bot; in guild channels it answers when mentioned, and a thread keeps
its own session. Replies stream by editing one message.

discord.py keeps its REST base (``discord.http.Route.BASE``) and gateway URL
(``DiscordWebSocket.DEFAULT_GATEWAY``) as class attributes, so ``api_base_url``
and ``gateway_url`` apply to the whole process: every Discord account of one
gateway shares them (tests point them at local servers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from .base import ChannelError, HttpRoute, Inbound, InboundHandler, PeerKind, RateLimited, initial_status
from .options import DiscordOptions

__all__ = ["DiscordChannel", "DiscordConversation"]

log = logging.getLogger(__name__)


def _platform_error(exc: Exception) -> ChannelError:
    if isinstance(exc, discord.RateLimited):
        return RateLimited(exc.retry_after, "Discord rate limit")
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429:
            return RateLimited(1.0, "Discord rate limit")
        return ChannelError(f"Discord: HTTP {exc.status} {exc.text or ''}".strip())
    return ChannelError(f"Discord: {exc}")


class DiscordConversation:
    """A Discord channel, DM or thread: ``POST`` then ``PATCH /channels/{id}/messages``.

    ``to`` is a channel id (``channel:<id>`` also accepted) or ``user:<id>``,
    whose DM channel is opened on first use.
    """

    def __init__(self, client: discord.Client, to: str, max_chars: int) -> None:
        self.client = client
        self.to = to
        self._max_chars = max_chars
        self._target: discord.abc.Messageable | None = None

    @property
    def max_chars(self) -> int:
        return self._max_chars

    async def _channel(self) -> Any:
        if self._target is None:
            kind, _, ident = self.to.rpartition(":")
            if not ident.isdigit():
                raise ChannelError(f"Discord: not a channel or user id: {self.to}")
            if kind == "user":
                user = await self.client.fetch_user(int(ident))
                self._target = await user.create_dm()
            else:
                self._target = self.client.get_partial_messageable(int(ident))
        return self._target

    async def send(self, text: str) -> str:
        try:
            message = await (await self._channel()).send(text)
        except (discord.DiscordException, OSError) as exc:
            raise _platform_error(exc) from None
        return str(message.id)

    async def edit(self, message_id: str, text: str) -> None:
        try:
            await (await self._channel()).get_partial_message(int(message_id)).edit(content=text)
        except (discord.DiscordException, OSError) as exc:
            raise _platform_error(exc) from None

    async def typing(self) -> None:
        try:
            await (await self._channel()).typing()
        except (discord.DiscordException, OSError) as exc:
            raise _platform_error(exc) from None


class _Client(discord.Client):
    """discord.py's client, reporting to its account."""

    def __init__(self, owner: DiscordChannel) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable it for the bot in the developer portal
        super().__init__(intents=intents, max_ratelimit_timeout=owner.access.max_retry_wait_s)
        self.owner = owner

    async def on_ready(self) -> None:
        self.owner.ready(self)

    async def on_resumed(self) -> None:
        self.owner.status.connected = True

    async def on_disconnect(self) -> None:
        self.owner.status.connected = False

    async def on_message(self, message: discord.Message) -> None:
        await self.owner.dispatch(self, message)


class DiscordChannel:
    """One Discord bot account."""

    id = "discord"
    label = "Discord"

    def __init__(self, options: DiscordOptions) -> None:
        self.options = options
        self.account_id = options.account_id
        self.access = options.access
        missing = None if options.token else "bot token (bot_token, bot_token_file or DISCORD_BOT_TOKEN)"
        self.status = initial_status(self.id, options, "gateway", missing)
        self.client: _Client | None = None
        self._handler: InboundHandler | None = None

    def bind(self, handler: InboundHandler) -> None:
        self._handler = handler

    def _point(self) -> None:
        """Aim discord.py at the configured REST base and gateway (process-wide, see the module doc)."""
        Route.BASE = self.options.api_base_url.rstrip("/")
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.options.gateway_url)

    async def connect(self) -> None:
        await self._close()
        self._point()
        client = _Client(self)
        try:
            await client.login(self.options.token or "")
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await client.close()
            if isinstance(exc, discord.LoginFailure):
                raise ChannelError(f"Discord: {exc}") from None
            if isinstance(exc, discord.DiscordException | OSError):
                raise _platform_error(exc) from None
            raise
        self.client = client
        if client.user is not None:
            self.status.bot_username = client.user.name

    async def serve(self) -> None:
        client = self.client
        if client is None:
            raise ChannelError("discord is not logged in")
        await client.connect(reconnect=True)  # returns when closed; raises when the gateway refuses us

    async def stop(self) -> None:
        await self._close()

    async def _close(self) -> None:
        client, self.client = self.client, None
        self.status.connected = False
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    def ready(self, client: discord.Client) -> None:
        self.status.connected = True
        if client.user is not None:
            self.status.bot_username = client.user.name

    async def dispatch(self, client: discord.Client, message: discord.Message) -> None:
        me = client.user
        if self._handler is None or me is None or message.author.bot or message.author.id == me.id:
            return
        channel = message.channel
        kind: PeerKind
        thread: str | None = None
        if isinstance(channel, discord.DMChannel):
            kind, peer = "direct", str(channel.id)
        elif isinstance(channel, discord.Thread):
            kind, peer, thread = "channel", str(channel.parent_id or channel.id), str(channel.id)
        else:
            kind, peer = "channel", str(channel.id)
        mentioned = kind == "direct" or me in message.mentions
        text = message.content.replace(f"<@{me.id}>", "").replace(f"<@!{me.id}>", "")
        await self._handler(
            Inbound(
                channel=self.id,
                account_id=self.account_id,
                peer_kind=kind,
                peer_id=peer,
                sender_id=str(message.author.id),
                sender_name=message.author.display_name,
                text=" ".join(text.split()),
                conversation=DiscordConversation(client, str(channel.id), self.options.max_message_chars),
                message_id=str(message.id),
                thread_id=thread,
                mentioned=mentioned,
            )
        )

    async def probe(self, timeout_s: float) -> dict[str, Any]:
        client = self.client
        if client is None:
            return {"ok": False, "error": self.status.last_error or "not logged in"}
        try:
            user = await asyncio.wait_for(client.fetch_user(client.user.id if client.user else 0), timeout_s)
        except (discord.DiscordException, OSError) as exc:
            return {"ok": False, "error": str(_platform_error(exc))}
        return {"ok": True, "bot": {"id": str(user.id), "username": user.name}}

    def conversation(self, to: str, thread_id: str | None = None) -> DiscordConversation:
        client = self.client
        if client is None:
            raise ChannelError("discord is not connected")
        return DiscordConversation(client, thread_id or to, self.options.max_message_chars)

    def routes(self) -> list[HttpRoute]:
        return []
