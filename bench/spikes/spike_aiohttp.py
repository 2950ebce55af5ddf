"""Spike: aiohttp web server. --mode naive: `await ws.send_str()` per client;
--mode frame: encode the text frame once and `transport.write()` it to every client (no awaiting)."""

from __future__ import annotations

import argparse
import asyncio
import struct
import time

import uvloop
from aiohttp import WSMsgType, web

CLIENTS: dict[web.WebSocketResponse, asyncio.Transport] = {}
PAD = "x" * 72


def event(seq: int) -> str:
    """~100-byte event: fixed-width seq and send time (time.time_ns), then padding."""
    return f"{seq:08d} {time.time_ns():019d} {PAD}"


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked (server -> client) RFC 6455 text frame."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


async def fan_out(n: int, mode: str) -> None:
    for seq in range(n):
        msg = event(seq)
        if mode == "frame":
            frame = text_frame(msg.encode())
            for transport in CLIENTS.values():
                if not transport.is_closing():
                    transport.write(frame)
        else:
            for ws in list(CLIENTS):
                await ws.send_str(msg)
        await asyncio.sleep(0)


def make_app(mode: str) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        assert request.transport is not None
        CLIENTS[ws] = request.transport
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT and msg.data.startswith("go "):
                    await fan_out(int(msg.data[3:]), mode)
        finally:
            CLIENTS.pop(ws, None)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    return app


async def main(port: int, mode: str) -> None:
    runner = web.AppRunner(make_app(mode), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--mode", choices=["naive", "frame"], default="naive")
    args = parser.parse_args()
    uvloop.run(main(args.port, args.mode))
