"""``GatewayClient``: the Python SDK's connection to a gateway, native protocol.

It does the signed handshake, matches responses to requests (the ``agent``
method answers twice under one id), and fans events out to ``on()`` handlers
and ``events()`` iterators.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import platform as _platform
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from .. import __version__
from ..protocol import _json
from ..protocol.methods import ADMIN, READ, WRITE
from .errors import GatewayError, UnavailableError, error_from_shape
from .identity import DeviceIdentity

__all__ = ["GatewayClient"]

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]


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
    ) -> None:
        self.url = url
        self.token = token
        self.device = device
        self.scopes = scopes
        self.role = role
        self.client_id = client_id
        self.client_mode = client_mode
        self.display_name = display_name
        self.request_timeout = request_timeout
        self.max_size = max_size
        self.hello: dict[str, Any] = {}
        self.last_seq = 0
        self.gaps = 0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._handlers: dict[str, list[EventHandler]] = {}
        self._queues: list[asyncio.Queue[dict[str, Any] | None]] = []
        self._ids = itertools.count(1)
        self.closed = asyncio.Event()

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connection ------------------------------------------------------------
    def _connect_params(self, nonce: str) -> dict[str, Any]:
        plat = _platform.system().lower() or "unknown"
        client: dict[str, Any] = {"id": self.client_id, "version": __version__, "platform": plat,
                                  "mode": self.client_mode}
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
        if self.token:
            params["auth"] = {"token": self.token}
        if self.device is not None:
            params["device"] = self.device.sign_connect(
                nonce=nonce,
                signed_at_ms=int(time.time() * 1000),
                client_id=self.client_id,
                client_mode=self.client_mode,
                role=self.role,
                scopes=list(self.scopes),
                token=self.token or "",
                platform=plat,
            )
        return params

    async def connect(self) -> dict[str, Any]:
        """Open the socket, answer the challenge, and return the hello-ok payload."""
        self._ws = ws = await websockets.connect(self.url, max_size=self.max_size, open_timeout=self.request_timeout)
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
        if not frame.get("ok"):
            await ws.close()
            raise error_from_shape(frame.get("error") or {})
        self.hello = frame["payload"]
        self.closed.clear()
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        return self.hello

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

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
            self.closed.set()
            for queue in self._pending.values():
                queue.put_nowait({"type": "res", "ok": False, "error": {"code": "UNAVAILABLE",
                                                                        "message": "connection closed"}})
            for q in self._queues:
                q.put_nowait(None)

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
        """Call ``handler(frame)`` for each event named ``event`` (``"*"`` for all)."""
        self._handlers.setdefault(event, []).append(handler)
        return lambda: self._handlers[event].remove(handler)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event frame from now until the connection closes."""
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._queues.append(q)
        try:
            while (frame := await q.get()) is not None:
                yield frame
        finally:
            self._queues.remove(q)

    async def _send(self, method: str, params: Any) -> tuple[str, asyncio.Queue[dict[str, Any]]]:
        if self._ws is None:
            raise UnavailableError("not connected")
        rid = f"r{next(self._ids)}"
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending[rid] = queue
        await self._ws.send(_json.dumps_str({"type": "req", "id": rid, "method": method, "params": params or {}}))
        return rid, queue

    @staticmethod
    def _unwrap(frame: dict[str, Any]) -> Any:
        if frame.get("ok"):
            return frame.get("payload")
        raise error_from_shape(frame.get("error") or {})

    async def call(self, method: str, params: Any = None, *, timeout: float | None = None) -> Any:
        """Send one request and return its payload; raises a typed ``GatewayError``."""
        rid, queue = await self._send(method, params)
        try:
            async with asyncio.timeout(timeout or self.request_timeout):
                return self._unwrap(await queue.get())
        except TimeoutError:
            raise UnavailableError(f"{method} timed out", retryable=True) from None
        finally:
            self._pending.pop(rid, None)

    async def run_agent(
        self, message: str, *, session_key: str | None = None, idempotency_key: str | None = None,
        timeout: float = 600.0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the run's ``agent``/``chat`` events, then ``{"type": "result", ...}``."""
        params: dict[str, Any] = {"message": message, "idempotencyKey": idempotency_key or uuid.uuid4().hex}
        if session_key:
            params["sessionKey"] = session_key
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._queues.append(q)
        rid, responses = await self._send("agent", params)
        try:
            async with asyncio.timeout(timeout):
                accepted = self._unwrap(await responses.get())
                run_id = accepted["runId"]
                yield {"type": "accepted", **accepted}
                final_task = asyncio.ensure_future(responses.get())
                while True:
                    ev_task = asyncio.ensure_future(q.get())
                    done, _ = await asyncio.wait({ev_task, final_task}, return_when=asyncio.FIRST_COMPLETED)
                    if ev_task in done:
                        frame = ev_task.result()
                        if frame is None:
                            raise UnavailableError("connection closed during the run")
                        payload = frame.get("payload") or {}
                        if frame.get("event") in ("agent", "chat") and payload.get("runId") == run_id:
                            yield frame
                    else:
                        ev_task.cancel()
                    if final_task in done:
                        while not q.empty():
                            frame = q.get_nowait()
                            if frame and (frame.get("payload") or {}).get("runId") == run_id:
                                yield frame
                        yield {"type": "result", **self._unwrap(final_task.result())}
                        return
        finally:
            self._pending.pop(rid, None)
            self._queues.remove(q)

    async def abort(self, session_key: str, run_id: str | None = None) -> Any:
        params: dict[str, Any] = {"sessionKey": session_key}
        if run_id:
            params["runId"] = run_id
        return await self.call("chat.abort", params)
