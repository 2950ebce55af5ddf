"""The channel accounts of one gateway: lifecycle, status, and outbound delivery.

``ChannelManager`` is the core's ``Outbound``: ``send``, cron and heartbeats
deliver through it. Each account runs under a supervisor task: ``connect`` is
retried with exponential backoff and jitter (tenacity) until it succeeds, and
a transport that breaks later is reconnected the same way. A failure is kept
as the account's ``lastError`` for ``channels.status``; it never reaches the
gateway's own tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from ..core.outbound import Delivery, Outbound, OutboundError
from ..core.runs import now_ms
from .base import Channel, ChannelError, HttpRoute
from .conversations import ConversationRouter
from .streaming import deliver_text

__all__ = ["ChannelManager", "ChannelUnavailable", "UnknownChannel", "redact_secrets"]

log = logging.getLogger(__name__)

LABELS = {"telegram": "Telegram", "slack": "Slack", "discord": "Discord", "webchat": "WebChat"}
DETAIL_LABELS = {
    "telegram": "Telegram Bot",
    "slack": "Slack App",
    "discord": "Discord Bot",
    "webchat": "Gateway Control UI",
}
ORDER = ("telegram", "discord", "slack", "webchat")


class UnknownChannel(OutboundError):
    """No such channel (or account) is configured."""

    reason = "UNKNOWN_CHANNEL"


class ChannelUnavailable(OutboundError):
    """The channel is configured but not running, or the platform refused the message."""

    reason = "CHANNEL_UNAVAILABLE"


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced: platform errors can echo URLs that hold the bot token."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text


class _RedactSecrets(logging.Filter):
    """Scrubs channel secrets from every log record (libraries log request URLs)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = redact_secrets(message, self.secrets)
        if record.exc_info and record.exc_info[1] is not None:
            trace = logging.Formatter().formatException(record.exc_info)
            redacted = redact_secrets(trace, self.secrets)
            if redacted != trace:  # the traceback goes into the message, scrubbed
                clean, record.exc_info, record.exc_text = f"{clean}\n{redacted}", None, None
        if clean != message:
            record.msg, record.args = clean, ()
        return True


