"""A real local HTTP server that replays scripted provider responses byte for byte.

Tests script what the upstream API sends (status, headers, raw SSE bytes) and
read back exactly what the provider under test sent, so both directions of the
wire format are checked without any network access.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class Reply:
    """One scripted upstream response.

    ``body`` is sent as-is; for streams it is split at every blank line (one
    write per SSE event, as real servers flush) or into ``chunk_size`` pieces
    to exercise the parser on arbitrary TCP boundaries. ``stall`` keeps the
    response open after the body, as a slow model would.
    """

    body: bytes
    status: int = 200
    content_type: str = "text/event-stream"
    chunk_size: int | None = None
    stall: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any


@dataclass
class ScriptedServer:
    url: str = ""
    replies: list[Reply] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=json.loads(raw) if raw else None,
            )
        )
        if not self.replies:
            return web.json_response({"error": {"message": "no scripted reply left"}}, status=599)
        reply = self.replies.pop(0)
        if reply.status != 200 or reply.content_type != "text/event-stream":
            return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for piece in _pieces(reply.body, reply.chunk_size):
            await response.write(piece)
            await asyncio.sleep(0)
        if reply.stall:
            try:
                await asyncio.wait_for(self.release.wait(), timeout=10)
            except asyncio.CancelledError:
                self.disconnected.set()
                raise
            except TimeoutError:
                pass
        await response.write_eof()
        return response


def _pieces(body: bytes, chunk_size: int | None) -> list[bytes]:
    if chunk_size:
        return [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
    parts = body.split(b"\n\n")
    return [p + b"\n\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    scripted = ScriptedServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    scripted.url = f"http://{host}:{port}"
    try:
        yield scripted
    finally:
        scripted.release.set()
        await runner.cleanup()
