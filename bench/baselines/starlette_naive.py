"""Baseline (b): a naive Starlette endpoint on uvicorn that loops ``await ws.send_text(...)``.

Per event and per client it builds the frame with ``json.dumps`` (each client has
its own ``seq``) and awaits the send, the way a first implementation usually
does. ``python -m bench.baselines.starlette_naive``.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..control import FanoutFrame, emit, produce, raise_nofile_limit, serve_commands
from ._proto import challenge, event_frame, reply

CLIENTS: dict[WebSocket, int] = {}


async def endpoint(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text(challenge())
    try:
        while True:
            out = reply(await ws.receive_text())
            if out is not None:
                if '"hello-ok"' in out:
                    CLIENTS[ws] = 0
                await ws.send_text(out)
    except WebSocketDisconnect:
        pass
    finally:
        CLIENTS.pop(ws, None)


async def main() -> None:
    frame = FanoutFrame(100)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    app = Starlette(routes=[WebSocketRoute("/", endpoint)])
    config = uvicorn.Config(
        app,
        loop="uvloop",
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        log_level="warning",
        backlog=4096,
        ws_max_size=1 << 24,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))

    async def publish() -> None:
        payload = frame.payload()
        for ws in list(CLIENTS):
            seq = CLIENTS[ws] = CLIENTS.get(ws, 0) + 1
            try:
                await ws.send_text(event_frame(payload, seq))
            except Exception:
                CLIENTS.pop(ws, None)

    async def fanout(cmd: dict[str, Any]) -> dict[str, Any]:
        return await produce(publish, list, cmd["seconds"], cmd.get("rate", 0))

    async def stats(cmd: dict[str, Any]) -> dict[str, Any]:
        return {"connections": len(CLIENTS)}

    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    emit({"port": sock.getsockname()[1]})
    await serve_commands({"fanout": fanout, "stats": stats})
    server.should_exit = True
    await serving


if __name__ == "__main__":
    raise_nofile_limit()
    import uvloop

    uvloop.run(main())
