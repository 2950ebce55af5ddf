"""Slack, on slack-bolt: the Events API over HTTP, on ``POST /slack/events`` of the gateway.

Why the Events API and not Socket Mode: the gateway already serves HTTP, the
request is verified by bolt with the app's signing secret, it needs no second
outbound WebSocket to keep alive, and it can be tested end to end against a
local server speaking Slack's wire format. Socket Mode suits a gateway behind
NAT; it is not implemented here.

A direct message (``message`` event in an ``im``) starts or continues the
sender's session; in channels the bot answers ``app_mention``s, in the thread
of the mention, and that thread keeps its session
(``agent:main:slack:channel:<c>:thread:<ts>``). Replies stream by
``chat.update`` on one message (``chat.postMessage`` first).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from .base import ChannelError, HttpRoute, Inbound, InboundHandler, PeerKind, RateLimited, initial_status
from .options import SlackOptions

__all__ = ["SlackChannel", "SlackConversation"]

log = logging.getLogger(__name__)

_SEEN_EVENTS = 2048  # Slack retries a delivery it thinks failed; recent event ids are remembered
_MENTION = re.compile(r"<@([A-Z0-9]+)>")


def _platform_error(exc: SlackApiError) -> ChannelError:
    response = exc.response
    if response.status_code == 429:
        try:
            retry = float(response.headers.get("Retry-After") or response.headers.get("retry-after") or 1)
        except (TypeError, ValueError):
            retry = 1.0
        return RateLimited(retry, "Slack rate limit")
    error = response.get("error") if isinstance(response.data, dict) else None
    return ChannelError(f"Slack: {error or f'HTTP {response.status_code}'}")


class SlackConversation:
    """A Slack channel or DM (and thread): ``chat.postMessage`` then ``chat.update``."""

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str | None, max_chars: int) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self._max_chars = max_chars

    @property
    def max_chars(self) -> int:
        return self._max_chars

    async def send(self, text: str) -> str:
        try:
            response = await self.client.chat_postMessage(channel=self.channel, text=text, thread_ts=self.thread_ts)
        except SlackApiError as exc:
            raise _platform_error(exc) from None
        return str(response.get("ts"))

    async def edit(self, message_id: str, text: str) -> None:
        try:
            await self.client.chat_update(channel=self.channel, ts=message_id, text=text)
        except SlackApiError as exc:
            raise _platform_error(exc) from None

    async def typing(self) -> None:
        return None  # bots have no typing indicator outside assistant threads


class SlackChannel:
    """One Slack app (bot token + signing secret)."""

    id = "slack"
    label = "Slack"

    def __init__(self, options: SlackOptions) -> None:
        self.options = options
        self.account_id = options.account_id
        self.access = options.access
        missing = None
        if not options.token:
            missing = "bot token (bot_token, bot_token_file or SLACK_BOT_TOKEN)"
        elif not options.signing_secret:
            missing = "signing secret (signing_secret or SLACK_SIGNING_SECRET)"
        self.status = initial_status(self.id, options, "events-api", missing)
        self.status.extra = {"webhookPath": options.events_path}
        self.client: AsyncWebClient | None = None
        self.app: AsyncApp | None = None
        self.bot_user_id: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._handler: InboundHandler | None = None
        self._stop = asyncio.Event()
        self._seen: OrderedDict[str, None] = OrderedDict()

    def bind(self, handler: InboundHandler) -> None:
        self._handler = handler

    def _client(self, session: aiohttp.ClientSession) -> AsyncWebClient:
        return AsyncWebClient(token=self.options.token, base_url=self.options.api_base_url, session=session)

    async def connect(self) -> None:
        """``auth.test`` with the bot token, then the bolt app that verifies and routes events."""
        await self._close()
        self._stop = asyncio.Event()
        session = aiohttp.ClientSession()
        client = self._client(session)
        try:
            auth = await client.auth_test()
        except SlackApiError as exc:
            await session.close()
            raise _platform_error(exc) from None
        except BaseException:
            await session.close()
            raise
        self._session, self.client = session, client
        self.bot_user_id = str(auth.get("user_id") or "") or None
        self.status.bot_username = str(auth.get("user") or "") or None
        app = AsyncApp(
            client=client,
            signing_secret=self.options.signing_secret,
            logger=logging.getLogger("agenthub.channels.slack.bolt"),
        )
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_mention)
        self.app = app
        self.status.connected = True

    async def serve(self) -> None:
        await self._stop.wait()  # events arrive over HTTP; nothing to poll

    async def stop(self) -> None:
        self._stop.set()
        await self._close()

    async def _close(self) -> None:
        self.app = None
        self.client = None
        self.status.connected = False
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _first_delivery(self, body: dict[str, Any]) -> bool:
        event_id = body.get("event_id")
        if not isinstance(event_id, str):
            return True
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        while len(self._seen) > _SEEN_EVENTS:
            self._seen.popitem(last=False)
        return True

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """Direct messages (and, without ``require_mention``, channel messages that do not mention us)."""
        if event.get("subtype") or event.get("bot_id") or not self._first_delivery(body):
            return
        text = str(event.get("text") or "")
        direct = event.get("channel_type") == "im"
        if not direct and (self.access.require_mention or self._mentions_me(text)):
            return  # app_mention carries it (or nothing should)
        kind: PeerKind = "direct" if direct else "channel"
        await self._deliver(event, kind, thread_ts=event.get("thread_ts"), mentioned=direct)

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("bot_id") or not self._first_delivery(body):
            return
        # Answer in the thread of the mention: a top-level mention starts that thread.
        await self._deliver(event, "channel", thread_ts=event.get("thread_ts") or event.get("ts"), mentioned=True)

    def _mentions_me(self, text: str) -> bool:
        return self.bot_user_id is not None and f"<@{self.bot_user_id}>" in text

    async def _deliver(self, event: dict[str, Any], kind: PeerKind, *, thread_ts: Any, mentioned: bool) -> None:
        client, handler = self.client, self._handler
        user, channel = event.get("user"), event.get("channel")
        if client is None or handler is None or not isinstance(user, str) or not isinstance(channel, str):
            return
        text = _MENTION.sub(
            lambda m: "" if m.group(1) == self.bot_user_id else m.group(0), str(event.get("text") or "")
        )
        thread = str(thread_ts) if thread_ts else None
        await handler(
            Inbound(
                channel=self.id,
                account_id=self.account_id,
                peer_kind=kind,
                peer_id=channel,
                sender_id=user,
                text=" ".join(text.split()),
                conversation=SlackConversation(client, channel, thread, self.options.max_message_chars),
                message_id=str(event.get("ts") or "") or None,
                thread_id=thread,
                mentioned=mentioned,
            )
        )

    async def probe(self, timeout_s: float) -> dict[str, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
            try:
                auth = await self._client(session).auth_test()
            except SlackApiError as exc:
                return {"ok": False, "error": str(_platform_error(exc))}
        return {"ok": True, "bot": {"id": auth.get("user_id"), "username": auth.get("user")}}

    def conversation(self, to: str, thread_id: str | None = None) -> SlackConversation:
        client = self.client
        if client is None:
            raise ChannelError("slack is not connected")
        return SlackConversation(client, to, thread_id, self.options.max_message_chars)

    def routes(self) -> list[HttpRoute]:
        return [HttpRoute("POST", self.options.events_path, self._events)]

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Slack's Events API request URL: bolt verifies the signature, acks, and runs the listener."""
        app = self.app
        if app is None:
            return web.json_response({"ok": False, "error": "slack channel not connected"}, status=503)
        response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)
