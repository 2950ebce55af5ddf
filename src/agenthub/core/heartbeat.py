"""Heartbeat rules and the system-event queue, as plain data (no asyncio, no clock).

The silent-reply rule (OpenClaw's ``HEARTBEAT_OK`` convention, ``docs/gateway/heartbeat.md``):
a reply that starts or ends with ``HEARTBEAT_OK`` (or ``NO_REPLY``) and whose
remaining text is at most ``ack_max_chars`` characters (300 by default) is an
acknowledgment: nothing is delivered and the heartbeat event says ``ok-token``.
An empty reply is ``ok-empty``. A token in the middle of a reply means nothing.
Anything else is an alert, delivered to the configured channel (``sent``).

System events (``wake``, ``system-event``, cron ``systemEvent`` jobs) wait in a
per-session queue, bounded in count and length, until the session's next
heartbeat turn reads them as ``System:`` lines. They live in memory only, as in
OpenClaw: a restart drops them.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from dataclasses import dataclass

__all__ = ["ACK_TOKENS", "Reply", "SystemEventQueue", "classify_reply", "heartbeat_message"]

ACK_TOKENS = ("HEARTBEAT_OK", "NO_REPLY")
_EDGE = re.compile(r"^[\s*_`'\".,:;!-]+|[\s*_`'\".,:;!-]+$")


@dataclass(frozen=True, slots=True)
class Reply:
    """How a heartbeat (or cron) reply is treated: ``ok-empty``, ``ok-token`` or ``alert``."""

    status: str
    text: str  # what to deliver (the reply minus a leading/trailing token), "" when silent


def _strip_edges(text: str) -> str:
    return _EDGE.sub("", text)


def classify_reply(text: str, ack_max_chars: int = 300) -> Reply:
    """Apply the silent-reply rule to an assistant reply."""
    body = text.strip()
    if not body:
        return Reply("ok-empty", "")
    for token in ACK_TOKENS:
        bare = _strip_edges(body)
        if bare.startswith(token):
            rest = bare[len(token) :].strip()
        elif bare.endswith(token):
            rest = bare[: -len(token)].strip()
        else:
            continue
        if len(rest) <= ack_max_chars:
            return Reply("ok-token", "")
        return Reply("alert", rest)
    return Reply("alert", body)


def heartbeat_message(prompt: str, events: list[str]) -> str:
    """The heartbeat turn's user message: the prompt, then one ``System:`` line per queued event."""
    if not events:
        return prompt
    lines = "\n".join(f"System: {e}" for e in events)
    return f"{prompt}\n\n{lines}"


class SystemEventQueue:
    """Pending system events per session: at most ``max_events`` each, texts cut to ``max_chars``.

    The number of sessions is bounded too (``max_sessions``, oldest dropped), so
    a caller inventing session keys cannot grow memory without limit.
    """

    def __init__(self, max_events: int = 20, max_chars: int = 2000, max_sessions: int = 1000) -> None:
        self.max_events = max_events
        self.max_chars = max_chars
        self.max_sessions = max_sessions
        self._queues: OrderedDict[str, deque[str]] = OrderedDict()

    def push(self, session_key: str, text: str) -> str:
        """Queue ``text``; returns ``queued``, or ``coalesced`` when it repeats the newest pending event."""
        text = text.strip()[: self.max_chars]
        queue = self._queues.get(session_key)
        if queue is None:
            queue = self._queues[session_key] = deque(maxlen=self.max_events)
            while len(self._queues) > self.max_sessions:
                self._queues.popitem(last=False)
        else:
            self._queues.move_to_end(session_key)
        if queue and queue[-1] == text:
            return "coalesced"
        queue.append(text)
        return "queued"

    def peek(self, session_key: str) -> list[str]:
        return list(self._queues.get(session_key, ()))

    def take(self, session_key: str, read: list[str]) -> None:
        """Drop the events a finished turn has read (those still at the front of the queue)."""
        queue = self._queues.get(session_key)
        if queue is None:
            return
        for text in read:
            if queue and queue[0] == text:
                queue.popleft()
        if not queue:
            del self._queues[session_key]

    def pending(self, session_key: str) -> int:
        return len(self._queues.get(session_key, ()))
