"""Honest native clients: operators (``agent``) and webchat (``chat.send``) that judge every event they get.

Each worker keeps one socket, starts runs in its own sessions (sometimes two at
once in one session, so one waits for the other), aborts some, drops its
socket in the middle of others, and follows each run to its end. After a lost
socket (a drop or a SIGKILL) it reconnects with backoff, asks ``agent.replay``
for what it missed of its own runs (after the last agent seq it saw) and, when
the gateway no longer has them (it restarted), ``agent.wait`` for the stored
outcome. A request whose answer was lost is sent again with the same
idempotency key. Every event of every run it sees goes through a ``RunView``
and its connection's ``SeqView``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import socket
import struct
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from agenthub.core.sessions import canonical_session_key
from agenthub.protocol import _json

from .common import HONEST_IP, SoakEnv, message_for, retrying
from .ledger import Ledger, RunView, SeqView

__all__ = ["ConnectRefusedError", "NativeSocket", "NativeWorker", "SlowConsumer", "connect_params"]

MAX_VIEWS = 4000  # runs whose views a worker keeps (the oldest finished ones go first)
RUN_PATIENCE_S = 90  # a run of ours that has not ended after this is asked about, then reported


class ConnectRefusedError(ConnectionError):
    """``connect`` answered with an error (the message carries it)."""


def connect_params(token: str, mode: str, scopes: list[str], client_id: str = "soak") -> dict[str, Any]:
    params: dict[str, Any] = {
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": {"id": client_id, "version": "1.0.0", "platform": "linux", "mode": mode},
        "role": "operator",
        "scopes": scopes,
    }
    if token:
        params["auth"] = {"token": token}
    return params


class NativeSocket:
    """One native connection: the handshake, requests matched by id, events handed to ``on_event``."""

    def __init__(self, ws: ClientConnection, on_event: Callable[[dict[str, Any]], None], ledger: Ledger, dialect: str):
        self.ws = ws
        self.on_event = on_event
        self.ledger = ledger
        self.dialect = dialect
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.seq = SeqView(gap_ok=True)  # droppable deltas may be skipped for a slow reader
        self.lost = asyncio.get_running_loop().create_future()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls,
        url: str,
        params: dict[str, Any],
        on_event: Callable[[dict[str, Any]], None],
        ledger: Ledger,
        dialect: str,
        local_ip: str = HONEST_IP,
        timeout: float = 15,
    ) -> NativeSocket:
        ws = await websockets.connect(
            url, max_size=None, open_timeout=timeout, close_timeout=2, local_addr=(local_ip, 0)
        )
        try:
            async with asyncio.timeout(timeout):
                challenge = json.loads(await ws.recv())
                if challenge.get("event") != "connect.challenge":
                    raise ConnectRefusedError(f"no challenge: {challenge}")
                await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}))
                while True:
                    res = json.loads(await ws.recv())
                    if res.get("type") == "res" and res.get("id") == "c":
                        break
            if not res.get("ok"):
                raise ConnectRefusedError(json.dumps(res.get("error"))[:300])
        except BaseException:
            await ws.close()
            raise
        return cls(ws, on_event, ledger, dialect)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = _json.loads(raw)
                kind = frame.get("type")
                if kind == "res":
                    fut = self.pending.pop(frame.get("id"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(frame)
                elif kind == "event":
                    seq = frame.get("seq")
                    if isinstance(seq, int):
                        problem, skipped = self.seq.see(seq)
                        if problem:
                            self.ledger.violation(self.dialect, f"connection {problem}")
                        self.ledger.gaps[self.dialect] += skipped
                    self.on_event(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection lost"))
            self.pending.clear()
            if not self.lost.done():
                self.lost.set_result(None)

    @property
    def open_(self) -> bool:
        return not self.lost.done()

    async def call(self, method: str, params: Any, timeout: float = 30) -> dict[str, Any]:
        """The ``res`` frame (ok or not); ``ConnectionError`` if the socket goes first."""
        if not self.open_:
            raise ConnectionError("connection lost")
        rid = f"r{next(self.ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        try:
            await self.ws.send(_json.dumps({"type": "req", "id": rid, "method": method, "params": params}).decode())
        except websockets.ConnectionClosed:
            self.pending.pop(rid, None)
            if not self.lost.done():  # now, not when the reader task next runs: callers reconnect on it
                self.lost.set_result(None)
            raise ConnectionError("connection lost") from None
        async with asyncio.timeout(timeout):
            return await fut

    def drop(self) -> None:
        """Lose the TCP connection without a close handshake, as a network failure would."""
        self.ws.transport.abort()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(BaseException):
            await self.reader


@dataclass
class Mine:
    """A run this worker asked for."""

    run_id: str
    session_key: str  # canonical, as the transcript stores it
    text: str
    method: str
    params: dict[str, Any]
    acked: bool = False
    since: float = 0.0


class NativeWorker:
    """An honest operator (``mode="cli"``, ``agent``) or webchat client (``mode="webchat"``, ``chat.send``)."""

    def __init__(self, env: SoakEnv, name: str, mode: str) -> None:
        self.env = env
        self.name = name
        self.mode = mode
        self.dialect = "webchat" if mode == "webchat" else "native"
        self.ledger = env.ledger
        self.rng = env.rng(name)
        self.sessions = [f"soak-{name}-{i}" for i in range(3)]
        self.sock: NativeSocket | None = None
        self.views: OrderedDict[str, RunView] = OrderedDict()
        self.mine: dict[str, Mine] = {}

    @property
    def busy(self) -> bool:
        return bool(self.mine)

    # -- events ---------------------------------------------------------------------------
    def on_event(self, frame: dict[str, Any]) -> None:
        event = frame.get("event")
        if event not in ("agent", "chat"):
            return
        payload = frame.get("payload") or {}
        run_id = payload.get("runId")
        if not isinstance(run_id, str):
            return
        view = self.views.get(run_id)
        if view is None:
            view = self._view(run_id, joined=True)
        self.ledger.frames[self.dialect] += 1
        for problem in view.live(event, payload):
            self.ledger.violation(self.dialect, f"{self.name} run {run_id}: {problem}")
        if view.ended is not None and run_id in self.mine:
            self.ledger.outcome(run_id, view.ended, "event")

    def _view(self, run_id: str, joined: bool) -> RunView:
        view = self.views[run_id] = RunView(joined=joined)
        while len(self.views) > MAX_VIEWS:
            oldest = next(iter(self.views))
            if oldest in self.mine:
                break
            del self.views[oldest]
        return view

    def _lost(self) -> None:
        """The socket is gone: our runs will be replayed after their last seq; others just resume."""
        for run_id, view in self.views.items():
            if view.ended is not None or view.resync_after is not None:
                continue
            mine = self.mine.get(run_id)
            if mine is not None and mine.acked:
                view.begin_resync(view.last_agent)
            else:
                view.rejoin()

    # -- connection -----------------------------------------------------------------------
    async def ensure_connected(self) -> bool:
        if self.sock is not None and self.sock.open_:
            return True
        if self.sock is not None:
            self._lost()
            await self.sock.close()
            self.sock = None
        scopes = ["operator.read", "operator.write", "operator.admin"]
        params = connect_params(self.env.creds.token, self.mode, scopes)
        sock = await retrying(
            self.env.phase,
            lambda: NativeSocket.open(self.env.ws, params, self.on_event, self.ledger, self.dialect),
        )
        if sock is None:
            return False
        self.sock = sock
        self.ledger.counts[f"{self.dialect} connects"] += 1
        try:
            for run_id, view in list(self.views.items()):
                if view.resync_after is not None:
                    await self._resync(run_id, view)
            for mine in list(self.mine.values()):
                if not mine.acked:
                    await self._request(mine)
        except (ConnectionError, TimeoutError):
            return await self.ensure_connected()
        return True

    async def _resync(self, run_id: str, view: RunView) -> None:
        assert self.sock is not None
        res = await self.sock.call("agent.replay", {"runId": run_id, "afterSeq": view.resync_after})
        if res.get("ok"):
            payload = res["payload"]
            self.ledger.counts[f"{self.dialect} replays"] += 1
            self.ledger.frames[self.dialect] += len(payload["events"])
            for problem in view.replay(payload["events"], payload["lastSeq"]):
                self.ledger.violation(self.dialect, f"{self.name} run {run_id} replay: {problem}")
            if view.ended is not None:
                self.ledger.outcome(run_id, view.ended, "event")
            return
        reason = ((res.get("error") or {}).get("details") or {}).get("reason")
        if reason != "REPLAY_GAP":
            self.ledger.honest_error(self.dialect, f"agent.replay {run_id}: {res.get('error')}")
        # Not retained (a restart started a new epoch): whatever waited is judged as a rejoin,
        # and the outcome is the stored one.
        self.ledger.counts[f"{self.dialect} replay gaps"] += 1
        view.resync_after = None
        buffered, view.buffered = view.buffered, []
        view.rejoin()
        for name, payload in buffered:
            for problem in view.live(name, payload):
                self.ledger.violation(self.dialect, f"{self.name} run {run_id} after a gap: {problem}")
        await self._stored_outcome(run_id, view)

    async def _stored_outcome(self, run_id: str, view: RunView) -> None:
        assert self.sock is not None
        res = await self.sock.call("agent.wait", {"runId": run_id, "timeoutMs": 0})
        if not res.get("ok"):
            self.ledger.honest_error(self.dialect, f"agent.wait {run_id}: {res.get('error')}")
            view.ended = "lost"
            return
        payload = res["payload"]
        status = payload.get("status")
        if status == "timeout" and payload.get("stopReason") != "timeout":
            return  # the wait timed out: the run is still queued or running, its events will come
        if status in ("ok", "error", "aborted", "timeout"):
            view.ended = status
            self.ledger.outcome(run_id, status, "wait")

    # -- work -----------------------------------------------------------------------------
    async def run(self) -> None:
        phase = self.env.phase
        for n in itertools.count(1):
            if not await self.ensure_connected():
                break
            if not phase.load.is_set():
                if phase.stop.is_set() and not self.mine:
                    break
                await self._follow(0.2)
                continue
            tag = f"{self.name}#{n}"
            session = self.rng.choice(self.sessions)
            first = await self._start(session, message_for(self.rng, tag))
            if self.rng.random() < 0.1:  # a second turn while the first streams: it waits its turn
                await self._start(session, message_for(self.rng, tag + "b"))
            roll = self.rng.random()
            if first is not None and roll < 0.25:
                await self._follow(self.rng.uniform(0.05, 0.8))
                if roll < 0.15:
                    await self._abort(first)
                elif self.sock is not None and self.sock.open_:
                    self.ledger.counts[f"{self.dialect} deliberate drops"] += 1
                    self.sock.drop()
            await self._wait_mine()
            if self.rng.random() < 0.2:
                await self._history(session)
            await asyncio.sleep(self.rng.uniform(0, 0.3))
        if self.sock is not None:
            await self.sock.close()

    async def _start(self, session: str, text: str) -> Mine | None:
        key = uuid.uuid4().hex
        if self.mode == "webchat":
            method, params = "chat.send", {"sessionKey": session, "message": text, "idempotencyKey": key}
        else:
            method, params = "agent", {"message": text, "idempotencyKey": key, "sessionKey": session}
        mine = Mine(key, canonical_session_key(session), text, method, params, since=time.monotonic())
        self.mine[key] = mine
        self._view(key, joined=False)
        with contextlib.suppress(ConnectionError, TimeoutError):  # sent again after the reconnect, same key
            await self._request(mine)
        return mine

    async def _request(self, mine: Mine) -> None:
        assert self.sock is not None
        res = await self.sock.call(mine.method, mine.params)
        if res.get("ok"):
            if not mine.acked:
                mine.acked = True
                self.ledger.ack(self.dialect, mine.session_key, mine.text, mine.run_id)
                self.ledger.counts[f"{self.dialect} runs"] += 1
            return
        self.ledger.honest_error(self.dialect, f"{mine.method}: {res.get('error')}")
        del self.mine[mine.run_id]

    async def _abort(self, mine: Mine) -> None:
        if self.sock is None or not mine.acked:
            return
        try:
            res = await self.sock.call("chat.abort", {"sessionKey": mine.session_key, "runId": mine.run_id})
        except (ConnectionError, TimeoutError):
            return
        self.ledger.counts[f"{self.dialect} aborts"] += 1
        if not res.get("ok"):
            self.ledger.honest_error(self.dialect, f"chat.abort: {res.get('error')}")

    async def _history(self, session: str) -> None:
        if self.sock is None:
            return
        try:
            res = await self.sock.call("chat.history", {"sessionKey": session, "limit": 50})
        except (ConnectionError, TimeoutError):
            return
        self.ledger.counts[f"{self.dialect} history reads"] += 1
        if not res.get("ok"):
            self.ledger.honest_error(self.dialect, f"chat.history: {res.get('error')}")

    async def _follow(self, seconds: float) -> None:
        """Let events arrive for a while (reconnecting if the socket goes)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if (self.sock is None or not self.sock.open_) and not await self.ensure_connected():
                return
            self._settle()
            await asyncio.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def _settle(self) -> None:
        for run_id in [r for r, m in self.mine.items() if m.acked and self._ended(r)]:
            del self.mine[run_id]

    def _ended(self, run_id: str) -> bool:
        view = self.views.get(run_id)
        return view is None or view.ended is not None

    async def _wait_mine(self) -> None:
        while self.mine and not self.env.phase.stop.is_set():
            await self._follow(0.05)
            now = time.monotonic()
            for mine in list(self.mine.values()):
                if mine.acked and now - mine.since > RUN_PATIENCE_S:
                    await self._overdue(mine)

    async def _overdue(self, mine: Mine) -> None:
        view = self.views.get(mine.run_id)
        if self.sock is None or view is None:
            return
        try:
            await self._stored_outcome(mine.run_id, view)
        except (ConnectionError, TimeoutError):
            return
        if view.ended is None:
            self.ledger.honest_error(self.dialect, f"run {mine.run_id} still not ended after {RUN_PATIENCE_S} s")
            view.ended = "lost"
        self._settle()


