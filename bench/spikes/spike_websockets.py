"""Spike: `websockets` asyncio server; fan-out with websockets.broadcast() (no awaiting per client)."""

from __future__ import annotations

import argparse
import asyncio
import time

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

CLIENTS: set[ServerConnection] = set()
PAD = "x" * 72


def event(seq: int) -> str:
    """~100-byte event: fixed-width seq and send time (time.time_ns), then padding."""
    return f"{seq:08d} {time.time_ns():019d} {PAD}"


async def fan_out(n: int) -> None:
    for seq in range(n):
        broadcast(CLIENTS, event(seq))
        await asyncio.sleep(0)


async def handler(ws: ServerConnection) -> None:
    CLIENTS.add(ws)
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("go "):
                await fan_out(int(msg[3:]))
    finally:
        CLIENTS.discard(ws)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=2048) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    uvloop.run(main(parser.parse_args().port))
