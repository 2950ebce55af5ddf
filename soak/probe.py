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
import sys
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


async def _open(url: str) -> ClientConnection:
    return await websockets.connect(url, max_size=None, open_timeout=10, close_timeout=1, local_addr=(HONEST_IP, 0))


async def _until(ws: ClientConnection, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.recv())
        if isinstance(frame, dict) and pred(frame):
            return frame


async def native(cfg: dict[str, Any], samples: Samples) -> None:
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
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "req", "id": f"h{n}", "method": "health", "params": {}}))
            res = await _until(ws, lambda f, rid=f"h{n}": f.get("id") == rid)  # type: ignore[misc]
            if res.get("ok"):
                samples.append((time.time(), "native health", (time.perf_counter() - t0) * 1000))
            await asyncio.sleep(INTERVAL_S)


async def agentbox(cfg: dict[str, Any], samples: Samples) -> None:
    async with await _open(f"ws://{cfg['host']}:{cfg['agentbox_port']}/api/v1/gateway/ws") as ws:
        await ws.send(json.dumps({"id": "a", "type": "auth", "payload": {"token": cfg["bob_key"]}}))
        if (await _until(ws, lambda f: f.get("id") == "a")).get("type") != "auth.result":
            raise ConnectionError("bob refused")
        n = 0
        while True:
            n += 1
            t0 = time.perf_counter()
            await ws.send(json.dumps({"id": f"p{n}", "type": "ping", "payload": {}}))
            await _until(ws, lambda f, rid=f"p{n}": f.get("id") == rid)  # type: ignore[misc]
            samples.append((time.time(), "agentbox ping", (time.perf_counter() - t0) * 1000))
            await asyncio.sleep(INTERVAL_S)


async def langbot(cfg: dict[str, Any], samples: Samples) -> None:
    path = f"/api/v1/pipelines/{cfg['pipeline']}/ws/connect?session_type=person&token={cfg['pipeline_key']}"
    async with await _open(f"ws://{cfg['host']}:{cfg['port']}{path}") as ws:
        await _until(ws, lambda f: f.get("type") == "connected")
        while True:
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "ping"}))
            await _until(ws, lambda f: f.get("type") == "pong")
            samples.append((time.time(), "langbot ping", (time.perf_counter() - t0) * 1000))
            await asyncio.sleep(INTERVAL_S)


async def _forever(body: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await body()
        except (OSError, TimeoutError, EOFError, websockets.WebSocketException, ConnectionError):
            await asyncio.sleep(0.2)


async def main() -> None:
    cfg = json.loads(sys.argv[1])
    samples: Samples = []
    loops = [
        asyncio.create_task(_forever(lambda f=f: f(cfg, samples)))  # type: ignore[misc]
        for f in (native, agentbox, langbot)
    ]

    async def report(cmd: dict[str, Any]) -> dict[str, Any]:
        return {"samples": samples}

    emit({"ready": True})
    await serve_commands({"report": report})
    for task in loops:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
