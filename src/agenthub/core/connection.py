"""One peer of the gateway: its state, its identity, and its bounded outbound buffer.

Sends never await. A connection writes whole frames into its transport's
buffer; when that buffer is past half of ``max_buffered_bytes`` droppable events
(cumulative stream deltas) are skipped, and the skipped ``seq`` shows the
client the gap; past ``max_buffered_bytes`` the connection is closed 1008
"slow consumer". So one slow reader never delays anyone else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from ..protocol.errors import CloseCode

__all__ = ["ConnState", "Connection", "Principal", "Transport"]

log = logging.getLogger(__name__)


class ConnState(Enum):
    AWAITING_CONNECT = "awaiting_connect"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Transport(Protocol):
    """What core needs from a socket: whole-frame writes that never block."""

    def write(self, data: bytes) -> None: ...

    def buffered(self) -> int: ...

    def close(self, code: int, reason: str) -> None: ...


@dataclass(slots=True)
class Principal:
    """Who is on the other end, once ``connect`` succeeded."""

    role: str
    scopes: frozenset[str]
    client_id: str = ""
    client_mode: str = ""
    client_version: str = ""
    platform: str = ""
    display_name: str | None = None
    device_family: str | None = None
    instance_id: str | None = None
    device_id: str | None = None
    user_id: str | None = None
    caps: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


class Connection:
    """A transport plus the per-connection event ``seq`` and slow-consumer policy."""

    __slots__ = (
        "conn_id",
        "connected_at_ms",
        "dropped",
        "max_buffered_bytes",
        "principal",
        "proxy_user",
        "remote_ip",
        "seq",
        "state",
        "transport",
    )

    def __init__(self, conn_id: str, transport: Transport, remote_ip: str, max_buffered_bytes: int) -> None:
        self.conn_id = conn_id
        self.transport = transport
        self.remote_ip = remote_ip
        self.max_buffered_bytes = max_buffered_bytes
        self.state = ConnState.AWAITING_CONNECT
        self.principal: Principal | None = None
        self.proxy_user: str | None = None  # identity a trusted proxy vouched for (web.ws sets it)
        self.seq = 0
        self.dropped = 0
        self.connected_at_ms = 0

    def has_scope(self, scope: str | None) -> bool:
        return scope is None or (self.principal is not None and scope in self.principal.scopes)

    def send(self, data: bytes) -> bool:
        """Write one whole frame (a response or a must-deliver event)."""
        if self.state is ConnState.CLOSED or self.state is ConnState.CLOSING:
            return False
        if self.transport.buffered() + len(data) > self.max_buffered_bytes:
            log.warning(
                "slow consumer: conn=%s ip=%s has %d bytes unread (limits.max_buffered_bytes %d): closing",
                self.conn_id,
                self.remote_ip,
                self.transport.buffered(),
                self.max_buffered_bytes,
            )
            self.close(CloseCode.POLICY_VIOLATION, "slow consumer")
            return False
        self.transport.write(data)
        return True

    def next_seq(self, droppable: bool, size_hint: int) -> int | None:
        """Take the next event seq, or None when this droppable event is skipped for backpressure."""
        self.seq += 1
        if droppable and self.transport.buffered() + size_hint > self.max_buffered_bytes // 2:
            self.dropped += 1
            return None
        return self.seq

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        if self.state is ConnState.CLOSED or self.state is ConnState.CLOSING:
            return
        self.state = ConnState.CLOSING
        log.info("closing conn=%s code=%s reason=%s", self.conn_id, code, reason)
        self.transport.close(code, reason)
