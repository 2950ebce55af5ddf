"""Baseline (a): a bare ``websockets`` server that broadcasts pre-encoded frames with ``websockets.broadcast``.

One JSON encode per event, the same bytes to every client (so every client sees
the same ``seq``), no awaiting per client. ``python -m bench.baselines.ws_broadcast``.
"""

from __future__ import annotations

import logging
from typing import Any

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

from ..control import FanoutFrame, emit, produce, raise_nofile_limit, serve_commands
from ._proto import challenge, event_frame, reply

CLIENTS: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    await ws.send(challenge())
    try:
        async for msg in ws:
            out = reply(msg)
            if out is not None:
                if '"hello-ok"' in out:
                    CLIENTS.add(ws)
                await ws.send(out)
    finally:
        CLIENTS.discard(ws)


async def main() -> None:
    frame = FanoutFrame(100)
    seq = 0

    def publish() -> None:
        nonlocal seq
        seq += 1
        broadcast(CLIENTS, event_frame(frame.payload(), seq))

    def buffered() -> list[int]:
        return [ws.transport.get_write_buffer_size() for ws in CLIENTS]

    async def fanout(cmd: dict[str, Any]) -> dict[str, Any]:
        return await produce(publish, buffered, cmd["seconds"], cmd.get("rate", 0))

    async def stats(cmd: dict[str, Any]) -> dict[str, Any]:
        return {"connections": len(CLIENTS)}

    async with serve(
        handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_size=None, backlog=4096
    ) as server:
        emit({"port": next(iter(server.sockets)).getsockname()[1]})
        await serve_commands({"fanout": fanout, "stats": stats})


if __name__ == "__main__":
    # Clients that hang up without a close frame are routine here, not errors worth a traceback each.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    raise_nofile_limit()
    uvloop.run(main())
