"""aiohttp glue: adapts a server WebSocket to ``core.connection.Transport``.

Server-to-client frames are unmasked, so a frame is just a header plus the
payload: ``write`` builds the header and hands the bytes to the asyncio
transport without awaiting. Nothing else in agenthub knows which server
library carries the bytes.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from ..core.connection import Connection
from ..core.node import Node
from ..core.observe import bind_log_context
from ..dialects.native import NativeSession

__all__ = [
    "AiohttpTransport",
    "FrameCounters",
    "SocketSession",
    "accept",
    "native_handler",
    "read_frames",
    "run_socket",
    "text_frame",
]

log = logging.getLogger(__name__)


CLOSE_GRACE_S = 5.0  # how long a closing peer gets to read its close frame
_CLOSING: set[asyncio.Task[bool]] = set()


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


@dataclass(slots=True)
class FrameCounters:
    frames_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0


class AiohttpTransport:
    __slots__ = ("_closing", "_counters", "_transport", "_ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, counters: FrameCounters) -> None:
        self._ws = ws
        self._transport = transport
        self._counters = counters
        self._closing = False

    def write(self, data: bytes) -> None:
        transport = self._transport
        if self._closing or transport.is_closing():
            return
        transport.write(text_frame(data))
        self._counters.frames_out += 1
        self._counters.bytes_out += len(data)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def close(self, code: int, reason: str) -> None:
        """Send the close frame, and abort the TCP connection if it is not gone in time.

        A peer that stopped reading never drains the queued bytes, and aiohttp's
        close would wait for it forever; after ``CLOSE_GRACE_S`` the socket is
        aborted and its buffer freed (such a peer then sees a reset, not 1008).
        """
        if self._closing:
            return
        self._closing = True
        loop = asyncio.get_running_loop()
        # A close reason is at most 123 bytes; cut on a character boundary so it stays valid UTF-8.
        message = reason.encode()[:123].decode("utf-8", "ignore").encode()
        task = loop.create_task(self._ws.close(code=code, message=message))
        _CLOSING.add(task)  # keep a reference until done, or the task may be collected mid-close
        task.add_done_callback(_CLOSING.discard)
        transport = self._transport
        loop.call_later(CLOSE_GRACE_S, transport.abort)  # a no-op once the socket is gone


class SocketSession(Protocol):
    """What a dialect's per-socket object offers the read loop."""

    async def receive(self, data: str | bytes) -> None: ...

    def closed(self) -> None: ...


async def accept(
    request: web.Request, node: Node, counters: FrameCounters
) -> tuple[web.WebSocketResponse, Connection | None]:
    """Upgrade to a WebSocket and wrap it as a core ``Connection`` (None if the peer left)."""
    ws = web.WebSocketResponse(max_msg_size=node.limits.max_payload, compress=False, autoping=True, timeout=5.0)
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # pragma: no cover - the peer vanished during the upgrade
        return ws, None
    conn = Connection(
        node.new_conn_id(),
        AiohttpTransport(ws, transport, counters),
        request.remote or "",
        node.limits.max_buffered_bytes,
    )
    return ws, conn


async def read_frames(
    ws: web.WebSocketResponse, receive: Callable[[str | bytes], Awaitable[None]], counters: FrameCounters
) -> None:
    """Hand each text (or binary) frame to ``receive`` in order until the socket ends."""
    async for msg in ws:
        if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
            counters.frames_in += 1
            await receive(msg.data)
        elif msg.type is WSMsgType.ERROR:
            break


async def run_socket(ws: web.WebSocketResponse, session: SocketSession, counters: FrameCounters) -> None:
    """Read frames into the session until the socket ends, then tell the session."""
    try:
        await read_frames(ws, session.receive, counters)
    finally:
        session.closed()


def native_handler(
    node: Node, counters: FrameCounters, identify: Callable[[web.Request], str | None] | None = None
) -> Handler:
    """The native WebSocket endpoint; ``identify`` reads a trusted proxy's identity header."""

    async def handle(request: web.Request) -> web.StreamResponse:
        ws, conn = await accept(request, node, counters)
        if conn is None:
            return ws
        if identify is not None:
            conn.proxy_user = identify(request)
        bind_log_context(conn_id=conn.conn_id)  # every line this socket's task logs names the connection
        # DEBUG: the "authenticated" line (core.node) says it at INFO once the peer proved who it is.
        log.debug("connection open: conn=%s dialect=native ip=%s", conn.conn_id, conn.remote_ip)
        session = NativeSession(node, conn)
        session.open()
        try:
            await run_socket(ws, session, counters)
        finally:
            log.info("connection closed: conn=%s code=%s", conn.conn_id, ws.close_code)
        return ws

    return handle
