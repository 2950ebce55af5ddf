"""Helpers shared by the end-to-end tests: a frame-keeping client, run collection, a stalled socket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from agenthub.agents.demo import DemoRuntime
from agenthub.core.runtime import TextDelta, Turn

from ..conftest import GatewayProc, RawClient, connect_params

__all__ = [
    "TERMINAL_CHAT",
    "Client",
    "RunLog",
    "StalledSocket",
    "agent_text",
    "assert_contiguous",
    "assert_cumulative",
    "assert_run_numbering",
    "collect_run",
    "collect_runs",
    "expected_answer",
    "free_port",
    "gateway_cli",
    "shared_gateway",
    "start_agent",
]

TERMINAL_CHAT = frozenset({"final", "aborted", "error"})


def free_port() -> int:
    """A loopback port nobody listens on right now (for ``--agentbox-port``/``--myagent-port``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def gateway_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``agenthub gateway --port 0 --data-dir DIR ARGS`` run to its exit (for gateways that must refuse to start)."""
    return subprocess.run(
        [sys.executable, "-m", "agenthub", "gateway", "--port", "0", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


class Client(RawClient):
    """``RawClient`` that never loses a frame.

    Every frame received after the socket opened is kept in ``frames`` (arrival
    order), events also in ``events``; a response read while waiting for
    something else is stashed, so a later ``response(id)`` still finds it.
    """

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.frames: list[dict[str, Any]] = []
        self.stash: list[dict[str, Any]] = []
        self.recv_times: list[float] = []  # monotonic arrival time of each frame in ``frames``

    @classmethod
    @contextlib.asynccontextmanager
    async def open_connected(cls, url: str, **connect: Any) -> AsyncIterator[Client]:
        """Open a socket and complete ``connect``; fails the test if the handshake fails."""
        async with cls.open(url) as c:
            assert isinstance(c, Client)
            res = await c.connect(**connect)
            assert res["ok"], res
            yield c

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        frame = await super().recv(timeout)
        self.frames.append(frame)
        self.recv_times.append(time.monotonic())
        if frame.get("type") == "res":
            self.stash.append(frame)
        return frame

    def _take(self, rid: str) -> dict[str, Any] | None:
        for i, frame in enumerate(self.stash):
            if frame.get("id") == rid:
                return self.stash.pop(i)
        return None

    async def response(self, rid: str, timeout: float = 10) -> dict[str, Any]:
        """The next response with this id (oldest first, including stashed ones)."""
        async with asyncio.timeout(timeout):
            while True:
                found = self._take(rid)
                if found is not None:
                    return found
                frame = await self.recv(timeout)
                if frame.get("type") == "event":
                    self.events.append(frame)

    async def until(self, pred: Any, timeout: float = 10) -> dict[str, Any]:
        """Read until a frame (or an event already received) matches ``pred``."""
        for frame in self.events:
            if pred(frame):
                return frame
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame.get("type") == "event":
                    self.events.append(frame)
                if pred(frame):
                    if frame.get("type") == "res":
                        self.stash.remove(frame)
                    return frame

    def time_of(self, frame: dict[str, Any]) -> float:
        """Monotonic arrival time of a frame this client received."""
        for f, t in zip(self.frames, self.recv_times, strict=True):
            if f is frame:
                return t
        raise AssertionError(f"frame not received by this client: {frame}")

    def index_of(self, frame: dict[str, Any]) -> int:
        """Arrival position of a frame this client received."""
        for i, f in enumerate(self.frames):
            if f is frame:
                return i
        raise AssertionError(f"frame not received by this client: {frame}")

    def event_seqs(self) -> list[int]:
        """Connection-level ``seq`` of every event received (the challenge has none)."""
        return [f["seq"] for f in self.frames if f.get("type") == "event" and "seq" in f]

    async def ok(self, method: str, params: Any = None, timeout: float = 10) -> Any:
        """Call and return the payload, failing the test on an error response."""
        res = await self.call(method, params, timeout)
        assert res["ok"], f"{method} failed: {res}"
        return res["payload"]


def agent_text(payloads: list[dict[str, Any]]) -> str:
    """The last cumulative assistant text among agent payloads ("" if none)."""
    texts = [p["data"]["text"] for p in payloads if p["stream"] == "assistant"]
    return texts[-1] if texts else ""


@dataclass
class RunLog:
    """Everything one client saw of one run."""

    run_id: str
    frames: list[dict[str, Any]] = field(default_factory=list)  # agent/chat event frames, arrival order
    final: dict[str, Any] | None = None  # the second ``res`` of an ``agent`` call

    @property
    def agent(self) -> list[dict[str, Any]]:
        return [f["payload"] for f in self.frames if f["event"] == "agent"]

    @property
    def chat(self) -> list[dict[str, Any]]:
        return [f["payload"] for f in self.frames if f["event"] == "chat"]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [f["payload"] for f in self.frames]

    @property
    def run_seqs(self) -> list[int]:
        return [p["seq"] for p in self.payloads]

    @property
    def text(self) -> str:
        return agent_text(self.agent)

    @property
    def terminal(self) -> dict[str, Any]:
        ends = [p for p in self.chat if p["state"] in TERMINAL_CHAT]
        assert len(ends) == 1, f"expected one terminal chat event, got {ends}"
        return ends[0]

    def streams(self, stream: str) -> list[dict[str, Any]]:
        return [p["data"] for p in self.agent if p["stream"] == stream]

    def lifecycle_starts(self) -> int:
        return sum(1 for d in self.streams("lifecycle") if d["phase"] == "start")


def _run_frames(c: Client, run_id: str) -> list[dict[str, Any]]:
    return [
        f for f in c.events if f.get("event") in ("agent", "chat") and (f.get("payload") or {}).get("runId") == run_id
    ]


def _is_end(frame: dict[str, Any], run_id: str) -> bool:
    payload = frame.get("payload") or {}
    return frame.get("event") == "chat" and payload.get("runId") == run_id and payload.get("state") in TERMINAL_CHAT


async def collect_run(c: Client, run_id: str, rid: str | None = None, timeout: float = 30) -> RunLog:
    """Read until the run's terminal ``chat`` event (and, with ``rid``, its final ``res``)."""
    log = RunLog(run_id)
    ended = any(_is_end(f, run_id) for f in c.events)
    async with asyncio.timeout(timeout):
        while not ended:
            frame = await c.recv(timeout)
            if frame.get("type") == "event":
                c.events.append(frame)
                ended = _is_end(frame, run_id)
        if rid is not None:
            res = await c.response(rid, timeout)
            assert res["ok"], res
            log.final = res["payload"]
    log.frames = _run_frames(c, run_id)
    return log


async def collect_runs(c: Client, run_ids: list[str], timeout: float = 30) -> list[RunLog]:
    """``collect_run`` for several runs at once (one reader per socket), without final responses."""
    logs = []
    async with asyncio.timeout(timeout):
        for run_id in run_ids:
            logs.append(await collect_run(c, run_id))
    return logs


async def start_agent(c: Client, message: str, key: str, session: str | None = None) -> tuple[str, dict[str, Any]]:
    """Send ``agent`` and return (request id, accepted payload)."""
    params: dict[str, Any] = {"message": message, "idempotencyKey": key}
    if session is not None:
        params["sessionKey"] = session
    rid = await c.request("agent", params)
    res = await c.response(rid)
    assert res["ok"], res
    accepted: dict[str, Any] = res["payload"]
    return rid, accepted


def assert_contiguous(seqs: list[int], start: int = 1) -> None:
    assert seqs == list(range(start, start + len(seqs))), f"seq not contiguous from {start}: {seqs}"


def assert_run_numbering(frames: list[dict[str, Any]]) -> None:
    """OpenClaw's numbering of one run's events, as a client that missed none received them.

    ``agent`` events carry seq 1..n without a gap; each ``chat`` event carries the
    seq of the agent event before it (the one it derives from), at most one per seq.
    """
    assert_contiguous([f["payload"]["seq"] for f in frames if f["event"] == "agent"])
    last, chat_seqs = 0, []
    for f in frames:
        seq = f["payload"]["seq"]
        if f["event"] == "agent":
            last = seq
        else:
            assert seq == last, f"chat seq {seq} does not match the agent event before it ({last})"
            chat_seqs.append(seq)
    assert len(set(chat_seqs)) == len(chat_seqs), f"two chat events share a seq: {chat_seqs}"


def assert_cumulative(agent_payloads: list[dict[str, Any]]) -> str:
    """Each assistant (and thinking) text is the previous text plus its delta; returns the last text."""
    last = {"assistant": "", "thinking": ""}
    for p in agent_payloads:
        stream = p["stream"]
        if stream in last:
            data = p["data"]
            assert data["text"] == last[stream] + data["delta"], (stream, last[stream], data)
            last[stream] = data["text"]
    return last["assistant"]


async def expected_answer(message: str) -> str:
    """The demo provider's full answer to a message that uses no tool (it is deterministic)."""
    text = ""
    async for ev in DemoRuntime(word_delay_s=0).run_turn(Turn(run_id="x", session_key="x", message=message)):
        if isinstance(ev, TextDelta):
            text += ev.text
    return text


# -- a client that stops reading -------------------------------------------------------


def shared_gateway(
    factory: pytest.TempPathFactory, name: str, config: dict[str, Any] | None = None
) -> Iterator[GatewayProc]:
    """A gateway (as ``make_gateway(config=config)`` starts) for a whole module's independent tests.

    Tests on it use their own session and idempotency keys and assert nothing
    about gateway-wide counts, so they cannot see each other; they may restart
    it (or kill and start it on its port), since its data directory stays.
    """
    gw = GatewayProc(factory.mktemp(name), config={"demo": {"word_delay_ms": 5}} | (config or {})).start()
    try:
        yield gw
    finally:
        gw.stop()


def _masked_text_frame(data: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(data)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@dataclass
class WireFrame:
    opcode: int
    data: bytes
    header: bytes = b""  # as sent: shows which length encoding (7-bit, 16-bit, 64-bit) the server used

    def json(self) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.data)
        return obj

    def close(self) -> tuple[int | None, str]:
        if len(self.data) < 2:
            return None, ""
        return struct.unpack("!H", self.data[:2])[0], self.data[2:].decode()


class StalledSocket:
    """A WebSocket client on a bare non-blocking socket with a tiny receive buffer.

    It reads only when asked to, so between ``connect()`` and ``read_all()`` the
    gateway's writes pile up in its own buffers, as with a stuck consumer.
    """

    def __init__(self, url: str, rcvbuf: int = 4096) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Set before connect, so the window the gateway sees stays small.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.setblocking(False)
        self.buf = b""
        self.loop = asyncio.get_running_loop()

    async def _fill(self) -> bool:
        chunk = await self.loop.sock_recv(self.sock, 65536)
        self.buf += chunk
        return bool(chunk)

    async def read_frame(self) -> WireFrame | None:
        """One whole server frame, or None at EOF."""
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                n, off = b1 & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, off = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
                if (b1 & 0x7F) < 126 or off > 2:
                    assert b0 & 0x80, "fragmented frames are not expected from the gateway"
                    if len(self.buf) >= off + n:
                        frame = WireFrame(b0 & 0x0F, self.buf[off : off + n], self.buf[:off])
                        self.buf = self.buf[off + n :]
                        return frame
            try:
                if not await self._fill():
                    return None
            except ConnectionResetError:
                return None

    async def send_json(self, obj: Any) -> None:
        await self.loop.sock_sendall(self.sock, _masked_text_frame(json.dumps(obj).encode()))

    async def send_close(self, code: int) -> None:
        """A masked close frame, as a well-behaved client answers the server's close."""
        mask = os.urandom(4)
        body = struct.pack("!H", code)
        await self.send_raw(bytes((0x88, 0x80 | len(body))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are, e.g. a frame that breaks RFC 6455."""
        await self.loop.sock_sendall(self.sock, data)

    async def connect(self, timeout: float = 10) -> dict[str, Any]:
        """HTTP upgrade, challenge, ``connect``; returns the hello-ok response frame."""
        async with asyncio.timeout(timeout):
            await self.loop.sock_connect(self.sock, (self.host, self.port))
            key = base64.b64encode(os.urandom(16)).decode()
            request = (
                f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await self.loop.sock_sendall(self.sock, request.encode())
            while b"\r\n\r\n" not in self.buf:
                assert await self._fill(), "gateway closed during the upgrade"
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 101"), head
            challenge = await self.read_frame()
            assert challenge is not None and challenge.json()["event"] == "connect.challenge"
            await self.send_json({"type": "req", "id": "c1", "method": "connect", "params": connect_params()})
            while True:
                frame = await self.read_frame()
                assert frame is not None, "gateway closed during connect"
                if frame.opcode == 0x1 and frame.json().get("id") == "c1":
                    res = frame.json()
                    assert res["ok"], res
                    return res

    async def read_all(
        self, timeout: float = 20, idle: float | None = None
    ) -> tuple[list[dict[str, Any]], tuple[int | None, str] | None]:
        """Read everything: (text frames in order, close (code, reason)).

        The close is None at a bare EOF, or when ``idle`` seconds pass with no
        frame (the gateway kept the connection open).
        """
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    async with asyncio.timeout(idle):
                        frame = await self.read_frame()
                except TimeoutError:
                    return frames, None
                if frame is None:
                    return frames, None
                if frame.opcode == 0x8:
                    return frames, frame.close()
                if frame.opcode == 0x1:
                    frames.append(frame.json())

    def close(self) -> None:
        self.sock.close()
