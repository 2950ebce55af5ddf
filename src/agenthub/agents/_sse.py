"""A small Server-Sent Events parser (WHATWG HTML "event stream interpretation").

Both OpenAI-compatible servers and Anthropic stream over SSE. We parse bytes
ourselves rather than using ``httpx.Response.aiter_lines`` because that splits
on every Unicode line break (``str.splitlines`` semantics), which would corrupt
a JSON payload carrying a raw U+2028 or form feed. SSE only knows CR, LF and
CRLF, and those bytes never occur inside a multi-byte UTF-8 sequence, so each
complete line can be decoded on its own.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "aiter_sse"]

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: ``event`` defaults to ``"message"`` as the spec says."""

    event: str
    data: str
    id: str | None = None


class SSEDecoder:
    """Incremental decoder: feed byte chunks of any size, get complete events back."""

    def __init__(self) -> None:
        self._buf = b""
        self._pending_cr = False  # a chunk ended in CR: a leading LF next is part of it
        self._first_line = True
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = False
        self._buf += chunk
        events: list[SSEEvent] = []
        pos = 0
        while (m := _LINE_END.search(self._buf, pos)) is not None:
            event = self._line(self._buf[pos : m.start()])
            if event is not None:
                events.append(event)
            pos = m.end()
            if m.group() == b"\r" and pos == len(self._buf):
                self._pending_cr = True
        self._buf = self._buf[pos:]
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream. Leniently dispatches a final event that lacks its blank line."""
        events: list[SSEEvent] = []
        if self._buf:
            event = self._line(self._buf)
            self._buf = b""
            if event is not None:
                events.append(event)
        event = self._line(b"")
        if event is not None:
            events.append(event)
        return events

    def _line(self, raw: bytes) -> SSEEvent | None:
        line = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields are ignored: we never reconnect mid-turn.
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SSEEvent(event=self._event or "message", data="\n".join(self._data), id=self._last_id)
        self._event = ""
        self._data = []
        return event


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncGenerator[SSEEvent, None]:
    """Turn a byte stream (e.g. ``response.aiter_bytes()``) into SSE events."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.close():
        yield event
