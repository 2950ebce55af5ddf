"""``GatewayClient``: the Python SDK's connection to a gateway, native protocol.

It does the signed handshake, matches responses to requests, fans events out
to ``on()`` handlers and ``events()`` iterators, sends a heartbeat, and, once
connected, reconnects forever with exponential backoff and jitter. A run
iterated with ``run_agent()`` survives a reconnect: the missed events are
fetched with ``agent.replay`` from the last per-run ``seq`` seen, so nothing is
lost and nothing is yielded twice.

Example::

    async with GatewayClient("ws://127.0.0.1:18789", token="...") as gw:
        print(await gw.call("health"))
        async for item in gw.run_agent("hello", session_key="main"):
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
import platform as _platform
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import websockets
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection

from .. import __version__
from ..protocol import _json
from ..protocol.frames import describe_validation_error
from ..protocol.methods import ADMIN, METHODS, READ, WRITE
from .errors import (
    AuthError,
    ConnectionLostError,
    GatewayError,
    InvalidRequestError,
    ReplayGapError,
    RequestTimeoutError,
    UnavailableError,
    error_from_shape,
)
from .identity import DeviceIdentity

__all__ = ["RECONNECTED", "GatewayClient"]

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]

# Put on every ``events()`` queue after a reconnect's handshake, before the new socket's events.
RECONNECTED: Final[dict[str, Any]] = {"type": "reconnected"}
_TERMINAL_CHAT = frozenset({"final", "aborted", "error"})


class GatewayClient:
    def __init__(
        self,
        url: str = "ws://127.0.0.1:18789",
        *,
        token: str | None = None,
        device: DeviceIdentity | None = None,
        scopes: tuple[str, ...] = (READ, WRITE, ADMIN),
        role: str = "operator",
        client_id: str = "cli",
        client_mode: str = "cli",
        display_name: str | None = None,
        request_timeout: float = 30.0,
        max_size: int = 16 * 1024 * 1024,
        reconnect: bool = True,
        heartbeat_interval: float = 30.0,
        backoff_base: float = 0.25,
        backoff_max: float = 10.0,
        device_token: str | None = None,
        tls_fingerprint: str | None = None,
        commands: tuple[str, ...] | None = None,
        caps: tuple[str, ...] = (),
        permissions: dict[str, bool] | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.token = token
        # Sent as auth.deviceToken; replaced by the one a hello-ok hands out.
        self.device_token = device_token
        # SHA-256 hex of the server certificate (DER): pins a self-signed wss:// gateway.
        self.tls_fingerprint = tls_fingerprint.replace(":", "").lower() if tls_fingerprint else None
        # wss:// without a pin: verified against ``ca_file``, or ``ssl_context``, or the system CA store
        # (which honours SSL_CERT_FILE and SSL_CERT_DIR).
        self.ca_file = ca_file
        self.ssl_context = ssl_context
        self.commands = commands  # role "node": the commands it serves
        self.caps = caps
        self.permissions = permissions
        self.password = password
        self.device = device
        self.scopes = scopes
        self.role = role
        self.client_id = client_id
        self.client_mode = client_mode
        self.display_name = display_name
        self.request_timeout = request_timeout
        self.max_size = max_size
        self.reconnect = reconnect
        self.heartbeat_interval = heartbeat_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.hello: dict[str, Any] = {}
        self.last_seq = 0  # connection-level event seq of the current socket
        self.gaps = 0  # connection-level seq gaps seen (events the gateway dropped)
        self.reconnects = 0
        self.last_error: BaseException | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._handlers: dict[str, list[EventHandler]] = {}
        self._queues: list[asyncio.Queue[dict[str, Any] | None]] = []
        self._run_sessions: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connection ------------------------------------------------------------
    def _connect_params(self, nonce: str) -> dict[str, Any]:
        plat = _platform.system().lower() or "unknown"
        client: dict[str, Any] = {
            "id": self.client_id,
            "version": __version__,
            "platform": plat,
            "mode": self.client_mode,
        }
        if self.display_name:
            client["displayName"] = self.display_name
        params: dict[str, Any] = {
            "minProtocol": 3,
            "maxProtocol": 4,
            "client": client,
            "role": self.role,
            "scopes": list(self.scopes),
            "userAgent": f"agenthub-python/{__version__}",
        }
        auth: dict[str, str] = {}
        if self.token:
            auth["token"] = self.token
        if self.device_token:
            auth["deviceToken"] = self.device_token
        if self.password:
            auth["password"] = self.password
        if auth:
            params["auth"] = auth
        if self.role == "node":
            params["scopes"] = []
            params["caps"] = list(self.caps)
            params["commands"] = list(self.commands or ())
            if self.permissions is not None:
                params["permissions"] = dict(self.permissions)
        if self.device is not None:
            params["device"] = self.device.sign_connect(
                nonce=nonce,
                signed_at_ms=int(time.time() * 1000),
                client_id=self.client_id,
                client_mode=self.client_mode,
                role=self.role,
                scopes=list(params["scopes"]),
                token=self.token or self.device_token or "",
                platform=plat,
            )
        return params

    async def connect(self) -> dict[str, Any]:
        """Open the socket, answer the challenge, and return the hello-ok payload.

        Raises the typed error of a refused connect (e.g. ``AuthTokenMismatchError``)
        or ``OSError`` when the gateway cannot be reached; reconnection starts only
        after this first connect succeeded.
        """
        self._closing = False
        hello = await self._handshake()
        self.closed.clear()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        return hello

    async def _handshake(self) -> dict[str, Any]:
        ctx = self._tls_context()
        ws = await websockets.connect(self.url, max_size=self.max_size, open_timeout=self.request_timeout, ssl=ctx)
        if self.tls_fingerprint and ctx is not None:
            self._check_fingerprint(ws)
        try:
            async with asyncio.timeout(self.request_timeout):
                challenge = _json.loads(await ws.recv())
                if challenge.get("event") != "connect.challenge":
                    raise GatewayError(f"expected connect.challenge, got {challenge.get('event')}")
                rid = f"connect-{uuid.uuid4().hex[:8]}"
                params = self._connect_params(challenge["payload"]["nonce"])
                await ws.send(_json.dumps_str({"type": "req", "id": rid, "method": "connect", "params": params}))
                while True:
                    frame = _json.loads(await ws.recv())
                    if frame.get("type") == "res" and frame.get("id") == rid:
                        break
        except websockets.ConnectionClosed as exc:
            raise UnavailableError(f"gateway closed the connection: {exc}") from None
        except BaseException:
            await ws.close()
            raise
        if not frame.get("ok"):
            await ws.close()
            err = error_from_shape(frame.get("error") or {})
            if err.detail_code == "AUTH_DEVICE_TOKEN_MISMATCH":
                self.device_token = None  # rotated or revoked: the next attempt goes without it
            raise err
        self.hello = frame["payload"]
        issued = (self.hello.get("auth") or {}).get("deviceToken")
        if isinstance(issued, str) and issued:
            self.device_token = issued
        self.last_seq = 0
        self._ws = ws
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        self.connected.set()
        # ``health`` is an operator method: nodes rely on WebSocket pings instead.
        if self.heartbeat_interval > 0 and self._heartbeat is None and self.role != "node":
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        return self.hello

    def _tls_context(self) -> ssl.SSLContext | None:
        """None for ws://; for wss:// a pinned context (``tls_fingerprint``) or a verifying one."""
        if not self.url.lower().startswith("wss:"):
            return None
        if self.tls_fingerprint:
            return _pinned_context()
        if self.ssl_context is None:
            self.ssl_context = ssl.create_default_context(cafile=self.ca_file)
            self.ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        return self.ssl_context

    def _check_fingerprint(self, ws: ClientConnection) -> None:
        ssl_object = ws.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        actual = hashlib.sha256(der).hexdigest() if der else ""
        if not hmac.compare_digest(actual, self.tls_fingerprint or ""):
            ws.transport.abort()
            raise GatewayError(
                f"TLS certificate fingerprint mismatch (got {actual or 'none'})", code="TLS_FINGERPRINT_MISMATCH"
            )

    async def _supervise(self) -> None:
        """Wait for each socket to end, then reconnect with backoff and jitter until ``close()``."""
        try:
            while True:
                assert self._reader is not None
                await self._reader
                if self._closing or not self.reconnect:
                    return
                attempt = 0
                while not self._closing:
                    attempt += 1
                    cap = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
                    await asyncio.sleep(cap / 2 + random.random() * cap / 2)
                    try:
                        await self._handshake()
                    except AuthError as exc:
                        self.last_error = exc
                        log.error("reconnect refused: %s", exc.message)
                        return
                    except (OSError, GatewayError, TimeoutError, websockets.InvalidHandshake) as exc:
                        self.last_error = exc
                        log.info("reconnect attempt %d failed: %s", attempt, exc)
                        continue
                    self.reconnects += 1
                    log.info("reconnected to %s after %d attempt(s)", self.url, attempt)
                    for q in self._queues:
                        q.put_nowait(RECONNECTED)
                    break
        finally:
            self.connected.clear()
            self.closed.set()
            for q in self._queues:
                q.put_nowait(None)

    async def _beat(self) -> None:
        """Call ``health`` every ``heartbeat_interval``; a silent gateway gets its socket closed."""
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            ws = self._ws
            if ws is None or not self.connected.is_set():
                continue
            try:
                await self.call("health", timeout=min(self.request_timeout, 10.0))
            except GatewayError as exc:
                if self._ws is ws and not self._closing:
                    log.warning("heartbeat failed (%s); reconnecting", exc.message)
                    ws.transport.abort()

    async def close(self) -> None:
        self._closing = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._ws is not None:
            await self._ws.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def drop_connection(self) -> None:
        """Abort the socket without a close handshake, as a network failure would (for tests)."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                frame = _json.loads(raw)
                kind = frame.get("type")
                if kind == "res":
                    queue = self._pending.get(frame.get("id", ""))
                    if queue is not None:
                        queue.put_nowait(frame)
                elif kind == "event":
                    self._dispatch_event(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.connected.clear()
            if self._ws is ws:
                self._ws = None
            lost = {
                "type": "res",
                "ok": False,
                "lost": True,
                "error": {"code": "UNAVAILABLE", "message": "connection closed", "retryable": True},
            }
            for queue in self._pending.values():
                queue.put_nowait(lost)

    def _dispatch_event(self, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if isinstance(seq, int):
            if self.last_seq and seq > self.last_seq + 1:
                self.gaps += 1
            self.last_seq = seq
        for handler in self._handlers.get(frame["event"], []) + self._handlers.get("*", []):
            try:
                handler(frame)
            except Exception:
                log.exception("event handler failed")
        for q in self._queues:
            q.put_nowait(frame)

    # -- API ---------------------------------------------------------------------
    def on(self, event: str, handler: EventHandler) -> Callable[[], None]:
        """Call ``handler(frame)`` for each event named ``event`` (``"*"`` for all); returns an unsubscribe."""
        self._handlers.setdefault(event, []).append(handler)
        return lambda: self._handlers[event].remove(handler)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event frame, and ``RECONNECTED`` after each reconnect, until the client closes."""
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._queues.append(q)
        try:
            while (frame := await q.get()) is not None:
                yield frame
        finally:
            self._queues.remove(q)

    async def _send(self, method: str, params: Any) -> tuple[str, asyncio.Queue[dict[str, Any]]]:
        spec = METHODS.get(method)
        if spec is not None:  # checked against the protocol's params model before it is sent
            try:
                spec.params.model_validate(params or {})
            except ValidationError as exc:
                message = describe_validation_error(exc, "invalid params: ")
                raise InvalidRequestError(message, code="INVALID_REQUEST") from None
        ws = self._ws
        if ws is None or not self.connected.is_set():
            raise ConnectionLostError("not connected", retryable=True)
        rid = f"r{next(self._ids)}"
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending[rid] = queue
        try:
            await ws.send(_json.dumps_str({"type": "req", "id": rid, "method": method, "params": params or {}}))
        except websockets.ConnectionClosed:
            self._pending.pop(rid, None)
            raise ConnectionLostError("connection closed", retryable=True) from None
        return rid, queue

    @staticmethod
    def _unwrap(frame: dict[str, Any]) -> Any:
        if frame.get("ok"):
            return frame.get("payload")
        if frame.get("lost"):
            raise ConnectionLostError("connection closed before the answer", retryable=True)
        raise error_from_shape(frame.get("error") or {})

    async def call(self, method: str, params: Any = None, *, timeout: float | None = None) -> Any:
        """Send one request and return its payload.

        Raises the ``GatewayError`` subclass of the wire error, ``RequestTimeoutError``
        after ``timeout`` (default ``request_timeout``) seconds, or ``ConnectionLostError``
        when the socket closes first (the client reconnects by itself; retry the call
        once ``connected`` is set, with the same idempotency key for side effects).
        """
        limit = timeout or self.request_timeout
        try:
            async with asyncio.timeout(limit):
                rid, queue = await self._send(method, params)
                try:
                    return self._unwrap(await queue.get())
                finally:
                    self._pending.pop(rid, None)
        except TimeoutError as exc:
            if isinstance(exc, GatewayError):
                raise
            raise RequestTimeoutError(f"{method}: no answer within {limit:g}s", retryable=True) from None

    async def call_retrying(self, method: str, params: Any = None, *, timeout: float | None = None) -> Any:
        """``call`` that waits out reconnects (safe for reads and idempotency-keyed writes)."""
        limit = timeout or self.request_timeout
        async with asyncio.timeout(limit):
            while True:
                await self._wait_connected()
                try:
                    return await self.call(method, params, timeout=limit)
                except ConnectionLostError:
                    continue

    async def _wait_connected(self) -> None:
        while not self.connected.is_set():
            if self.closed.is_set():
                raise UnavailableError("client closed") from self.last_error
            waiter = asyncio.ensure_future(self.connected.wait())
            closer = asyncio.ensure_future(self.closed.wait())
            try:
                await asyncio.wait({waiter, closer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                closer.cancel()

    async def run_agent(
        self,
        message: str,
        *,
        session_key: str | None = None,
        idempotency_key: str | None = None,
        timeout: float = 600.0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Start a run and yield ``{"type": "accepted", ...}``, its ``agent``/``chat`` event
        frames in order, then ``{"type": "result", runId, status, summary, ...}``.

        ``agent`` events are numbered 1..n per run; a ``chat`` event carries the seq
        of the agent event it derives from. Across a reconnect the missed events
        come from ``agent.replay`` after the last agent seq seen (their frames carry
        ``"replayed": True``); each agent seq and each chat seq is yielded once. If
        the gateway no longer holds them (restart, retention), a ``{"type": "gap", ...}``
        item is yielded and the result follows from ``agent.wait``.
        """
        key = idempotency_key or uuid.uuid4().hex
        params: dict[str, Any] = {"message": message, "idempotencyKey": key}
        if session_key:
            params["sessionKey"] = session_key
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._queues.append(q)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout(timeout):
                # Idempotent: re-sending after a lost connection returns the same run.
                accepted = await self.call_retrying("agent", params, timeout=timeout)
                run_id: str = accepted["runId"]
                self._run_sessions[run_id] = session_key or "main"
                yield {"type": "accepted", **accepted}
                last = {"agent": 0, "chat": 0}  # the highest seq yielded, per event family
                ended = False
                while not ended:
                    frame = await q.get()
                    if frame is None:
                        raise UnavailableError("client closed during the run") from self.last_error
                    if frame is RECONNECTED:
                        try:
                            replay = await self.call("agent.replay", {"runId": run_id, "afterSeq": last["agent"]})
                        except ConnectionLostError:
                            continue  # the next RECONNECTED retries
                        except ReplayGapError as exc:
                            yield {
                                "type": "gap",
                                "runId": run_id,
                                "afterSeq": last["agent"],
                                "reason": exc.message,
                            }
                            break
                        for ev in replay["events"]:
                            item = {"type": "event", "event": ev["event"], "payload": ev["payload"], "replayed": True}
                            if _fresh(last, ev["event"], ev["payload"]):
                                yield item
                                ended = ended or _is_terminal(item)
                        continue
                    payload = frame.get("payload") or {}
                    if frame.get("event") not in ("agent", "chat") or payload.get("runId") != run_id:
                        continue
                    if not _fresh(last, frame["event"], payload):
                        continue
                    yield frame
                    ended = _is_terminal(frame)
                left_ms = max(0, int((deadline - asyncio.get_running_loop().time()) * 1000))
                result = await self.call_retrying(
                    "agent.wait",
                    {"runId": run_id, "timeoutMs": min(left_ms, 3_600_000)},
                    timeout=left_ms / 1000 + self.request_timeout,
                )
                yield {"type": "result", **result}
        finally:
            self._queues.remove(q)

    async def abort(self, run_id: str | None = None, *, session_key: str | None = None) -> Any:
        """Abort one run (``abort(run_id)``) or every run of a session (``abort(session_key=...)``).

        The session of a run started with ``run_agent`` is remembered; for other runs
        pass ``session_key`` too. Returns ``{"ok", "aborted", "runIds"}``.
        """
        key = session_key or (self._run_sessions.get(run_id, "main") if run_id else None)
        if key is None:
            raise ValueError("abort() needs a run_id or a session_key")
        params: dict[str, Any] = {"sessionKey": key}
        if run_id:
            params["runId"] = run_id
        return await self.call("chat.abort", params)


def _fresh(last: dict[str, int], event: str, payload: dict[str, Any]) -> bool:
    """Whether a run event was not yielded yet (its seq is past the last one of its family); records it."""
    seq = payload.get("seq")
    if not isinstance(seq, int):
        return True
    if seq <= last[event]:
        return False
    last[event] = seq
    return True


def _is_terminal(frame: dict[str, Any]) -> bool:
    payload = frame.get("payload") or {}
    return frame.get("event") == "chat" and payload.get("state") in _TERMINAL_CHAT


def _pinned_context() -> ssl.SSLContext:
    """TLS without CA checks: the certificate is pinned by its fingerprint instead."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
