"""The native dialect: OpenClaw's gateway protocol (seed 001) over one WebSocket.

It is the thinnest dialect, because core events already use its payload
shapes: this module runs the handshake, turns request frames into core calls,
and encodes events once per publication for every native client.

In-flight requests. A request is in flight from its frame until its response
is written; methods that may wait long (``DETACHED``) run as their own task, so
the socket keeps reading. Past ``limits.max_inflight_per_connection`` a new
request is answered at once with ``UNAVAILABLE`` (``retryable: true``,
``details.reason`` ``TOO_MANY_INFLIGHT``) and the socket stays open: the client
may retry once earlier requests have been answered. (An ``agent`` call's second
response waits on its run, not on a task; the run is what it holds.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..core.bus import Publication
from ..core.connection import Connection, ConnState
from ..core.node import Node
from ..core.rpc import Call
from ..core.runs import now_ms
from ..protocol.errors import CloseCode, ErrorCode, FrameError, HandshakeError, RpcError
from ..protocol.frames import (
    RequestFrame,
    decode,
    encode_error,
    encode_response,
    event_prefix,
    finish_event,
)
from ..protocol.handshake import HandshakeLimits, ServerHandshake
from ..protocol.methods import EVENT_SCOPES

__all__ = ["NATIVE", "NativeSession"]

log = logging.getLogger(__name__)

NATIVE = "native"
# Methods that may wait a long time run as their own task, so the socket keeps reading.
DETACHED = frozenset({"agent.wait", "node.invoke"})


class NativeSession:
    """One native client: handshake, then requests in, events out."""

    __slots__ = ("_deadline", "_denied", "_inflight", "_preauth", "_tasks", "conn", "handshake", "node")

    def __init__(self, node: Node, conn: Connection) -> None:
        self.node = node
        self.conn = conn
        limits = node.limits
        self.handshake = ServerHandshake(
            now_ms(),
            HandshakeLimits(limits.pre_connect_max_bytes, limits.signature_skew_ms),
        )
        self._deadline: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._preauth = False  # counted in node.preauth until connect succeeds or the socket ends
        self._denied = 0  # FORBIDDEN answers in a row; past the limit the socket is closed
        self._inflight = 0  # requests received and not yet answered

    def open(self) -> None:
        """Register, send the challenge, and start the connect deadline."""
        self.node.open_connection(self.conn)
        self._preauth = self.node.preauth.try_enter(self.conn.remote_ip)
        if not self._preauth:
            self.conn.close(CloseCode.POLICY_VIOLATION, "too many unauthenticated connections")
            return
        # The challenge precedes the session's event numbering, so it carries no seq.
        self.conn.send(event_prefix("connect.challenge", self.handshake.challenge()) + b"}")
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.node.limits.handshake_timeout_ms / 1000, self._connect_timeout)

    def _connect_timeout(self) -> None:
        if self.conn.state is ConnState.AWAITING_CONNECT:
            self.conn.close(CloseCode.POLICY_VIOLATION, "connect timeout")

    def _leave_preauth(self) -> None:
        if self._preauth:
            self._preauth = False
            self.node.preauth.leave(self.conn.remote_ip)

    def closed(self) -> None:
        self._leave_preauth()
        if self._deadline is not None:
            self._deadline.cancel()
        for task in self._tasks:
            task.cancel()
        self.node.hub.remove(self)
        self.node.close_connection(self.conn)

    async def receive(self, data: str | bytes) -> None:
        """Handle one inbound text frame."""
        if self.conn.state is ConnState.AWAITING_CONNECT:
            await self._receive_connect(data)
        elif self.conn.state is ConnState.OPEN:
            await self._receive_request(data)

    async def _receive_connect(self, data: str | bytes) -> None:
        try:
            accepted = self.handshake.receive_connect(data, now_ms())
            await self.node.authenticate(self.conn, accepted)
        except HandshakeError as exc:
            if exc.request_id is not None:
                shape = RpcError(
                    exc.code, exc.message, details=exc.details, retry_after_ms=exc.retry_after_ms
                ).to_shape()
                self.conn.send(encode_error(exc.request_id, shape))
            self.conn.close(exc.close_code, exc.message[:120])
            return
        if self._deadline is not None:
            self._deadline.cancel()
        self._leave_preauth()
        self.conn.send(encode_response(accepted.request_id, self.node.hello(self.conn, accepted)))
        self.node.hub.add(self)
        self.node.announce(self.conn)

    async def _receive_request(self, data: str | bytes) -> None:
        try:
            frame = decode(data)
        except FrameError as exc:
            if exc.request_id is None:
                self.conn.close(CloseCode.POLICY_VIOLATION, exc.reason[:120])
                return
            self._send_error(exc.request_id, RpcError(ErrorCode.INVALID_REQUEST, exc.reason))
            return
        if not isinstance(frame, RequestFrame):
            self.conn.close(CloseCode.POLICY_VIOLATION, "clients send only req frames")
            return
        if frame.method == "connect":
            self._send_error(frame.id, RpcError(ErrorCode.INVALID_REQUEST, "already connected"))
            return
        rid = frame.id
        limit = self.node.limits.max_inflight_per_connection
        if self._inflight >= limit:
            self._send_error(
                rid,
                RpcError(
                    ErrorCode.UNAVAILABLE,
                    f"too many requests in flight on this connection (limit {limit}); retry after an answer",
                    details={"reason": "TOO_MANY_INFLIGHT", "limit": limit},
                    retryable=True,
                ),
            )
            return
        call = Call(
            self.conn,
            rid,
            frame.method,
            late_reply=lambda payload: self._send_result(rid, payload),
            late_error=lambda err: self._send_error(rid, err),
        )
        self._inflight += 1
        if frame.method in DETACHED:
            task = asyncio.get_running_loop().create_task(self._run(call, frame.params))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            await self._run(call, frame.params)

    async def _run(self, call: Call, params: Any) -> None:
        """Dispatch one call and answer it; ``_inflight`` was counted up when its frame was read."""
        try:
            ok, payload = await self.node.dispatch(call, params)
            if ok:
                self._denied = 0
                self._send_result(call.request_id, payload)
            else:
                self.conn.send(encode_error(call.request_id, payload))
                if payload.get("code") == ErrorCode.FORBIDDEN:
                    self._denied += 1
                    if self._denied > self.node.security.max_unauthorized_calls:
                        self.conn.close(CloseCode.POLICY_VIOLATION, "too many unauthorized calls")
                else:
                    self._denied = 0
        finally:
            self._inflight -= 1
            # Whatever the handler set off (a run, a second response) follows the response, even
            # when the socket is gone: a run accepted here must still be launched.
            call.responded()

    def _send_result(self, request_id: str, payload: Any) -> None:
        self.conn.send(encode_response(request_id, payload))

    def _send_error(self, request_id: str, err: RpcError) -> None:
        self.conn.send(encode_error(request_id, err.to_shape()))

    def deliver(self, pub: Publication) -> None:
        conn = self.conn
        if conn.state is not ConnState.OPEN:
            return
        if pub.event not in EVENT_SCOPES or not conn.has_scope(EVENT_SCOPES[pub.event]):
            return
        prefix = pub.encoded.get(NATIVE)
        if prefix is None:
            prefix = pub.encoded[NATIVE] = event_prefix(pub.event, pub.payload, pub.state_version)
        seq = conn.next_seq(pub.droppable, len(prefix))
        if seq is not None:
            conn.send(finish_event(prefix, seq))
