"""Spike: Starlette on uvicorn (uvloop; ws="auto" = websockets sans-I/O impl); naive `await ws.send_text()` fan-out."""

from __future__ import annotations

import argparse
import asyncio
import time

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

CLIENTS: set[WebSocket] = set()
PAD = "x" * 72


def event(seq: int) -> str:
    """~100-byte event: fixed-width seq and send time (time.time_ns), then padding."""
    return f"{seq:08d} {time.time_ns():019d} {PAD}"


async def fan_out(n: int) -> None:
    for seq in range(n):
        msg = event(seq)
        for ws in list(CLIENTS):
            await ws.send_text(msg)
        await asyncio.sleep(0)


async def endpoint(ws: WebSocket) -> None:
    await ws.accept()
    CLIENTS.add(ws)
    try:
        while True:
            msg = await ws.receive_text()
            if msg.startswith("go "):
                await fan_out(int(msg[3:]))
    except WebSocketDisconnect:
        pass
    finally:
        CLIENTS.discard(ws)


app = Starlette(routes=[WebSocketRoute("/", endpoint)])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    port = parser.parse_args().port
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        ws="auto",
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
        backlog=2048,
    )
