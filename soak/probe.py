"""The latency probe: a child process (``python -m soak.probe``) timing honest round trips, 10 per second each.

Its own process, so the driver's work never shows up as gateway latency:
native ``health``, AgentBox ``ping``/``pong`` and LangBot ``ping``/``pong``,
each on a socket that reconnects after a kill. A sample is (wall time, kind,
milliseconds); a request cut by a kill is no sample. The driver keeps the
samples of the windows it judges. Commands: ``report``, ``quit``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from bench.control import emit, serve_commands

from .common import HONEST_IP
from .native import connect_params

__all__ = ["main"]

INTERVAL_S = 0.1
Samples = list[tuple[float, str, float]]


class Clock:
    """The probe's samples, and the one request of each kind still waiting for its answer."""

    def __init__(self) -> None:
        self.samples: Samples = []
        self.waiting: dict[str, tuple[float, float]] = {}  # kind -> (wall, perf) when sent

    def sent(self, kind: str) -> None:
        self.waiting[kind] = (time.time(), time.perf_counter())

    def answered(self, kind: str) -> None:
        wall, t0 = self.waiting.pop(kind)
        self.samples.append((wall, kind, (time.perf_counter() - t0) * 1000))

    def cut(self, kind: str) -> None:
        """The socket went before the answer: the wait so far is the sample."""
        if kind in self.waiting:
            wall, t0 = self.waiting.pop(kind)
            self.samples.append((wall, f"{kind} (cut)", (time.perf_counter() - t0) * 1000))

    def report(self) -> Samples:
        now = time.perf_counter()
        return self.samples + [(w, f"{k} (no answer yet)", (now - t0) * 1000) for k, (w, t0) in self.waiting.items()]


async def _open(url: str) -> ClientConnection:
    return await websockets.connect(url, max_size=None, open_timeout=10, close_timeout=1, local_addr=(HONEST_IP, 0))


async def _until(ws: ClientConnection, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.recv())
        if isinstance(frame, dict) and pred(frame):
            return frame


async def native(cfg: dict[str, Any], clock: Clock) -> None:
    async with await _open(f"ws://{cfg['host']}:{cfg['port']}") as ws:
        await ws.recv()
        # No read scope: no run events to parse, only the answers it times (health needs no scope).
        params = connect_params(cfg["token"], "probe", ["operator.approvals"], client_id="soak-probe")
        await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}))
        res = await _until(ws, lambda f: f.get("id") == "c")
        if not res.get("ok"):
            raise ConnectionError(str(res))
        n = 0
        while True:
            n += 1
            clock.sent("native health")
            await ws.send(json.dumps({"type": "req", "id": f"h{n}", "method": "health", "params": {}}))
            res = await _until(ws, lambda f, rid=f"h{n}": f.get("id") == rid)  # type: ignore[misc]
            if not res.get("ok"):
                raise ConnectionError(f"health refused: {res}")
            clock.answered("native health")
            await asyncio.sleep(INTERVAL_S)


async def agentbox(cfg: dict[str, Any], clock: Clock) -> None:
    async with await _open(f"ws://{cfg['host']}:{cfg['agentbox_port']}/api/v1/gateway/ws") as ws:
        await ws.send(json.dumps({"id": "a", "type": "auth", "payload": {"token": cfg["bob_key"]}}))
        if (await _until(ws, lambda f: f.get("id") == "a")).get("type") != "auth.result":
            raise ConnectionError("bob refused")
        n = 0
        while True:
            n += 1
            clock.sent("agentbox ping")
            await ws.send(json.dumps({"id": f"p{n}", "type": "ping", "payload": {}}))
            await _until(ws, lambda f, rid=f"p{n}": f.get("id") == rid)  # type: ignore[misc]
            clock.answered("agentbox ping")
            await asyncio.sleep(INTERVAL_S)


async def langbot(cfg: dict[str, Any], clock: Clock) -> None:
    path = f"/api/v1/pipelines/{cfg['pipeline']}/ws/connect?session_type=person&token={cfg['pipeline_key']}"
    async with await _open(f"ws://{cfg['host']}:{cfg['port']}{path}") as ws:
        await _until(ws, lambda f: f.get("type") == "connected")
        while True:
            clock.sent("langbot ping")
            await ws.send(json.dumps({"type": "ping"}))
            await _until(ws, lambda f: f.get("type") == "pong")
            clock.answered("langbot ping")
            await asyncio.sleep(INTERVAL_S)


async def _forever(kind: str, clock: Clock, body: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await body()
        except (OSError, TimeoutError, EOFError, websockets.WebSocketException, ConnectionError):
            clock.cut(kind)
            await asyncio.sleep(0.2)


async def main() -> None:
    cfg = json.loads(os.environ["SOAK_CONFIG"])
    clock = Clock()
    probes = {"native health": native, "agentbox ping": agentbox, "langbot ping": langbot}
    loops = [
        asyncio.create_task(_forever(kind, clock, lambda f=f: f(cfg, clock)))  # type: ignore[misc]
        for kind, f in probes.items()
    ]

    async def report(cmd: dict[str, Any]) -> dict[str, Any]:
        return {"samples": clock.report()}

    emit({"ready": True})
    await serve_commands({"report": report})
    for task in loops:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
