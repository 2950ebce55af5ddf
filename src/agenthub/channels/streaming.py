"""A run's reply, streamed into a chat by editing one message as the text grows.

Platforms limit edits (Telegram: about one per second per chat), so the text
is flushed at most once per ``edit_interval_s``; a 429 holds every request
until its ``retry_after`` has passed, and the final edit is retried until it
lands, so nothing is lost. A reply longer than the platform's message limit
continues in further messages; the split points depend only on the text
before them, so messages already posted never change their cut.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from ..core.runs import Run, RunStatus
from .base import ChannelError, Conversation, RateLimited

__all__ = ["ReplyStream", "deliver_text", "final_text", "split_text"]

log = logging.getLogger(__name__)


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, at a line or word break when one is near."""
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = window.rfind("\n")
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" \n") if cut < limit else text[cut:]
    if text or not pieces:
        pieces.append(text)
    return pieces


def final_text(run: Run) -> str:
    """What the chat shows once the run has ended."""
    text = run.text.rstrip()
    if run.status is RunStatus.ABORTED:
        return f"{text}\n\n(stopped)" if text else "(stopped)"
    if run.status is RunStatus.ERROR:
        reason = (run.error or "the run failed")[:300]
        return f"{text}\n\n(error: {reason})" if text else f"(error: {reason})"
    return text or "(no reply)"


async def _retrying(call: Callable[[], Awaitable[object]], max_wait_s: float) -> None:
    """Await ``call()`` again after each 429, as long as each wait is at most ``max_wait_s``."""
    while True:
        try:
            await call()
            return
        except RateLimited as exc:
            if exc.retry_after_s > max_wait_s:
                raise
            await asyncio.sleep(exc.retry_after_s)


async def deliver_text(conversation: Conversation, text: str, max_wait_s: float) -> str:
    """Post ``text`` (split as needed), waiting out rate limits; returns the last message id."""
    last = ""
    for piece in split_text(text, conversation.max_chars):

        async def post(piece: str = piece) -> None:
            nonlocal last
            last = await conversation.send(piece)

        await _retrying(post, max_wait_s)
    return last


class ReplyStream:
    """Follows one run and mirrors its text into one conversation.

    ``poke()`` is called on every event of the run (from the bus, without
    awaiting), ``finish()`` when it ends; ``run()`` is the task that talks to
    the platform.
    """

    def __init__(
        self,
        conversation: Conversation,
        run: Run,
        *,
        edit_interval_s: float,
        typing_interval_s: float | None,
        max_retry_wait_s: float,
        on_sent: Callable[[], None] = lambda: None,
    ) -> None:
        self.conversation = conversation
        self.run_ = run
        self.edit_interval_s = edit_interval_s
        self.typing_interval_s = typing_interval_s
        self.max_retry_wait_s = max_retry_wait_s
        self.on_sent = on_sent
        self.messages: list[tuple[str, str]] = []  # (message id, text shown), in order
        self.requests = 0  # platform calls made (sends, edits, typing)
        self._wake = asyncio.Event()
        self._done = False
        self._hold_until = 0.0  # monotonic time before which a 429 forbids any request
        self._last_write = float("-inf")  # monotonic time of the last send or edit

    def poke(self) -> None:
        self._wake.set()

    def finish(self) -> None:
        self._done = True
        self._wake.set()

    async def run(self) -> None:
        """Stream until the run ends, then make the final text land."""
        shown = ""
        next_typing = 0.0
        while not self._done:
            now = time.monotonic()
            if now >= self._hold_until:
                if self.typing_interval_s is not None and now >= next_typing:
                    next_typing = now + self.typing_interval_s
                    await self._try(self._typing)
                text = self.run_.text
                due = text.strip() and text != shown and now - self._last_write >= self.edit_interval_s
                if due and await self._try(functools.partial(self._flush, text)):
                    shown = text
            pending = bool(self.run_.text.strip()) and self.run_.text != shown
            await self._sleep(self._next_wake(self._last_write, next_typing, text_pending=pending))
        await self._finish()

    def _next_wake(self, last_flush: float, next_typing: float, *, text_pending: bool) -> float | None:
        """Seconds until the next thing to do (None: only an event can wake us)."""
        now = time.monotonic()
        if self._hold_until > now:  # a 429: nothing may be sent before it has passed
            return self._hold_until - now
        due: list[float] = []
        if text_pending:
            due.append(last_flush + self.edit_interval_s - now)
        if self.typing_interval_s is not None:
            due.append(next_typing - now)
        return max(0.0, min(due)) if due else None

    async def _sleep(self, timeout: float | None) -> None:
        self._wake.clear()
        if self._done:
            return
        if timeout is not None and timeout <= 0:
            await asyncio.sleep(0)
            return
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _try(self, call: Callable[[], Awaitable[object]]) -> bool:
        """One attempt while streaming: a 429 holds later requests, other errors are logged."""
        try:
            await call()
            return True
        except RateLimited as exc:
            self._hold_until = time.monotonic() + exc.retry_after_s
            log.info("rate limited while streaming run %s: waiting %.1fs", self.run_.run_id, exc.retry_after_s)
        except Exception as exc:  # a refused edit or a stopped account: the final edit tries again
            log.warning("streaming run %s: %s", self.run_.run_id, exc)
        return False

    async def _typing(self) -> None:
        self.requests += 1
        await self.conversation.typing()

    async def _flush(self, text: str) -> None:
        for i, piece in enumerate(split_text(text, self.conversation.max_chars)):
            if i < len(self.messages):
                message_id, current = self.messages[i]
                if current != piece:
                    await self._pace()
                    self.requests += 1
                    await self.conversation.edit(message_id, piece)
                    self.messages[i] = (message_id, piece)
                    self.on_sent()
            else:
                await self._pace()
                self.requests += 1
                message_id = await self.conversation.send(piece)
                self.messages.append((message_id, piece))
                self.on_sent()

    async def _pace(self) -> None:
        """At most one message write per ``edit_interval_s`` (several pieces of a long reply included)."""
        wait = self._last_write + self.edit_interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_write = time.monotonic()

    async def _finish(self) -> None:
        """The final edit: wait out any hold, then retry through 429s until the whole text is shown."""
        text = final_text(self.run_)
        wait = self._hold_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            await _retrying(lambda: self._flush(text), self.max_retry_wait_s)
        except ChannelError as exc:
            log.warning("final reply of run %s not delivered: %s", self.run_.run_id, exc)
            raise