class _Supervised:
    """One account and the task that keeps it connected."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.task: asyncio.Task[None] | None = None
        self.stopping = False


class ChannelManager:
    """Every configured channel account; implements ``core.outbound.Outbound``."""

    def __init__(
        self,
        channels: list[Channel],
        router: ConversationRouter,
        *,
        secrets: list[str] | None = None,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 300.0,
        webchat: Channel | None = None,
    ) -> None:
        self.router = router
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.webchat = webchat
        self._accounts: dict[tuple[str, str], _Supervised] = {}
        for channel in channels:
            self._accounts[(channel.id, channel.account_id)] = _Supervised(channel)
            channel.bind(router.handler(channel))
        self._redactor = _RedactSecrets([s for s in secrets or [] if s])
        self._filtered: list[logging.Handler] = []

    # -- lookup ----------------------------------------------------------------
    def channel_ids(self) -> list[str]:
        ids = {c for c, _ in self._accounts}
        if self.webchat is not None:
            ids.add(self.webchat.id)
        return [c for c in ORDER if c in ids] + sorted(ids - set(ORDER))

    def accounts(self, channel: str) -> list[Channel]:
        if self.webchat is not None and channel == self.webchat.id:
            return [self.webchat]
        return [s.channel for (c, _), s in self._accounts.items() if c == channel]

    def get(self, channel: str, account_id: str | None = None) -> Channel | None:
        """The account, or the channel's default one (``default`` or else its first)."""
        accounts = self.accounts(channel)
        if account_id:
            return next((a for a in accounts if a.account_id == account_id), None)
        return next((a for a in accounts if a.account_id == "default"), accounts[0] if accounts else None)

    def routes(self) -> list[HttpRoute]:
        return [route for s in self._accounts.values() for route in s.channel.routes()]

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        """Start every enabled account in the background; returns at once."""
        root = logging.getLogger()
        for handler in root.handlers:
            handler.addFilter(self._redactor)
            self._filtered.append(handler)
        self.router.start()
        for supervised in self._accounts.values():
            status = supervised.channel.status
            if status.enabled and status.configured:
                self._launch(supervised)

    async def stop(self) -> None:
        await asyncio.gather(*(self._halt(s) for s in self._accounts.values()), return_exceptions=True)
        await self.router.stop()
        for handler in self._filtered:
            handler.removeFilter(self._redactor)
        self._filtered.clear()

    async def start_account(self, channel: str, account_id: str | None) -> Channel:
        supervised = self._supervised(channel, account_id)
        chan = supervised.channel
        chan.status.logged_out = False
        if not chan.status.configured:
            raise ChannelUnavailable(f"{channel} account {chan.account_id} is not configured: {chan.status.last_error}")
        if supervised.task is None or supervised.task.done():
            self._launch(supervised)
        return chan

    async def stop_account(self, channel: str, account_id: str | None) -> Channel:
        supervised = self._supervised(channel, account_id)
        await self._halt(supervised)
        return supervised.channel

    def _supervised(self, channel: str, account_id: str | None) -> _Supervised:
        chan = self.get(channel, account_id)
        supervised = self._accounts.get((channel, chan.account_id)) if chan is not None else None
        if supervised is None:
            raise UnknownChannel(f"unknown channel: {channel}" + (f" account {account_id}" if account_id else ""))
        return supervised

    def _launch(self, supervised: _Supervised) -> None:
        supervised.stopping = False
        chan = supervised.channel
        supervised.task = asyncio.get_running_loop().create_task(
            self._supervise(supervised), name=f"channel:{chan.id}:{chan.account_id}"
        )

    async def _halt(self, supervised: _Supervised) -> None:
        supervised.stopping = True
        task, supervised.task = supervised.task, None
        with contextlib.suppress(Exception):
            await supervised.channel.stop()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        status = supervised.channel.status
        if status.running or status.connected:
            status.last_stop_at = now_ms()
        status.running = status.connected = False

    async def _supervise(self, supervised: _Supervised) -> None:
        """Connect with backoff, serve, and reconnect when the transport breaks, until stopped."""
        chan = supervised.channel
        status = chan.status
        while not supervised.stopping:
            retrying = AsyncRetrying(
                wait=wait_exponential_jitter(initial=self.retry_initial_s, max=self.retry_max_s),
                retry=retry_if_exception_type(Exception),
                before_sleep=lambda state: self._failed(chan, state),
            )
            async for attempt in retrying:
                with attempt:
                    await chan.connect()
            status.running = True
            status.last_start_at = status.last_connected_at = now_ms()
            status.last_error = None
            status.reconnect_attempts = 0
            log.info("%s/%s: connected", chan.id, chan.account_id)
            try:
                await chan.serve()
                if not supervised.stopping:  # serve returns only when stopped; anything else is a lost transport
                    raise ChannelError("the connection ended")
            except Exception as exc:
                status.last_error = self._describe(exc)
                log.warning("%s/%s: transport failed: %s", chan.id, chan.account_id, status.last_error)
                with contextlib.suppress(Exception):
                    await chan.stop()
                status.running = status.connected = False
                status.last_stop_at = now_ms()
                await asyncio.sleep(self.retry_initial_s)
                continue
            break
        status.running = status.connected = False
        status.last_stop_at = now_ms()

    def _failed(self, chan: Channel, state: RetryCallState) -> None:
        status = chan.status
        exc = state.outcome.exception() if state.outcome is not None else None
        status.last_error = self._describe(exc) if exc is not None else "connect failed"
        status.reconnect_attempts = state.attempt_number
        status.running = status.connected = False
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s/%s: cannot connect (attempt %d, retrying in %.1fs): %s",
            chan.id,
            chan.account_id,
            state.attempt_number,
            wait,
            status.last_error,
        )

    def _describe(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        return redact_secrets(text, self._redactor.secrets)[:500]

    # -- Outbound ----------------------------------------------------------------
    def has_channel(self, channel: str) -> bool:
        return bool(self.accounts(channel))

    async def deliver(self, channel: str, to: str, text: str, *, account: str | None = None) -> Delivery:
        chan = self.get(channel, account)
        if chan is None:
            raise UnknownChannel(f"unknown channel: {channel}" + (f" account {account}" if account else ""))
        status = chan.status
        if not status.running:
            why = f": {status.last_error}" if status.last_error else ""
            raise ChannelUnavailable(f"channel {channel} (account {chan.account_id}) is not running{why}")
        try:
            conversation = chan.conversation(to)
            message_id = await deliver_text(conversation, text, chan.access.max_retry_wait_s)
        except ChannelError as exc:
            raise ChannelUnavailable(f"{channel} refused the message: {self._describe(exc)}") from None
        status.last_outbound_at = now_ms()
        return Delivery(channel=channel, to=to, message_id=message_id, account=chan.account_id)

    # -- status --------------------------------------------------------------------
    def status(
        self, channel: str | None = None, probes: dict[tuple[str, str], dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """``channels.status``'s result, in OpenClaw's ``ChannelsStatusResult`` shape."""
        ids = [c for c in self.channel_ids() if channel is None or c == channel]
        payload: dict[str, Any] = {
            "ts": now_ms(),
            "channelOrder": ids,
            "channelLabels": {c: LABELS.get(c, c) for c in ids},
            "channelDetailLabels": {c: DETAIL_LABELS.get(c, c) for c in ids},
            "channelMeta": [{"id": c, "label": LABELS.get(c, c), "detailLabel": DETAIL_LABELS.get(c, c)} for c in ids],
            "channels": {},
            "channelAccounts": {},
            "channelDefaultAccountId": {},
        }
        for cid in ids:
            accounts = self.accounts(cid)
            snapshots = []
            for chan in accounts:
                snap = chan.status.snapshot()
                probe = (probes or {}).get((cid, chan.account_id))
                if probe is not None:
                    snap["probe"] = probe
                    snap["lastProbeAt"] = probe.get("at")
                snapshots.append(snap)
            default = self.get(cid)
            payload["channelAccounts"][cid] = snapshots
            payload["channelDefaultAccountId"][cid] = default.account_id if default else "default"
            summary: dict[str, Any] = {"configured": any(s["configured"] for s in snapshots)}
            if default is not None and default.status.last_error:
                summary["lastError"] = default.status.last_error
            payload["channels"][cid] = summary
        return payload

    async def probe(self, channel: str | None, timeout_s: float) -> dict[tuple[str, str], dict[str, Any]]:
        """Run every selected account's live check concurrently, each within ``timeout_s``."""
        targets = [a for c in self.channel_ids() if channel is None or c == channel for a in self.accounts(c)]

        async def one(chan: Channel) -> dict[str, Any]:
            try:
                async with asyncio.timeout(timeout_s):
                    result = await chan.probe(timeout_s)
            except TimeoutError:
                result = {"ok": False, "error": f"probe timed out after {timeout_s:g}s"}
            except Exception as exc:
                result = {"ok": False, "error": self._describe(exc)}
            return {**result, "at": now_ms()}

        results = await asyncio.gather(*(one(c) for c in targets))
        return {(c.id, c.account_id): r for c, r in zip(targets, results, strict=True)}


if TYPE_CHECKING:

    def _conforms(manager: ChannelManager) -> Outbound:
        return manager
