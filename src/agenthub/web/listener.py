"""Every listener's TCP door: a connection cap and a header-read deadline (slowloris).

aiohttp closes an HTTP connection that has no request in progress after its
``keepalive_timeout`` (``limits.idle_timeout_s``, given to each ``AppRunner``),
but it neither caps how many connections it accepts nor gives a request head
its own deadline. ``GuardedSite`` serves an ``AppRunner`` like ``TCPSite``,
with each connection's protocol wrapped in ``_GuardedConnection``:

- past ``limits.max_connections_per_listener`` on this listener, or
  ``limits.max_connections`` on all of them (``ConnectionDoor``, shared), a new
  connection is answered ``503`` and closed at once, so descriptors stay free
  for the gateway itself and every established client keeps working; the first
  refusal, and then at most one every ``REPORT_INTERVAL_S``, is logged at
  WARNING with the counts and the setting to raise;
- a connection must finish its first request head (``\\r\\n\\r\\n``) within
  ``limits.header_timeout_s`` of being accepted, or it is answered ``408`` and
  closed: a silent or trickling client no longer holds a descriptor for an
  hour. Later requests on a keep-alive connection are bounded by the idle
  timeout. The wrapper only counts and watches the first head; every byte
  still goes to aiohttp, and after the head (and after a WebSocket upgrade)
  it is a single attribute check per read. With TLS the same deadline bounds
  the TLS handshake.

The total cap is lowered to what the process's descriptor limit allows
(raising the soft limit towards the hard one first), with a log line.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["ConnectionDoor", "DoorLimits", "GuardedSite", "fit_to_descriptors", "peer_gone_middleware"]

log = logging.getLogger(__name__)

REPORT_INTERVAL_S = 10.0  # at most one "cap reached" line per listener this often
FD_RESERVE = 64  # descriptors kept for the database, logs and outgoing connections
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 31\r\n\r\ntoo many connections, try later"
)
_HEAD_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


@dataclass(slots=True)
class DoorLimits:
    """The named settings (``limits.*``) the door applies; replaced as a whole when settings change."""

    header_timeout_s: float = 10.0
    max_connections: int = 16_384
    max_connections_per_listener: int = 12_288


@dataclass(slots=True)
class _ListenerCount:
    name: str
    open: int = 0
    refused: int = 0  # since the last report
    reported_at: float = field(default=-REPORT_INTERVAL_S)


class ConnectionDoor:
    """Counts open connections per listener and in total; one per gateway, shared by its listeners."""

    def __init__(self, limits: DoorLimits) -> None:
        self.limits = limits
        self.open = 0
        self.refused_total = 0
        self.head_timeouts = 0
        self._listeners: dict[str, _ListenerCount] = {}

    def listener(self, name: str) -> _ListenerCount:
        return self._listeners.setdefault(name, _ListenerCount(name))

    def enter(self, here: _ListenerCount) -> bool:
        lim = self.limits
        if here.open >= lim.max_connections_per_listener or self.open >= lim.max_connections:
            self.refused_total += 1
            here.refused += 1
            self._report(here)
            return False
        here.open += 1
        self.open += 1
        return True

    def leave(self, here: _ListenerCount) -> None:
        here.open -= 1
        self.open -= 1

    def _report(self, here: _ListenerCount) -> None:
        now = time.monotonic()
        if now - here.reported_at < REPORT_INTERVAL_S:
            return
        lim = self.limits
        which = (
            f"limits.max_connections_per_listener={lim.max_connections_per_listener}"
            if here.open >= lim.max_connections_per_listener
            else f"limits.max_connections={lim.max_connections}"
        )
        log.warning(
            "connection cap reached on the %s listener (%d open here, %d on all listeners; %s): "
            "refused %d new connection(s) with 503 since the last report",
            here.name,
            here.open,
            self.open,
            which,
            here.refused,
        )
        here.refused = 0
        here.reported_at = now


class _GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the cap and the header deadline."""

    __slots__ = ("_door", "_here", "_inner", "_make", "_tail", "_timer", "_transport")

    def __init__(self, make: Callable[[], asyncio.Protocol], door: ConnectionDoor, here: _ListenerCount) -> None:
        self._make = make
        self._door = door
        self._here = here
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # last bytes seen, so a head end split across reads is found

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._transport = transport
        if not self._door.enter(self._here):
            transport.write(_BUSY)
            transport.close()
            return
        self._inner = self._make()
        self._timer = asyncio.get_running_loop().call_later(self._door.limits.header_timeout_s, self._head_timeout)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self._timer.cancel()
                self._timer = None
                self._tail = b""
            else:
                self._tail = seen[-3:]
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        inner, self._inner = self._inner, None
        if inner is not None:
            self._door.leave(self._here)
            inner.connection_lost(exc)

    def _head_timeout(self) -> None:
        self._timer = None
        self._door.head_timeouts += 1
        transport = self._transport
        if transport is not None and not transport.is_closing():
            log.debug("closing a connection on the %s listener: no request head in time", self._here.name)
            transport.write(_HEAD_TIMEOUT)
            transport.close()


