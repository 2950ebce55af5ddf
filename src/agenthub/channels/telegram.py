"""Telegram, on python-telegram-bot: long polling by default, or a webhook on the gateway.

``connect`` calls ``getMe`` (a bad token fails here, and the registry retries
with backoff); polling mode then drops any webhook (``deleteWebhook``) and
long-polls ``getUpdates``; webhook mode registers ``setWebhook`` and takes
updates on ``POST /telegram/<account>/webhook``, checking Telegram's secret
header. The Bot API base URL is a setting, so tests run a local Bot API.
Replies are plain text (no parse mode, so no message can fail to parse).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
import warnings
from typing import Any

from aiohttp import web
from telegram import Bot, Message, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from ..core.runs import now_ms
from .base import ChannelError, HttpRoute, Inbound, InboundHandler, RateLimited, initial_status
from .options import TelegramOptions

__all__ = ["TelegramChannel", "TelegramConversation"]

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _retry_after_s(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form is deprecated; take either form
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _platform_error(exc: TelegramError) -> ChannelError:
    if isinstance(exc, RetryAfter):
        return RateLimited(_retry_after_s(exc), "Telegram flood control")
    return ChannelError(f"Telegram: {exc.message}")


class TelegramConversation:
    """One Telegram chat (and forum topic): ``sendMessage``, ``editMessageText``, ``sendChatAction``."""

    def __init__(self, bot: Bot, chat_id: int | str, thread_id: int | None, max_chars: int) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.thread_id = thread_id
        self._max_chars = max_chars

    @property
    def max_chars(self) -> int:
        return self._max_chars

    async def send(self, text: str) -> str:
        try:
            message = await self.bot.send_message(self.chat_id, text, message_thread_id=self.thread_id)
        except TelegramError as exc:
            raise _platform_error(exc) from None
        return str(message.message_id)

    async def edit(self, message_id: str, text: str) -> None:
        try:
            await self.bot.edit_message_text(text, chat_id=self.chat_id, message_id=int(message_id))
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():  # the same text again is not a failure
                raise _platform_error(exc) from None
        except TelegramError as exc:
            raise _platform_error(exc) from None

    async def typing(self) -> None:
        try:
            await self.bot.send_chat_action(self.chat_id, ChatAction.TYPING, message_thread_id=self.thread_id)
        except TelegramError as exc:
            raise _platform_error(exc) from None


class TelegramChannel:
    """One Telegram bot account."""

    id = "telegram"
    label = "Telegram"

    def __init__(self, options: TelegramOptions) -> None:
        self.options = options
        self.account_id = options.account_id
        self.access = options.access
        missing = None if options.token else "bot token (bot_token, bot_token_file or TELEGRAM_BOT_TOKEN)"
        self.status = initial_status(self.id, options, options.mode, missing)
        self.bot: Bot | None = None
        self.username: str | None = None
        self._handler: InboundHandler | None = None
        self._stop = asyncio.Event()

    def bind(self, handler: InboundHandler) -> None:
        self._handler = handler

    def _new_bot(self) -> Bot:
        token = self.options.token or ""
        base = self.options.api_base_url.rstrip("/")
        poll = HTTPXRequest(read_timeout=10.0, connection_pool_size=1)
        return Bot(
            token,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=HTTPXRequest(connection_pool_size=8),
            get_updates_request=poll,
        )

    async def connect(self) -> None:
        """``getMe`` (and the webhook set-up), with a fresh client each attempt."""
        await self._close_bot()
        if self.options.mode == "webhook" and not (self.options.webhook_url and self.options.webhook_secret):
            raise ChannelError("webhook mode needs webhook_url and webhook_secret")
        self._stop = asyncio.Event()
        bot = self._new_bot()
        try:
            await bot.initialize()
            if self.options.mode == "webhook":
                await bot.set_webhook(
                    self.options.webhook_url or "",
                    secret_token=self.options.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                )
            else:
                await bot.delete_webhook()
        except TelegramError as exc:
            with contextlib.suppress(Exception):
                await bot.shutdown()
            raise _platform_error(exc) from None
        self.bot = bot
        self.username = bot.username
        self.status.bot_username = bot.username
        self.status.connected = True

    async def serve(self) -> None:
        if self.options.mode == "webhook":
            await self._stop.wait()
            return
        poller = asyncio.get_running_loop().create_task(self._poll())
        stopper = asyncio.get_running_loop().create_task(self._stop.wait())
        try:
            await asyncio.wait({poller, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (poller, stopper):
                task.cancel()
            await asyncio.gather(poller, stopper, return_exceptions=True)
        if poller.done() and not poller.cancelled() and poller.exception() is not None:
            raise poller.exception()  # type: ignore[misc]

    async def _poll(self) -> None:
        bot = self.bot
        assert bot is not None
        offset: int | None = None
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=self.options.poll_timeout_s, allowed_updates=ALLOWED_UPDATES
                )
            except RetryAfter as exc:
                await asyncio.sleep(_retry_after_s(exc))
                continue
            except TelegramError as exc:
                raise _platform_error(exc) from None
            self.status.connected = True
            for update in updates:
                offset = update.update_id + 1
                await self._dispatch(update)

    async def stop(self) -> None:
        self._stop.set()
        await self._close_bot()

    async def _close_bot(self) -> None:
        bot, self.bot = self.bot, None
        self.status.connected = False
        if bot is not None:
            with contextlib.suppress(Exception):
                await bot.shutdown()

    async def _dispatch(self, update: Update) -> None:
        message = update.message
        bot = self.bot
        if message is None or bot is None or self._handler is None:
            return
        inbound = self._inbound(bot, message)
        if inbound is not None:
            await self._handler(inbound)

    def _inbound(self, bot: Bot, message: Message) -> Inbound | None:
        text = message.text
        user = message.from_user
        if text is None or user is None or user.is_bot:
            return None
        chat = message.chat
        direct = chat.type == ChatType.PRIVATE
        mention = f"@{self.username}".lower() if self.username else None
        mentioned = direct
        if mention and mention in text.lower():
            mentioned = True
            text = " ".join(w for w in text.split(" ") if w.lower() != mention)
        reply_to = message.reply_to_message
        if reply_to is not None and reply_to.from_user is not None and reply_to.from_user.id == bot.id:
            mentioned = True
        thread = message.message_thread_id if message.is_topic_message else None
        return Inbound(
            channel=self.id,
            account_id=self.account_id,
            peer_kind="direct" if direct else "group",
            peer_id=str(chat.id),
            sender_id=str(user.id),
            sender_name=user.full_name or user.username,
            text=text,
            conversation=TelegramConversation(bot, chat.id, thread, self.options.max_message_chars),
            message_id=str(message.message_id),
            thread_id=str(thread) if thread is not None else None,
            mentioned=mentioned,
        )

    async def probe(self, timeout_s: float) -> dict[str, Any]:
        bot = self._new_bot()
        try:
            me = await bot.get_me(read_timeout=timeout_s, connect_timeout=timeout_s)
        except TelegramError as exc:
            return {"ok": False, "error": str(_platform_error(exc))}
        finally:
            with contextlib.suppress(Exception):
                await bot.shutdown()
        return {"ok": True, "bot": {"id": me.id, "username": me.username}}

    def conversation(self, to: str, thread_id: str | None = None) -> TelegramConversation:
        bot = self.bot
        if bot is None:
            raise ChannelError("telegram is not connected")
        chat: int | str = int(to) if to.lstrip("-").isdigit() else to  # numeric id or @channelusername
        thread = int(thread_id) if thread_id and thread_id.isdigit() else None
        return TelegramConversation(bot, chat, thread, self.options.max_message_chars)

    def routes(self) -> list[HttpRoute]:
        if self.options.mode != "webhook":
            return []
        return [HttpRoute("POST", f"/telegram/{self.account_id}/webhook", self._webhook)]

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        """A Bot API webhook post: checked against the secret header, then handled like a polled update."""
        expected = (self.options.webhook_secret or "").encode()
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not expected or not hmac.compare_digest(given, expected):
            return web.json_response({"ok": False, "error": "bad secret token"}, status=401)
        bot = self.bot
        if bot is None:
            return web.json_response({"ok": False, "error": "not connected"}, status=503)
        try:
            data = await request.json()
            update = Update.de_json(data, bot)
        except Exception:
            return web.json_response({"ok": False, "error": "not a Telegram Update"}, status=400)
        self.status.last_inbound_at = now_ms()
        await self._dispatch(update)
        return web.json_response({"ok": True})
