"""A JSON-frame WebSocket with a reader task, for the dialects whose frames are not native ``req``/``res``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from agenthub.protocol import _json

from .common import HONEST_IP

__all__ = ["JsonSocket"]


class JsonSocket:
    """Every text frame goes to ``on_frame`` (parsed), in arrival order; ``lost`` resolves when it ends."""

    def __init__(self, ws: ClientConnection, on_frame: Callable[[dict[str, Any]], None]) -> None:
        self.ws = ws
        self.on_frame = on_frame
        self.close_code: int | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls, url: str, on_frame: Callable[[dict[str, Any]], None], local_ip: str = HONEST_IP, timeout: float = 15
    ) -> JsonSocket:
        ws = await websockets.connect(
            url, max_size=None, open_timeout=timeout, close_timeout=2, local_addr=(local_ip, 0)
        )
        return cls(ws, on_frame)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = _json.loads(raw)
                if isinstance(frame, dict):
                    self.on_frame(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._lost()

    def _lost(self) -> None:
        self.close_code = self.ws.close_code
        if not self.lost.done():
            self.lost.set_result(None)

    @property
    def open_(self) -> bool:
        return not self.lost.done()

    async def send(self, obj: Any) -> None:
        if not self.open_:
            raise ConnectionError("connection lost")
        try:
            await self.ws.send(_json.dumps(obj).decode())
        except websockets.ConnectionClosed:
            self._lost()  # now, not when the reader task next runs: callers check `open_` to reconnect
            raise ConnectionError("connection lost") from None

    def drop(self) -> None:
        """Lose the TCP connection without a close handshake."""
        self.ws.transport.abort()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(BaseException):
            await self.reader