class GuardedSite(web.BaseSite):
    """``web.TCPSite`` with every accepted connection behind a ``ConnectionDoor``."""

    __slots__ = ("_bound_port", "_door", "_here", "_host", "_port", "_reuse_address", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        door: ConnectionDoor,
        name: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 4096,
        reuse_address: bool = True,
        reuse_port: bool = False,
    ) -> None:
        """``reuse_port``: several processes (``--workers N``) bind one port; the kernel spreads connections."""
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._door = door
        self._here = door.listener(name)
        self._reuse_address = reuse_address
        self._reuse_port = reuse_port
        self._bound_port = port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._bound_port}"

    @property
    def port(self) -> int:
        """The port actually bound (``0`` asks the system for a free one)."""
        return self._bound_port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        door, here = self._door, self._here

        def factory() -> asyncio.Protocol:
            return _GuardedConnection(server, door, here)

        extra: dict[str, Any] = {}
        if self._ssl_context is not None:
            extra["ssl_handshake_timeout"] = door.limits.header_timeout_s
        self._server = await asyncio.get_running_loop().create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port or None,
            **extra,
        )
        sockets = self._server.sockets
        if sockets:
            self._bound_port = sockets[0].getsockname()[1]


def fit_to_descriptors(limits: DoorLimits) -> DoorLimits:
    """``limits`` with the total cap lowered to what the descriptor limit allows.

    Raises the soft ``RLIMIT_NOFILE`` towards the hard limit first (as Go's
    runtime does), since the default soft limit (often 1024) is far below what
    a gateway holding thousands of sockets needs.
    """
    want = limits.max_connections + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= want:
        return limits
    fitted = max(1, soft - FD_RESERVE)
    log.warning(
        "limits.max_connections lowered from %d to %d: the process may open only %d file descriptors "
        "(raise it with `ulimit -n`)",
        limits.max_connections,
        fitted,
        soft,
    )
    return DoorLimits(limits.header_timeout_s, fitted, min(limits.max_connections_per_listener, fitted))


@web.middleware
async def peer_gone_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A client that hangs up mid-request is its own doing, not a server error.

    aiohttp ends the body of a request whose connection was lost with
    ``ConnectionResetError``, and a handler reading it would reach aiohttp's
    "Error handling request" traceback (a hostile client could fill the log
    with them). Nobody is left to answer; the line says so at DEBUG.
    """
    try:
        return await handler(request)
    except ConnectionResetError:
        transport = request.transport
        if transport is not None and not transport.is_closing():
            raise  # the connection is fine: a real error of the handler's
        log.debug("%s %s from %s: the client went away mid-request", request.method, request.path, request.remote)
        return web.Response(status=499)  # nginx's "client closed request"; never sent
