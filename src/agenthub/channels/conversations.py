"""Inbound messages become runs, and runs stream their replies back to the chat.

For each message a channel hands over: check access (allow-list, approved
senders, or a pairing code for an unknown sender), map the conversation to its
session key, answer slash commands as the native chat does, or start a run
through ``RunManager`` like any client. The run's events reach every operator
client through the bus as usual; a ``ReplyStream`` mirrors its text into the
chat. The router follows runs as a bus listener (a dict lookup per event).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.bus import Publication
from ..core.node import Node
from ..core.runs import Run, now_ms, run_stream
from .base import Channel, Inbound, session_key
from .pairing import PairingService
from .streaming import ReplyStream, deliver_text

__all__ = ["AGENT_ID", "BUSY_MESSAGE", "ConversationRouter", "SlashCommands", "pairing_message"]

log = logging.getLogger(__name__)

AGENT_ID = "main"  # agenthub runs one agent; OpenClaw's key scheme names it
SlashCommands = Callable[[str, str], Awaitable[str | None]]  # (session key, text) -> reply or None
BUSY_MESSAGE = "Still working on your earlier messages; send this again once they are answered (or /stop)."


def pairing_message(channel: str, sender_id: str, code: str) -> str:
    """What an unknown sender is told (OpenClaw's pairing reply, with agenthub's command)."""
    return (
        "agenthub: this bot does not know you yet.\n\n"
        f"Your {channel} id: {sender_id}\n"
        f"Pairing code: {code}\n\n"
        "Ask the bot's operator to approve it with:\n"
        f"agenthub channels approve {channel} {code}"
    )


def _command(text: str) -> str:
    """``/status@my_bot  x`` -> ``/status x``; Telegram's ``/start`` greets like ``/help``."""
    head, _, rest = text.partition(" ")
    head = head.split("@", 1)[0].lower()
    if head == "/start":
        head = "/help"
    return " ".join([head, *rest.split()])


class ConversationRouter:
    """Turns each channel's inbound messages into runs and their replies into edits."""

    def __init__(
        self,
        node: Node,
        pairing: PairingService,
        *,
        dm_scope: str = "per-channel-peer",
        max_inbound_chars: int = 16_000,
        max_queued_runs: int = 3,
        commands: SlashCommands | None = None,
    ) -> None:
        self.node = node
        self.pairing = pairing
        self.dm_scope = dm_scope
        self.max_inbound_chars = max_inbound_chars
        self.max_queued_runs = max_queued_runs
        self.commands = commands
        self.streams: dict[str, ReplyStream] = {}  # bus stream name -> the reply following it
        self.tasks: set[asyncio.Task[None]] = set()
        self._unlisten: Callable[[], None] | None = None

    def start(self) -> None:
        self._unlisten = self.node.bus.add_listener(self)

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def handle_publication(self, pub: Publication) -> None:
        stream = self.streams.get(pub.stream)
        if stream is not None:
            stream.poke()

    def handler(self, channel: Channel) -> Callable[[Inbound], Awaitable[None]]:
        async def receive(msg: Inbound) -> None:
            try:
                await self.receive(channel, msg)
            except Exception:  # one bad message must never stop the channel's loop
                log.exception("%s/%s: inbound message failed", channel.id, channel.account_id)

        return receive

    async def receive(self, channel: Channel, msg: Inbound) -> None:
        status = channel.status
        status.last_inbound_at = now_ms()
        text = msg.text.strip()[: self.max_inbound_chars]
        if not text:
            return
        if msg.peer_kind != "direct" and channel.access.require_mention and not msg.mentioned:
            return
        if not await self._admitted(channel, msg):
            return
        key = session_key(
            AGENT_ID,
            msg.channel,
            msg.account_id,
            msg.peer_kind,
            msg.peer_id,
            dm_scope=self.dm_scope,
            thread_id=msg.thread_id,
            sender_id=msg.sender_id,
        )
        origin = f"channel:{msg.channel}:{msg.account_id}"
        run_id = f"{msg.channel}-{secrets.token_hex(8)}"
        if text.startswith("/") and self.commands is not None:
            reply = await self.commands(key, _command(text))
            if reply is not None:
                await self.node.runs.reply(run_id, key, reply, origin)
                await deliver_text(msg.conversation, reply, channel.access.max_retry_wait_s)
                status.last_outbound_at = now_ms()
                return
        if len(self.node.runs.active(key)) >= self.max_queued_runs:
            await deliver_text(msg.conversation, BUSY_MESSAGE, channel.access.max_retry_wait_s)
            status.last_outbound_at = now_ms()
            return
        meta: dict[str, Any] = {"channel": msg.channel, "accountId": msg.account_id, "from": msg.sender_id}
        if msg.sender_name:
            meta["senderName"] = msg.sender_name
        if msg.message_id:
            meta["messageId"] = msg.message_id
        run = await self.node.runs.start(run_id, key, text, origin, message_meta=meta)
        self._follow(channel, msg, run)

    async def _admitted(self, channel: Channel, msg: Inbound) -> bool:
        """Allow-list, then approved senders, then the DM policy (a pairing code for strangers)."""
        access = channel.access
        if msg.peer_kind == "direct" and access.dm_policy == "disabled":
            return False
        allow = set(access.allow_from)
        if "*" in allow or msg.sender_id in allow or msg.peer_id in allow:
            return True
        if access.dm_policy == "open":
            return True
        if await self.pairing.is_approved(msg.channel, msg.account_id, msg.sender_id):
            return True
        if msg.peer_kind != "direct" or access.dm_policy != "pairing":
            log.info("%s/%s: message from %s refused", msg.channel, msg.account_id, msg.sender_id)
            return False
        meta = {"peerId": msg.peer_id} | ({"senderName": msg.sender_name} if msg.sender_name else {})
        code = await self.pairing.request(msg.channel, msg.account_id, msg.sender_id, now_ms(), meta)
        if code is not None:
            log.info("%s/%s: pairing requested by %s", msg.channel, msg.account_id, msg.sender_id)
            await deliver_text(
                msg.conversation, pairing_message(msg.channel, msg.sender_id, code), access.max_retry_wait_s
            )
            channel.status.last_outbound_at = now_ms()
        return False

    def _follow(self, channel: Channel, msg: Inbound, run: Run) -> None:
        """Stream the run's reply into the chat (registered before the run task first runs)."""
        access = channel.access
        status = channel.status

        def sent() -> None:
            status.last_outbound_at = now_ms()

        stream = ReplyStream(
            msg.conversation,
            run,
            edit_interval_s=access.edit_interval_ms / 1000,
            typing_interval_s=access.typing_interval_ms / 1000 if access.typing_interval_ms else None,
            max_retry_wait_s=access.max_retry_wait_s,
            on_sent=sent,
        )
        name = run_stream(run.run_id)
        self.streams[name] = stream
        run.on_done.append(lambda _run: stream.finish())
        status.active_runs += 1
        task = asyncio.get_running_loop().create_task(stream.run(), name=f"reply:{run.run_id}")
        self.tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self.tasks.discard(t)
            self.streams.pop(name, None)
            status.active_runs -= 1
            if not t.cancelled() and t.exception() is not None:
                status.last_error = f"reply not delivered: {t.exception()}"

        task.add_done_callback(done)
