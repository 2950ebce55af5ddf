"""Shared fixtures: a real gateway process on a free loopback port, and raw clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from agenthub.client.identity import DeviceIdentity

# Real servers other than the gateway (PostgreSQL), as session fixtures: see tests/_servers.py.
pytest_plugins = ["tests._servers"]

READY = re.compile(rb"ready on ws://([\d.]+):(\d+)")


@dataclass
class GatewayProc:
    """A gateway subprocess; ``restart()`` keeps the data dir, like a real restart."""

    data_dir: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    log: list[bytes] = field(default_factory=list)
    _drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> GatewayProc:
        cfg = self.data_dir / "test-config.json"
        cfg.write_text(json.dumps(self.config))
        cmd = [
            sys.executable,
            "-m",
            "agenthub",
            "gateway",
            "--port",
            str(port if port is not None else self.port),
            "--data-dir",
            str(self.data_dir),
            "--config",
            str(cfg),
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.log.append(line)
            m = READY.search(line)
            if m:
                self.port = int(m.group(2))
                # Keep reading, or a chatty gateway blocks once the 64 KiB pipe is full.
                self._drain = threading.Thread(target=self._read_rest, args=(self.proc.stdout,), daemon=True)
                self._drain.start()
                return self
        raise RuntimeError("gateway did not start:\n" + b"".join(self.log).decode(errors="replace"))

    def _read_rest(self, stream: Any) -> None:
        for line in iter(stream.readline, b""):
            self.log.append(line)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._drain is not None:
            self._drain.join(timeout=5)
            self._drain = None
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> GatewayProc:
        port = self.port
        self.stop()
        return self.start(port)

    def output(self) -> str:
        return b"".join(self.log).decode(errors="replace")


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Any]:
    procs: list[GatewayProc] = []

    def factory(
        *args: str,
        env: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        data_dir: Path | None = None,
    ) -> GatewayProc:
        d = data_dir or tmp_path / f"gw{len(procs)}"
        d.mkdir(parents=True, exist_ok=True)
        cfg = {"demo": {"word_delay_ms": 5}}
        cfg.update(config or {})
        gw = GatewayProc(d, list(args), env or {}, cfg)
        procs.append(gw)
        return gw.start()

    yield factory
    for gw in procs:
        with contextlib.suppress(Exception):
            gw.stop()


@pytest.fixture
def gateway(make_gateway: Any) -> GatewayProc:
    gw: GatewayProc = make_gateway()
    return gw


def connect_params(**over: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": {"id": "test", "version": "1.0.0", "platform": "linux", "mode": "test"},
        "role": "operator",
        "scopes": ["operator.read", "operator.write", "operator.admin"],
    }
    params.update(over)
    return params


def signed_device(
    c: RawClient,
    ident: DeviceIdentity,
    *,
    token: str = "",
    nonce: str | None = None,
    signed_at: int | None = None,
    scopes: list[str] | None = None,
    role: str = "operator",
) -> dict[str, Any]:
    """``connect.params.device`` signed over ``c``'s challenge, for client id/mode "test" on linux."""
    return ident.sign_connect(
        nonce=nonce or c.challenge["payload"]["nonce"],
        signed_at_ms=signed_at if signed_at is not None else int(time.time() * 1000),
        client_id="test",
        client_mode="test",
        role=role,
        scopes=scopes if scopes is not None else ["operator.read", "operator.write", "operator.admin"],
        token=token,
        platform="linux",
    )


class RawClient:
    """A bare WebSocket client speaking frames by hand, for protocol-level tests."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.challenge: dict[str, Any] = {}
        self.hello: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self._n = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, **kw: Any) -> AsyncIterator[RawClient]:
        async with websockets.connect(url, max_size=None, **kw) as ws:
            client = cls(ws)
            client.challenge = await client.recv()
            yield client

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            data: dict[str, Any] = json.loads(await self.ws.recv())
            return data

    async def send(self, obj: Any) -> None:
        await self.ws.send(obj if isinstance(obj, str | bytes) else json.dumps(obj))

    async def connect(self, **over: Any) -> dict[str, Any]:
        await self.send({"type": "req", "id": "c1", "method": "connect", "params": connect_params(**over)})
        res = await self.response("c1")
        if res["ok"]:
            self.hello = res["payload"]
        return res

    async def request(self, method: str, params: Any = None) -> str:
        self._n += 1
        rid = f"q{self._n}"
        await self.send({"type": "req", "id": rid, "method": method, "params": params or {}})
        return rid

    async def response(self, rid: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout)
            if frame.get("type") == "res" and frame.get("id") == rid:
                return frame
            if frame.get("type") == "event":
                self.events.append(frame)

    async def call(self, method: str, params: Any = None, timeout: float = 10) -> dict[str, Any]:
        return await self.response(await self.request(method, params), timeout)

    async def until(self, pred: Any, timeout: float = 10) -> dict[str, Any]:
        """Read until a frame matches ``pred`` (events seen on the way are kept)."""
        while True:
            frame = await self.recv(timeout)
            if frame.get("type") == "event":
                self.events.append(frame)
            if pred(frame):
                return frame

    async def closed(self, timeout: float = 12) -> tuple[int | None, str]:
        """Read until the server closes; returns (code, reason)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code if rcvd else None, rcvd.reason if rcvd else "")
        raise AssertionError("unreachable")