class SlowConsumer:
    """A native operator that stops reading after ``connect``, with a 4 KiB receive buffer.

    The gateway must skip droppable events for it and, past ``max_buffered_bytes``,
    close it 1008, while every other client goes on unharmed.
    """

    def __init__(self, env: SoakEnv) -> None:
        self.env = env
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        self.sock.setblocking(False)
        self.sock.bind((HONEST_IP, 0))
        self.buf = b""

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(15):
            await loop.sock_connect(self.sock, (self.env.host, self.env.port))
            key = base64.b64encode(os.urandom(16)).decode()
            head = (
                f"GET / HTTP/1.1\r\nHost: {self.env.host}:{self.env.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await loop.sock_sendall(self.sock, head.encode())
            while b"connect.challenge" not in self.buf:
                chunk = await loop.sock_recv(self.sock, 65536)
                if not chunk:
                    raise ConnectionError("closed during the upgrade")
                self.buf += chunk
            params = connect_params(self.env.creds.token, "cli", ["operator.read"], client_id="soak-slow")
            frame = json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}).encode()
            await loop.sock_sendall(self.sock, _masked(frame))

    async def outcome(self, timeout: float = 10) -> str:
        """Read what piled up: 'closed 1008' if the gateway cut it, 'open' if it still holds it."""
        loop = asyncio.get_running_loop()
        tail = b""
        try:
            async with asyncio.timeout(timeout):
                while chunk := await loop.sock_recv(self.sock, 1 << 20):
                    tail = (tail + chunk)[-256:]
        except TimeoutError:
            return "open"
        except OSError:
            pass
        finally:
            self.sock.close()
        return "closed 1008" if b"slow consumer" in tail else "closed"


def _masked(data: bytes) -> bytes:
    """One masked client text frame (RFC 6455)."""
    mask = os.urandom(4)
    n = len(data)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
