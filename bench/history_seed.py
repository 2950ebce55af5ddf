"""The 200-message ``bench-history`` transcript S5 reads, for every stack that has transcripts.

agenthub is seeded in-process by ``gateway_proc`` through its store. OpenClaw
keeps transcripts in per-agent SQLite files (``state/agents/<id>/agent/
openclaw-agent.sqlite``, sessions in ``state/state/openclaw.sqlite``), a schema
of its own that we do not write behind its back: ``seed_openclaw`` uses its
API instead, ``sessions.create`` then one ``chat.inject`` per message, before
S5 measures. ``chat.inject`` only appends assistant notes, so there every
message is an assistant one (same texts, same count).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import websockets

from agenthub.client.identity import DeviceIdentity

__all__ = ["HISTORY_SESSION", "count_history", "history_messages", "seed_openclaw"]

HISTORY_SESSION = "bench-history"
HISTORY_COUNT = 200
_SCOPES = ["operator.read", "operator.write", "operator.admin"]


def history_messages() -> list[tuple[str, str]]:
    """``(role, text)`` of the seeded transcript, oldest first."""
    return [
        ("user" if i % 2 == 0 else "assistant", f"message {i}: " + "lorem ipsum dolor sit amet " * 4)
        for i in range(HISTORY_COUNT)
    ]


class _Rpc:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.n = 0

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        rid = f"seed-{self.n}"
        await self.ws.send(json.dumps({"type": "req", "id": rid, "method": method, "params": params}))
        while True:
            frame: dict[str, Any] = json.loads(await self.ws.recv())
            if frame.get("type") == "res" and frame.get("id") == rid:
                return frame

    async def ok_all(self, method: str, params: list[dict[str, Any]]) -> None:
        """Pipelined: send every request, then wait for every answer (one loopback round trip, not 200)."""
        pending = set()
        for p in params:
            self.n += 1
            pending.add(f"seed-{self.n}")
            await self.ws.send(json.dumps({"type": "req", "id": f"seed-{self.n}", "method": method, "params": p}))
        while pending:
            frame: dict[str, Any] = json.loads(await self.ws.recv())
            if frame.get("type") == "res" and frame.get("id") in pending:
                pending.discard(frame["id"])
                if not frame.get("ok"):
                    raise RuntimeError(f"{method} failed: {frame.get('error')}")

    async def ok(self, method: str, params: dict[str, Any]) -> Any:
        res = await self.call(method, params)
        if not res.get("ok"):
            raise RuntimeError(f"{method} failed: {res.get('error')}")
        return res.get("payload")


async def _connect(url: str, token: str) -> tuple[Any, _Rpc]:
    identity = DeviceIdentity.generate()
    ws = await websockets.connect(url, max_size=None)
    try:
        challenge = json.loads(await ws.recv())
        client = {"id": "test", "version": "1.0.0", "platform": "linux", "mode": "test"}
        params = {
            "minProtocol": 3,
            "maxProtocol": 4,
            "client": client,
            "role": "operator",
            "scopes": _SCOPES,
            "auth": {"token": token},
            "device": identity.sign_connect(
                nonce=challenge["payload"]["nonce"],
                signed_at_ms=time.time_ns() // 1_000_000,
                client_id="test",
                client_mode="test",
                role="operator",
                scopes=_SCOPES,
                token=token,
                platform="linux",
            ),
        }
        rpc = _Rpc(ws)
        await rpc.ok("connect", params)
        return ws, rpc
    except BaseException:
        await ws.close()
        raise


async def _seed_openclaw(url: str, token: str, deadline_s: float) -> int:
    end = time.monotonic() + deadline_s
    while True:  # a gateway still starting its sidecars answers connect with UNAVAILABLE (or closes 1013)
        try:
            ws, rpc = await _connect(url, token)
            break
        except (RuntimeError, OSError, websockets.exceptions.WebSocketException):
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.5)
    try:
        existing = await rpc.call("chat.history", {"sessionKey": HISTORY_SESSION, "limit": HISTORY_COUNT})
        if not (existing.get("ok") and existing["payload"].get("messages")):
            await rpc.ok("sessions.create", {"key": HISTORY_SESSION})
            await rpc.ok_all(
                "chat.inject", [{"sessionKey": HISTORY_SESSION, "message": text} for _role, text in history_messages()]
            )
        return await _shown(rpc)
    finally:
        await ws.close()


async def _shown(rpc: _Rpc) -> int:
    """How many messages chat.history of ``bench-history`` shows."""
    history = await rpc.ok("chat.history", {"sessionKey": HISTORY_SESSION, "limit": HISTORY_COUNT})
    return len(history.get("messages") or [])


def seed_openclaw(url: str, token: str, deadline_s: float = 60) -> int:
    """Give OpenClaw's ``bench-history`` the 200 messages (once); returns how many chat.history then shows."""
    return asyncio.run(_seed_openclaw(url, token, deadline_s))


async def _count_history(url: str, token: str) -> int:
    ws, rpc = await _connect(url, token)
    try:
        return await _shown(rpc)
    finally:
        await ws.close()


def count_history(url: str, token: str) -> int:
    """How many messages chat.history of ``bench-history`` shows: S5 measures a full transcript or nothing."""
    return asyncio.run(_count_history(url, token))
